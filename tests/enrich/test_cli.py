"""``tfaug enrich``: registered, and bad data is one line with exit status 2 (nothing written)."""
from enrich_helpers import write_folder
from tfaug.cli import main


def test_class_with_two_images_is_one_line_and_exit_2(tmp_path, capsys):
    data = write_folder(tmp_path / "data", counts=(10, 2, 10))
    code = main(["enrich", "--dataset", f"folder:{data}", "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("tfaug enrich: error: class 'b' has only 2 images;")
    assert not (tmp_path / "out").exists()


def test_help_lists_the_options(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["enrich", "--help"])
    text = capsys.readouterr().out
    for opt in ("--dataset", "--out", "--budget", "--test-fraction", "--min-per-class", "--strategies",
                "--no-progress"):
        assert opt in text


def test_no_test_set_is_said_up_front(tmp_path, monkeypatch):
    import warnings

    import pytest

    from tfaug.enrich import run
    from tfaug.errors import TfaugError

    def stop(*args, **kwargs):
        raise TfaugError("stopped by the test after the protocol")

    monkeypatch.setattr(run, "run_selection", stop)
    data = write_folder(tmp_path / "data", counts=(12, 4, 12))
    with warnings.catch_warnings(record=True) as seen, pytest.raises(TfaugError, match="stopped by the test"):
        warnings.simplefilter("always")
        run.run_enrich(f"folder:{data}", tmp_path / "out", budget_minutes=1, progress=False)
    assert any("class 'b' has only 4 images" in str(w.message) and "no test set" in str(w.message) for w in seen)
