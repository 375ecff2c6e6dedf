"""load_generator: run directories, SavedModel directories, model base directories, and bad paths."""
import types

import numpy as np
import pytest

from tfaug.errors import TfaugError

Z_DIM, K, SHAPE = 5, 4, (8, 8, 1)
NAMES = ["a", "b", "c", "d"]


def tiny_generator():
    import keras

    keras.utils.set_random_seed(3)
    z = keras.Input((Z_DIM,), name="z")
    c = keras.Input((), dtype="int32", name="class_id")
    h = keras.layers.Concatenate()([z, keras.layers.Embedding(K, 3)(c)])
    h = keras.layers.Dense(64, activation="tanh")(h)
    return keras.Model([z, c], keras.layers.Reshape(SHAPE)(h))


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """A run directory and a model base with versions 1 and 2 (version 2 marked in its metadata)."""
    from tfaug.export.savedmodel import export_generator
    from tfaug.utils.io import write_json

    model = tiny_generator()
    root = tmp_path_factory.mktemp("loader")
    run = root / "runs" / "00001-toy"
    (run / "checkpoints").mkdir(parents=True)
    write_json(
        run / "config.json",
        {"kind": "cdcgan", "gan": {"z_dim": Z_DIM}, "data": {"spec": "toy", "image_shape": list(SHAPE),
                                                              "num_classes": K, "class_names": NAMES}},
    )
    model.save(run / "checkpoints" / "generator.keras")
    base = root / "saved_models"
    for version in (1, 2):
        export_generator(model, z_dim=Z_DIM, num_classes=K, name="toy", base=base,
                         metadata={"class_names": NAMES, "model_kind": "cdcgan", "tag": f"v{version}"})
    return types.SimpleNamespace(model=model, run=run, base=base, model_base=base / "toy")


def test_run_directory_gives_a_keras_generator(dirs):
    from tfaug.synthesis.loader import Generator, KerasGenerator, load_generator

    gen = load_generator(dirs.run)
    assert isinstance(gen, KerasGenerator) and isinstance(gen, Generator)
    assert (gen.num_classes, gen.image_shape, gen.class_names, gen.kind) == (K, SHAPE, tuple(NAMES), "cdcgan")
    images = gen.sample([0, 3, 3], [1, 1, 2])
    assert images.shape == (3, *SHAPE) and images.dtype == np.float32
    assert -1.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_array_equal(images, gen.sample([0, 3, 3], [1, 1, 2]))
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])


def test_saved_model_dir_matches_the_run_quantised(dirs):
    from tfaug.synthesis.loader import Generator, SavedModelGenerator, load_generator
    from tfaug.utils.images import to_float, to_uint8

    served = load_generator(dirs.model_base / "1")
    assert isinstance(served, SavedModelGenerator) and isinstance(served, Generator)
    assert (served.num_classes, served.image_shape, served.class_names, served.kind) == (K, SHAPE, tuple(NAMES), "cdcgan")
    cls, seeds = np.array([2, 0, 1]), np.array([10, 11, 12])
    expected = to_float(to_uint8(load_generator(dirs.run).sample(cls, seeds)))
    np.testing.assert_array_equal(served.sample(cls, seeds), expected)


def test_model_base_dir_picks_the_highest_version(dirs):
    from tfaug.synthesis.loader import load_generator

    (dirs.model_base / ".3.tmp-crashed").mkdir()  # an interrupted export is not a version
    gen = load_generator(dirs.model_base)
    assert gen.path.name == "2" and gen.metadata["tag"] == "v2"


def test_batching_does_not_change_images(dirs):
    from tfaug.synthesis.loader import KerasGenerator, SavedModelGenerator

    cls, seeds = np.arange(7) % K, np.arange(7) * 3
    big = KerasGenerator(dirs.model, Z_DIM, num_classes=K)
    small = KerasGenerator(dirs.model, Z_DIM, num_classes=K, batch_size=3)
    # Equal up to float rounding: oneDNN may pick other kernels for other batch sizes (seen on CPUs without AVX-512).
    np.testing.assert_allclose(big.sample(cls, seeds), small.sample(cls, seeds), rtol=0, atol=1e-5)
    path = dirs.model_base / "1"
    np.testing.assert_allclose(SavedModelGenerator(path).sample(cls, seeds),
                               SavedModelGenerator(path, batch_size=2).sample(cls, seeds), rtol=0, atol=1e-5)


@pytest.mark.parametrize("cls, seeds, match", [
    ([0, K], [1, 2], "out of range"),
    ([-1], [1], "out of range"),
    ([0, 1], [1], "same length"),
    ([0], [1.5], "integers"),
    ([[0]], [[1]], "1-D"),
])
def test_bad_requests_are_user_errors(dirs, cls, seeds, match):
    from tfaug.synthesis.loader import KerasGenerator, SavedModelGenerator

    for gen in (KerasGenerator(dirs.model, Z_DIM, num_classes=K), SavedModelGenerator(dirs.model_base / "1")):
        with pytest.raises(TfaugError, match=match):
            gen.sample(cls, seeds)


def test_scalar_class_and_empty_requests(dirs):
    from tfaug.synthesis.loader import KerasGenerator

    gen = KerasGenerator(dirs.model, Z_DIM, num_classes=K)
    np.testing.assert_array_equal(gen.sample(2, [4, 5]), gen.sample([2, 2], [4, 5]))
    assert gen.sample([], []).shape == (0, *SHAPE)


def test_bad_paths_name_the_path_and_the_accepted_forms(tmp_path, dirs):
    from tfaug.synthesis.loader import load_generator

    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "missing", tmp_path / "file.txt", tmp_path / "empty", dirs.base):
        with pytest.raises(TfaugError) as info:
            load_generator(bad)
        msg = str(info.value)
        assert str(bad) in msg and "run directory" in msg and "SavedModel" in msg and "model base" in msg


def test_broken_run_and_version_dirs_are_user_errors(tmp_path):
    from tfaug.synthesis.loader import load_generator

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(TfaugError, match="missing config.json"):
        load_generator(run)
    (run / "config.json").write_text('{"gan": {"z_dim": 5}, "data": {"num_classes": 4}}')
    with pytest.raises(TfaugError, match="generator.keras"):
        load_generator(run)
    (run / "checkpoints" / "generator.keras").write_bytes(b"\x00not a zip")
    with pytest.raises(TfaugError, match="corrupt"):
        load_generator(run)
    base = tmp_path / "saved_models" / "m"
    (base / "1").mkdir(parents=True)
    with pytest.raises(TfaugError, match="saved_model.pb"):
        load_generator(base)
    (base / "1" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(TfaugError, match="not a tfaug SavedModel"):
        load_generator(base / "1")


def test_truncation_through_run_and_savedmodel_generators(dirs):
    from tfaug.synthesis.loader import load_generator
    from tfaug.synthesis.sample import sample_class
    from tfaug.utils.images import to_float, to_uint8

    run, served = load_generator(dirs.run), load_generator(dirs.model_base / "1")
    assert run.supports_truncation and served.supports_truncation
    cls, seeds, psi = np.array([2, 0, 1, 1]), np.array([10, 11, 12, 13]), np.array([0.5, 1.0, 0.0, 0.25])
    local = run.sample(cls, seeds, truncation=psi)
    np.testing.assert_array_equal(served.sample(cls, seeds, truncation=psi), to_float(to_uint8(local)))
    np.testing.assert_array_equal(run.sample(cls, seeds, truncation=1.0), run.sample(cls, seeds))
    np.testing.assert_array_equal(served.sample(cls, seeds, truncation=1), served.sample(cls, seeds))
    assert not np.array_equal(local[0], run.sample(cls, seeds)[0])
    zero = sample_class(served, 3, 4, seed=5, truncation=0.0)  # psi = 0: one image per class
    assert (zero == zero[0]).all()
    for gen in (run, served):
        with pytest.raises(TfaugError, match=r"psi must be in \[0, 1\]"):
            gen.sample(cls, seeds, truncation=1.5)


def test_exports_without_the_truncated_signature_still_load(dirs, tmp_path, monkeypatch):
    import tfaug.export.savedmodel as savedmodel
    from tfaug.synthesis.loader import load_generator
    from tfaug.synthesis.sample import sample_class

    build = savedmodel._generator_module

    def old_style(*args):  # what exports looked like before issue 7: no 'truncated' signature
        module, signatures = build(*args)
        del module.truncated, module.generate_truncated
        signatures.pop("truncated")
        return module, signatures

    monkeypatch.setattr(savedmodel, "_generator_module", old_style)
    path = savedmodel.export_generator(dirs.model, z_dim=Z_DIM, num_classes=K, metadata={}, name="old", base=tmp_path)
    old = load_generator(path)
    assert not old.supports_truncation
    current = load_generator(dirs.model_base / "1")
    np.testing.assert_array_equal(old.sample([1, 2], [3, 4]), current.sample([1, 2], [3, 4]))
    for call in (lambda: old.sample([1, 2], [3, 4], truncation=0.5), lambda: sample_class(old, 1, 2, truncation=0.5)):
        with pytest.raises(TfaugError, match="truncat") as info:
            call()
        assert str(info.value).count(". ") == 0
