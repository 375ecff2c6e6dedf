"""fill_dataset / tfaug fill: counts, manifest, byte-identical copies, untouched source, reproducibility, errors."""
import csv
import hashlib
import json
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfaug.errors import TfaugError

COUNTS = {"a": 2, "b": 5, "c": 12}
GEN_NAMES = ("zz", "c", "b", "a")  # another order than the folders: classes are matched by name


class StubGenerator:
    """Deterministic images from (class id, seed): what a Generator promises, without TensorFlow."""

    kind = "stub"
    supports_truncation = True

    def __init__(self, names=GEN_NAMES, shape=(8, 8, 1)):
        self.class_names, self.num_classes, self.image_shape = tuple(names), len(names), tuple(shape)
        self.calls = []

    def sample(self, class_ids, seeds, truncation=None):
        self.calls.append((np.array(class_ids), np.array(seeds), truncation))
        psi = 1.0 if truncation is None else float(truncation)
        out = [psi * np.random.default_rng([int(c), int(s) + 10**9]).uniform(-1, 1, self.image_shape)
               for c, s in zip(class_ids, seeds)]
        return np.asarray(out, np.float32)


def _png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


def make_source(root: Path, counts=COUNTS, shape=(8, 8, 1), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for name, n in counts.items():
        for i in range(n):
            _png(root / name / f"img{i:02d}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    notes = root / next(iter(counts)) / "notes.txt"
    notes.write_text("not an image")
    (root / "README").write_text("a root file")
    return root


def snapshot(root: Path) -> dict:
    """{relative path: (sha256, mtime_ns, size)} of every file, and the set of directories."""
    files = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        files[p.relative_to(root).as_posix()] = (
            (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size) if p.is_file() else "dir")
    return files


def read_rows(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    from tfaug.synthesis.fill import fill_dataset

    root = tmp_path_factory.mktemp("fill")
    src = make_source(root / "src")
    before = snapshot(src)
    gen = StubGenerator()
    res = fill_dataset(src, gen, min_per_class=6, out_root=root / "out", seed=3, progress=False)
    return types.SimpleNamespace(root=root, src=src, before=before, gen=gen, res=res, out=root / "out")


def test_counts_and_summary(filled):
    from tfaug.synthesis.fill import summary_table

    res = filled.res
    assert res.out == filled.out and res.manifest == filled.out / "manifest.csv"
    assert res.counts_before == {"a": 2, "b": 5, "c": 12}
    assert res.counts_added == {"a": 4, "b": 1, "c": 0}
    assert res.counts_after == {"a": 6, "b": 6, "c": 12}
    for name, n in res.counts_after.items():
        assert len(list((filled.out / name).glob("*.png"))) == n
    lines = summary_table(res).splitlines()
    assert lines[0].split() == ["class", "before", "added", "after"]
    assert lines[2].split() == ["a", "2", "4", "6"] and lines[-1].split() == ["total", "19", "5", "24"]


def test_fill_counts_are_the_shared_top_up_rule(filled):
    from tfaug.synthesis.counts import generated_counts

    before = filled.res.counts_before
    want = generated_counts(list(before.values()), target=6)
    assert list(filled.res.counts_added.values()) == want == [4, 1, 0]
    assert list(filled.res.counts_after.values()) == [6, 6, 12]


def test_source_untouched_and_originals_byte_identical(filled):
    assert snapshot(filled.src) == filled.before
    for rel, value in filled.before.items():
        if value != "dir":
            assert hashlib.sha256((filled.out / rel).read_bytes()).hexdigest() == value[0], rel
    leftovers = [p.name for p in filled.root.iterdir() if p.name.startswith(".")]
    assert not leftovers  # the temporary sibling was renamed, nothing left behind


def test_manifest_lists_every_image_consistently(filled):
    from tfaug.synthesis.sample import CLASS_SEED_STRIDE
    from tfaug.utils.images import to_uint8

    rows = read_rows(filled.out)
    assert list(rows[0]) == ["path", "class", "synthetic", "class_id", "seed", "generator", "source"]
    images = sorted(p.relative_to(filled.out).as_posix() for p in filled.out.rglob("*.png"))
    assert sorted(r["path"] for r in rows) == images  # every image file, each once
    for r in rows:
        assert r["path"].split("/")[0] == r["class"]
        if r["synthetic"] == "0":
            assert r["source"] == r["path"] and r["class_id"] == r["seed"] == r["generator"] == ""
        else:
            assert r["synthetic"] == "1" and r["source"] == "" and r["generator"] == "stub"
            c, s = int(r["class_id"]), int(r["seed"])
            assert GEN_NAMES[c] == r["class"] and r["path"] == f"{r['class']}/tfaug_{s}.png"
            assert 3 + CLASS_SEED_STRIDE * c <= s < 3 + CLASS_SEED_STRIDE * c + 4
            stored = np.asarray(Image.open(filled.out / r["path"]))[..., None]
            expected = to_uint8(filled.gen.sample([c], [s]))[0]
            np.testing.assert_array_equal(stored, expected)
    synthetic = [(r["class"], int(r["seed"])) for r in rows if r["synthetic"] == "1"]
    assert len(synthetic) == 5 and len(set(s for _, s in synthetic)) == 5


def test_rerun_gives_identical_files(filled):
    from tfaug.synthesis.fill import fill_dataset

    again = filled.root / "again"
    fill_dataset(filled.src, StubGenerator(), min_per_class=6, out_root=again, seed=3, progress=False)
    first, second = snapshot(filled.out), snapshot(again)
    assert sorted(first) == sorted(second)
    assert all(first[k] == "dir" or first[k][0] == second[k][0] for k in first)


def test_fill_of_a_filled_dataset_keeps_the_synthetic_flags(filled):
    from tfaug.synthesis.fill import fill_dataset

    twice = filled.root / "twice"
    res = fill_dataset(filled.out, StubGenerator(), min_per_class=8, out_root=twice, seed=3, progress=False)
    assert res.counts_before == {"a": 6, "b": 6, "c": 12} and res.counts_added == {"a": 2, "b": 2, "c": 0}
    old = {r["path"]: r for r in read_rows(filled.out)}
    rows = read_rows(twice)
    assert len(rows) == 28 and len({r["path"] for r in rows}) == 28
    for r in rows:
        if r["path"] in old:  # copies keep their flag and provenance
            assert (r["synthetic"], r["seed"], r["class_id"]) == (old[r["path"]]["synthetic"], old[r["path"]]["seed"],
                                                                  old[r["path"]]["class_id"])
            assert r["source"] == r["path"]
    new = [r for r in rows if r["source"] == ""]
    assert len(new) == 4 and all(r["synthetic"] == "1" for r in new)
    # the seeds the first fill used are skipped: no generated image is repeated
    assert {r["path"] for r in new if r["class"] == "b"} == {f"b/tfaug_{s}.png" for s in (4 + 2_000_006, 5 + 2_000_006)}
    assert {r["path"] for r in new if r["class"] == "a"} == {f"a/tfaug_{s}.png" for s in (7 + 3_000_009, 8 + 3_000_009)}


def test_unknown_class_is_one_sentence_listing_names(tmp_path):
    from tfaug.synthesis.fill import fill_dataset

    src = make_source(tmp_path / "src", counts={"a": 2, "q": 1, "r": 9})
    with pytest.raises(TfaugError) as err:
        fill_dataset(src, StubGenerator(), min_per_class=3, out_root=tmp_path / "out", progress=False)
    msg = str(err.value)
    assert "'q'" in msg and "'r'" not in msg.split("its classes")[0] and "'zz', 'c', 'b', 'a'" in msg
    assert msg.count(". ") == 0 and not (tmp_path / "out").exists()
    # a class the generator does not know is fine when it needs nothing
    res = fill_dataset(src, StubGenerator(), min_per_class=1, out_root=tmp_path / "ok", progress=False)
    assert res.counts_added == {"a": 0, "q": 0, "r": 0}


def test_existing_or_nested_out_is_refused(tmp_path):
    from tfaug.synthesis.fill import fill_dataset

    src = make_source(tmp_path / "src", counts={"a": 1, "b": 1})
    before = snapshot(src)
    (tmp_path / "out").mkdir()
    for out, needle in ((tmp_path / "out", "already exists"), (src / "filled", "inside the source")):
        with pytest.raises(TfaugError, match=needle):
            fill_dataset(src, StubGenerator(), min_per_class=3, out_root=out, progress=False)
    with pytest.raises(TfaugError, match="integer >= 1"):
        fill_dataset(src, StubGenerator(), min_per_class=0, out_root=tmp_path / "o2", progress=False)
    assert snapshot(src) == before and list((tmp_path / "out").iterdir()) == []


def test_size_and_channels_follow_the_dataset_with_a_warning(tmp_path):
    from tfaug.data.sources import load_dataset
    from tfaug.synthesis.fill import fill_dataset

    src = make_source(tmp_path / "src", counts={"a": 4, "b": 1}, shape=(10, 12, 3))
    _png(src / "b" / "tfaug_1000003.png", np.zeros((10, 12, 3), np.uint8))  # an original with a generated name
    gen = StubGenerator(names=("a", "b"), shape=(8, 8, 1))
    with pytest.warns(UserWarning, match="resized/converted"):
        res = fill_dataset(src, gen, min_per_class=4, out_root=tmp_path / "out", seed=0, truncation=0.5,
                           progress=False)
    assert res.counts_added == {"a": 0, "b": 2}
    assert gen.calls[0][2] == 0.5
    for p in (tmp_path / "out" / "b").glob("tfaug_*.png"):
        with Image.open(p) as im:
            assert (im.size, im.mode) == ((12, 10), "RGB")
    rows = read_rows(tmp_path / "out")
    made = {r["path"]: r for r in rows if r["synthetic"] == "1"}
    assert set(made) == {"b/tfaug_1000003_1.png", "b/tfaug_1000004.png"}
    assert {r["generator"] for r in made.values()} == {"stub;psi=0.5"}
    assert (tmp_path / "out" / "b" / "tfaug_1000003.png").read_bytes() == (src / "b" / "tfaug_1000003.png").read_bytes()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="resized")  # every image is already 10x12x3
        warnings.filterwarnings("ignore", message="skipped 1")  # a/notes.txt
        ds = load_dataset(f"folder:{tmp_path / 'out'}")
    assert ds.image_shape == (10, 12, 3) and ds.synthetic.sum() == 2 and not ds.synthetic[ds.labels == 0].any()
    # a generator without truncation is refused when psi is asked for
    plain = StubGenerator(names=("a", "b"))
    plain.supports_truncation = False
    with pytest.raises(TfaugError, match="cannot truncate"):
        fill_dataset(src, plain, min_per_class=4, out_root=tmp_path / "o2", truncation=0.5, progress=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory with a tiny (untrained) conditional generator for the class names a, b, c."""
    import keras

    keras.utils.set_random_seed(1)
    z = keras.Input((4,), name="z")
    c = keras.Input((), dtype="int32", name="class_id")
    h = keras.layers.Concatenate()([z, keras.layers.Embedding(3, 3)(c)])
    h = keras.layers.Dense(64, activation="tanh")(h)
    model = keras.Model([z, c], keras.layers.Reshape((8, 8, 1))(h))
    run = tmp_path_factory.mktemp("gen") / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(
        {"kind": "cdcgan", "gan": {"z_dim": 4},
         "data": {"spec": "toy", "image_shape": [8, 8, 1], "num_classes": 3, "class_names": ["a", "b", "c"]}}))
    model.save(run / "checkpoints" / "generator.keras")
    return run


def test_cli_fill_and_exit_codes(run_dir, tmp_path, capsys):
    from tfaug.cli import main

    src = make_source(tmp_path / "src")
    before = snapshot(src)
    out = tmp_path / "out"
    argv = ["fill", "--dataset", f"folder:{src}", "--generator", str(run_dir), "--min-per-class", "6",
            "--out", f"folder:{out}", "--seed", "1", "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert [line.split() for line in text.splitlines()[2:5]] == [["a", "2", "4", "6"], ["b", "5", "1", "6"],
                                                                ["c", "12", "0", "12"]]
    rows = read_rows(out)
    gen_rows = [r for r in rows if r["synthetic"] == "1"]
    assert len(rows) == 24 and len(gen_rows) == 5
    assert {r["generator"] for r in gen_rows} == {f"cdcgan:{run_dir.resolve()}"}
    assert main(argv) == 2 and "already exists" in capsys.readouterr().err  # existing OUT
    assert snapshot(src) == before
    bad = ["fill", "--dataset", "digits", "--generator", str(run_dir), "--min-per-class", "3",
           "--out", str(tmp_path / "o2")]
    assert main(bad) == 2 and "folder:PATH" in capsys.readouterr().err
    unknown = make_source(tmp_path / "src2", counts={"a": 1, "dogs": 1})
    argv2 = ["fill", "--dataset", f"folder:{unknown}", "--generator", str(run_dir), "--min-per-class", "2",
             "--out", str(tmp_path / "o3"), "--no-progress"]
    assert main(argv2) == 2
    err = capsys.readouterr().err
    assert "'dogs'" in err and "'a', 'b', 'c'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o3").exists()
