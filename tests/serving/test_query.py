"""``tfaug query``'s class lookup: names from the served SavedModel's metadata (tfaug.serving.query)."""
import json

import pytest

from tfaug.errors import TfaugError
from tfaug.serving.query import query_class_id


def _export(base, name, version, names):
    assets = base / name / str(version) / "assets"
    assets.mkdir(parents=True)
    (assets / "tfaug_metadata.json").write_text(json.dumps({"class_names": names}))


def test_names_come_from_the_served_version(tmp_path):
    _export(tmp_path, "pets", 1, ["cat", "dog"])
    _export(tmp_path, "pets", 2, ["cat", "coffee", "dog"])
    assert query_class_id("coffee", "pets", tmp_path) == 1  # the highest version, as TF Serving serves
    assert query_class_id("dog", "pets", tmp_path, version=1) == 1
    assert query_class_id("2", "pets", tmp_path) == 2


def test_unknown_name_lists_the_classes(tmp_path):
    _export(tmp_path, "pets", 1, ["cat", "coffee"])
    with pytest.raises(TfaugError) as exc:
        query_class_id("cofee", "pets", tmp_path)
    assert "0 cat, 1 coffee" in str(exc.value)
    with pytest.raises(TfaugError, match="out of range"):
        query_class_id("5", "pets", tmp_path)


def test_without_local_metadata_ids_pass_and_names_are_explained(tmp_path):
    assert query_class_id("3", "remote", tmp_path) == 3  # the server judges the id
    with pytest.raises(TfaugError) as exc:
        query_class_id("cat", "remote", tmp_path)
    assert "--saved-models" in str(exc.value) and "class id" in str(exc.value)


def test_query_parses_a_class_name():
    from tfaug.cli import build_parser

    args = build_parser().parse_args(["query", "pets", "--class-id", "coffee", "--out", "o", "--saved-models", "sm"])
    assert args.class_id == "coffee" and args.saved_models == "sm"
