"""SavedModel export: exact signatures, parity with in-process sampling, TFSMLayer, metadata, versions, atomicity."""
import io
import json
import types

import numpy as np
import pytest

from tfaug.errors import TfaugError
from tfaug.export.versions import next_version, resolve_version

from tests_helpers import TINY_K as K, TINY_NAMES as NAMES, TINY_SHAPE as SHAPE, TINY_Z_DIM as Z_DIM, tiny_generator  # noqa: E402,F401




@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import tensorflow as tf

    from tfaug.export.savedmodel import export_generator

    model = tiny_generator()
    base = tmp_path_factory.mktemp("saved_models")
    path = export_generator(
        model, z_dim=Z_DIM, num_classes=K, metadata={"class_names": NAMES, "model_kind": "cdcgan"}, name="toy", base=base
    )
    return types.SimpleNamespace(model=model, base=base, path=path, loaded=tf.saved_model.load(str(path)))


def _serve(exported, class_ids, seeds):
    import tensorflow as tf

    fn = exported.loaded.signatures["serving_default"]
    return {k: v.numpy() for k, v in fn(class_id=tf.constant(class_ids, tf.int32), seed=tf.constant(seeds, tf.int64)).items()}


def test_published_as_integer_version_without_temp_dirs(exported):
    assert exported.path == exported.base / "toy" / "1"
    assert sorted(p.name for p in (exported.base / "toy").iterdir()) == ["1"]
    assert (exported.path / "saved_model.pb").is_file() and (exported.path / "variables").is_dir()


def test_signatures_have_exact_names_dtypes_shapes(exported):
    import tensorflow as tf

    sigs = exported.loaded.signatures
    assert set(sigs) == {"serving_default", "generate_png", "truncated"}
    for name in sigs:
        _, kwargs = sigs[name].structured_input_signature
        expected = {"class_id": (tf.int32, [None]), "seed": (tf.int64, [None])}
        if name == "truncated":
            expected["truncation"] = (tf.float32, [None])
        assert {k: (v.dtype, v.shape.as_list()) for k, v in kwargs.items()} == expected
    outs = {k: (v.dtype, v.shape.as_list()) for k, v in sigs["serving_default"].structured_outputs.items()}
    assert outs == {"images": (tf.uint8, [None, *SHAPE]), "class_id": (tf.int32, [None]), "seed": (tf.int64, [None])}
    truncated = {k: (v.dtype, v.shape.as_list()) for k, v in sigs["truncated"].structured_outputs.items()}
    assert truncated == outs
    png = {k: (v.dtype, v.shape.as_list()) for k, v in sigs["generate_png"].structured_outputs.items()}
    assert png == {"png_bytes": (tf.string, [None])}


def test_served_images_equal_in_process_sampling(exported):
    from tfaug.synthesis.loader import KerasGenerator
    from tfaug.utils.images import to_uint8

    cls, seeds = np.array([0, 1, 2, 2, 0], np.int32), np.array([42, 42, 7, -3, 2**40], np.int64)
    out = _serve(exported, cls, seeds)
    assert out["images"].dtype == np.uint8 and out["images"].shape == (5, *SHAPE)
    np.testing.assert_array_equal(out["class_id"], cls)
    np.testing.assert_array_equal(out["seed"], seeds)
    local = KerasGenerator(exported.model, Z_DIM, num_classes=K).sample(cls, seeds)
    np.testing.assert_array_equal(out["images"], to_uint8(local))
    assert out["images"].std() > 0  # not a constant image


def test_same_pair_same_image_in_any_batch(exported):
    alone = _serve(exported, [1], [5])["images"][0]
    mixed = _serve(exported, [0, 2, 1, 1], [9, 5, 5, 6])["images"]
    np.testing.assert_array_equal(mixed[2], alone)
    assert not np.array_equal(mixed[1], alone)  # other class, same seed
    assert not np.array_equal(mixed[3], alone)  # same class, other seed


def test_generate_png_decodes_to_the_same_images(exported):
    import tensorflow as tf
    from PIL import Image

    cls, seeds = [0, 1, 2], [1, 2, 3]
    pngs = exported.loaded.signatures["generate_png"](
        class_id=tf.constant(cls, tf.int32), seed=tf.constant(seeds, tf.int64)
    )["png_bytes"].numpy()
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(b)))[..., None] for b in pngs])
    np.testing.assert_array_equal(decoded, _serve(exported, cls, seeds)["images"])


def test_tfsmlayer_generate_endpoint_inside_a_keras_model(exported):
    import keras

    layer = keras.layers.TFSMLayer(str(exported.path), call_endpoint="generate")
    class_in = keras.Input((), dtype="int32", name="class_id")
    seed_in = keras.Input((), dtype="int64", name="seed")
    out = layer({"class_id": class_in, "seed": seed_in})
    images = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(keras.ops.cast(out["images"], "float32"))
    app = keras.Model([class_in, seed_in], images)
    cls, seeds = np.array([2, 0], np.int32), np.array([3, 4], np.int64)
    got = app.predict([cls, seeds], verbose=0)
    assert got.shape == (2, *SHAPE) and got.dtype == np.float32
    np.testing.assert_allclose(got, _serve(exported, cls, seeds)["images"] / 127.5 - 1.0, atol=1e-6)


@pytest.mark.parametrize("cls, seeds", [([0, K], [1, 2]), ([-1], [1]), ([0, 1], [1])])
def test_bad_requests_raise_instead_of_returning_garbage(exported, cls, seeds):
    import tensorflow as tf

    # Our assertions fire first (an Embedding gather would return zeros on GPU instead of failing).
    with pytest.raises(tf.errors.InvalidArgumentError, match="class_id"):
        _serve(exported, cls, seeds)
    with pytest.raises(tf.errors.InvalidArgumentError, match="class_id"):
        exported.loaded.generate({"class_id": tf.constant(cls, tf.int32), "seed": tf.constant(seeds, tf.int64)})


def test_metadata_travels_as_asset_and_variable(exported):
    from tfaug.export.savedmodel import read_metadata

    raw = json.loads((exported.path / "assets" / "tfaug_metadata.json").read_text())
    assert raw == read_metadata(exported.path)
    assert raw["class_names"] == NAMES and raw["model_kind"] == "cdcgan"
    assert raw["image_shape"] == list(SHAPE) and raw["num_classes"] == K and raw["z_dim"] == Z_DIM
    assert {"tfaug_version", "exported_at"} <= set(raw)
    assert raw["signature"]["serving_default"]["outputs"]["images"] == {"dtype": "uint8", "shape": [None, *SHAPE]}
    assert json.loads(exported.loaded.metadata_json.numpy().decode()) == raw


def test_versions_auto_increment_and_existing_version_is_protected(tmp_path):
    from tfaug.export.savedmodel import export_generator, read_metadata

    model = tiny_generator(seed=1)
    kw = dict(z_dim=Z_DIM, num_classes=K, name="m", base=tmp_path)
    assert export_generator(model, metadata={}, **kw).name == "1"
    assert export_generator(model, metadata={}, version="auto", **kw).name == "2"
    with pytest.raises(TfaugError, match="already exists"):
        export_generator(model, metadata={}, version=2, **kw)
    path = export_generator(model, metadata={"note": "again"}, version="2", overwrite=True, **kw)
    assert read_metadata(path)["note"] == "again"
    assert read_metadata(path)["class_names"] == ["0", "1", "2"]
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]  # no temp or .old leftovers


def test_failed_export_leaves_no_version_dir(tmp_path, monkeypatch):
    import tensorflow as tf

    from tfaug.export.savedmodel import export_generator

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        export_generator(tiny_generator(), z_dim=Z_DIM, num_classes=K, metadata={}, name="m", base=tmp_path)
    assert list((tmp_path / "m").iterdir()) == []
    assert next_version(tmp_path / "m") == 1


def test_incompatible_model_or_arguments_are_user_errors(tmp_path):
    from tfaug.export.savedmodel import export_generator

    model = tiny_generator()
    with pytest.raises(TfaugError, match="z_dim"):
        export_generator(model, z_dim=Z_DIM + 1, num_classes=K, metadata={}, name="m", base=tmp_path)
    with pytest.raises(TfaugError, match="class names"):
        export_generator(model, z_dim=Z_DIM, num_classes=K, metadata={"class_names": ["a"]}, name="m", base=tmp_path)
    with pytest.raises(TfaugError, match="name"):
        export_generator(model, z_dim=Z_DIM, num_classes=K, metadata={}, name="../m", base=tmp_path)
    assert not (tmp_path / "m").exists()


def test_next_version_ignores_temp_hidden_and_non_integer_dirs(tmp_path):
    assert next_version(tmp_path / "missing") == 1
    for d in ["1", "3", ".4.tmp-abc", ".9", "latest", "10x"]:
        (tmp_path / d).mkdir()
    (tmp_path / "7").write_text("a file, not a version")
    assert next_version(tmp_path) == 4
    assert resolve_version(tmp_path, None) == resolve_version(tmp_path, "auto") == 4
    assert resolve_version(tmp_path, "12") == 12
    for bad in ["v1", -1, 1.5, True]:
        with pytest.raises(TfaugError):
            resolve_version(tmp_path, bad)


def _write_run(run_dir, model):
    from tfaug.utils.io import write_json

    write_json(
        run_dir / "config.json",
        {
            "kind": "cdcgan",
            "gan": {"z_dim": Z_DIM},
            "data": {"spec": "toy", "image_shape": list(SHAPE), "num_classes": K, "class_names": NAMES},
            "tfaug_version": "0.1.0",
        },
    )
    (run_dir / "checkpoints").mkdir()
    model.save(run_dir / "checkpoints" / "generator.keras")


def test_export_run_reads_the_run_directory(tmp_path, exported):
    from tfaug.export.savedmodel import export_run, read_metadata

    run = tmp_path / "run"
    run.mkdir()
    _write_run(run, exported.model)
    path = export_run(run, "digits", base=tmp_path / "sm")
    meta = read_metadata(path)
    assert path == tmp_path / "sm" / "digits" / "1"
    assert meta["model_kind"] == "cdcgan" and meta["class_names"] == NAMES and meta["dataset"] == "toy"
    assert meta["training_config"]["gan"]["z_dim"] == Z_DIM


def test_export_run_rejects_non_run_directories(tmp_path):
    from tfaug.export.savedmodel import export_run

    with pytest.raises(TfaugError, match="missing config.json"):
        export_run(tmp_path, "x", base=tmp_path / "sm")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(TfaugError, match="not valid JSON"):
        export_run(tmp_path, "x", base=tmp_path / "sm")
    (tmp_path / "config.json").write_text('{"gan": {"z_dim": 6}, "data": {"num_classes": 3}}')
    with pytest.raises(TfaugError, match="generator.keras"):
        export_run(tmp_path, "x", base=tmp_path / "sm")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "generator.keras").write_bytes(b"garbage")
    with pytest.raises(TfaugError, match="corrupt"):
        export_run(tmp_path, "x", base=tmp_path / "sm")
    with pytest.raises(TfaugError, match="does not exist"):
        export_run(tmp_path / "nope", "x", base=tmp_path / "sm")
    assert not (tmp_path / "sm").exists()


def test_read_metadata_of_a_non_tfaug_dir_is_a_user_error(tmp_path):
    from tfaug.export.savedmodel import read_metadata

    with pytest.raises(TfaugError, match="not a tfaug SavedModel"):
        read_metadata(tmp_path)


def test_classifier_export_returns_probabilities(tmp_path):
    import keras
    import tensorflow as tf

    from tfaug.export.savedmodel import export_classifier, read_metadata

    keras.utils.set_random_seed(0)
    inp = keras.Input(SHAPE)
    logits = keras.layers.Dense(K)(keras.layers.Flatten()(inp))
    model = keras.Model(inp, logits)
    path = export_classifier(model, metadata={"class_names": NAMES}, name="clf", base=tmp_path)
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    spec = fn.structured_input_signature[1]["images"]
    assert (spec.dtype, spec.shape.as_list()) == (tf.uint8, [None, *SHAPE])
    images = np.random.default_rng(0).integers(0, 256, (4, *SHAPE), dtype=np.uint8)
    probs = fn(images=tf.constant(images))["probabilities"].numpy()
    assert probs.shape == (4, K) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    expected = tf.nn.softmax(model(images.astype(np.float32) / 127.5 - 1.0)).numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    meta = read_metadata(path)
    assert meta["model_kind"] == "classifier" and meta["class_names"] == NAMES and meta["num_classes"] == K


# -- truncation (issue 7) -------------------------------------------------------------------------------------


def _truncated(loaded, class_ids, seeds, psi):
    import tensorflow as tf

    fn = loaded.signatures["truncated"]
    out = fn(class_id=tf.constant(class_ids, tf.int32), seed=tf.constant(seeds, tf.int64),
             truncation=tf.constant(psi, tf.float32))
    return {k: v.numpy() for k, v in out.items()}


def test_truncated_signature_equals_in_process_truncated_sampling(exported):
    from tfaug.synthesis.loader import KerasGenerator
    from tfaug.utils.images import to_uint8

    cls, seeds = np.array([0, 1, 2, 2, 0, 0], np.int32), np.array([42, 42, 7, -3, 2**40, 5], np.int64)
    psi = np.array([1.0, 0.5, 0.0, 0.7, 0.25, 1.0], np.float32)
    out = _truncated(exported.loaded, cls, seeds, psi)
    np.testing.assert_array_equal(out["class_id"], cls)
    np.testing.assert_array_equal(out["seed"], seeds)
    local = KerasGenerator(exported.model, Z_DIM, num_classes=K).sample(cls, seeds, truncation=psi)
    np.testing.assert_array_equal(out["images"], to_uint8(local))
    # psi = 1 is exactly serving_default (three-input generators: test_stylegan_quick_exports_with_its_truncation).
    plain = _serve(exported, cls, seeds)["images"]
    np.testing.assert_array_equal(_truncated(exported.loaded, cls, seeds, np.ones(6))["images"], plain)
    assert not np.array_equal(out["images"][1], plain[1])
    zero = _truncated(exported.loaded, [1, 1, 1], [1, 2, 3], [0, 0, 0])["images"]
    assert (zero == zero[0]).all()  # psi = 0: the class's average image whatever the seed
    via_attr = exported.loaded.generate_truncated({"class_id": tf_const(cls, "int32"), "seed": tf_const(seeds, "int64"),
                                                   "truncation": tf_const(psi, "float32")})
    np.testing.assert_array_equal(via_attr["images"].numpy(), out["images"])


def tf_const(value, dtype):
    import tensorflow as tf

    return tf.constant(value, dtype)


@pytest.mark.parametrize("psi", [[-0.1, 0.5], [0.5, 1.5], [float("nan"), 0.5], [0.5]])
def test_bad_truncation_fails_in_graph_like_a_bad_class_id(exported, psi):
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError, match="truncation"):
        _truncated(exported.loaded, [0, 1], [1, 2], psi)


def test_metadata_lists_truncation_and_the_truncated_endpoints(exported):
    from tfaug.export.savedmodel import read_metadata

    sig = read_metadata(exported.path)["signature"]
    assert sig["serving_default"]["optional_inputs"]["truncation"]["default"] == 1.0
    assert sig["serving_default"]["inputs"] == {"class_id": {"dtype": "int32", "shape": [None]},
                                                "seed": {"dtype": "int64", "shape": [None]}}
    assert sig["truncated"]["inputs"]["truncation"] == {"dtype": "float32", "shape": [None]}
    assert sig["truncated"]["outputs"] == sig["serving_default"]["outputs"]
    assert set(sig["generate_truncated"]["inputs"]["inputs"]) == {"class_id", "seed", "truncation"}


def test_stylegan_quick_exports_with_its_truncation(tmp_path):
    import keras
    import tensorflow as tf

    pytest.importorskip("tfaug.models.stylegan")
    from tfaug.config import preset
    from tfaug.export.savedmodel import export_generator
    from tfaug.models.zoo import build_model
    from tfaug.utils.images import to_uint8

    cfg = preset("gan/stylegan-quick")
    keras.utils.set_random_seed(0)
    model = build_model("stylegan", SHAPE, K, cfg)
    w_avg = model.sampling_network.get_layer("truncation").w_avg
    w_avg.assign(np.random.default_rng(0).normal(size=w_avg.shape).astype(np.float32))  # as if trained
    path = export_generator(model.sampling_network, z_dim=cfg.z_dim, num_classes=K, metadata={"model_kind": "stylegan"},
                            name="sg", base=tmp_path)
    loaded = tf.saved_model.load(str(path))
    cls, seeds, psi = np.array([0, 1, 2, 1]), np.array([3, 3, 9, 4]), np.array([0.7, 0.0, 1.0, 0.0], np.float32)
    out = _truncated(loaded, cls, seeds, psi)["images"]
    np.testing.assert_array_equal(out, to_uint8(model.sample(cls, seeds, truncation=psi)))
    np.testing.assert_array_equal(out[1], out[3])  # psi = 0: class 1's centre for seeds 3 and 4
    plain = _serve(types.SimpleNamespace(loaded=loaded), cls, seeds)["images"]
    np.testing.assert_array_equal(plain, to_uint8(model.sample(cls, seeds)))
    np.testing.assert_array_equal(plain[2], out[2])  # psi = 1
    assert not np.array_equal(plain[0], out[0]) and not np.array_equal(out[1], out[2])


@pytest.mark.parametrize("content", [b"garbage", b"PK\x03\x04 truncated zip"])
def test_corrupt_generator_keras_is_reported_as_corrupt_not_missing(tmp_path, content):
    """Issue 19.6: Keras says "File not found" for a file that is there but is not a .keras zip."""
    from tfaug.export.savedmodel import load_run

    (tmp_path / "config.json").write_text('{"gan": {"z_dim": 6}, "data": {"num_classes": 3}}')
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "generator.keras").write_bytes(content)
    with pytest.raises(TfaugError) as err:
        load_run(tmp_path)
    msg = str(err.value)
    assert "corrupt" in msg and "not found" not in msg.lower() and "generator.keras" in msg and "\n" not in msg
