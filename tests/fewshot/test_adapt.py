"""tfaug adapt: a tiny cdcgan (gan/quick, digits 8x8, classes 0-8) grown by class "nine" from 6 images of 9.

One base run and one short adaptation per method are made once per module (eager steps: no tracing); the tests
check what each method may and may not change, the routing of old classes, the run directory, export and the CLI.
"""
import dataclasses
import json

import numpy as np
import pytest

from tfaug.errors import TfaugError

K = 9  # base classes; the new class gets id 9
K_SHOT = 6


@pytest.fixture(scope="module")
def digits():
    from tfaug.data.sources import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def base(tmp_path_factory, digits):
    from tfaug.config import preset
    from tfaug.training import distribute
    from tfaug.training.gan_runner import train_gan

    keep = digits.labels < K
    out = tmp_path_factory.mktemp("fewshot") / "base"
    cfg = dataclasses.replace(preset("gan/quick"), steps=2, batch_size=16, width=8)
    with pytest.MonkeyPatch.context() as mp:
        # The tests need a real run directory, not a good generator: run its 2 steps eagerly (tracing the train
        # step would cost more than everything else here).
        mp.setattr(distribute, "make_train_function", lambda step_fn, strategy, **kw: step_fn)
        train_gan(digits.images[keep], digits.labels[keep], class_names=digits.class_names[:K], cfg=cfg, out=out,
                  progress=False, data_info={"spec": "digits"})
    return out


@pytest.fixture(scope="module")
def adapted(base, digits):
    from tfaug.fewshot.adapt import adapt_run

    images = digits.images[digits.labels == K][:K_SHOT]
    return {m: adapt_run(base, images, new_class="nine", method=m, out=base.parent / m, steps=3, batch_size=8,
                         progress=False, compiled=False) for m in ("freeze", "svd", "embedding")}


def _weights(net):
    """{layer name: [weights]} of the weighted layers, in topological order."""
    from tfaug.fewshot.reparam import weighted_layers

    return {layer.name: [np.array(w.value) for w in layer.weights] for layer in weighted_layers(net)}


def _base_and_new(base, run_dir):
    from tfaug.export.savedmodel import load_run

    return _weights(load_run(base)[0]), _weights(load_run(run_dir)[0].get_layer("new_class_generator"))


def _sample(run_dir, ids, seeds):
    """Eager ``generator_images`` of a run's generator.keras (no sampler to trace)."""
    import tensorflow as tf

    from tfaug.export.savedmodel import load_run
    from tfaug.models.sampling import generator_images

    net, config = load_run(run_dir)
    return np.asarray(generator_images(net, config["gan"]["z_dim"], tf.constant(ids, tf.int32),
                                       tf.constant(seeds, tf.int64)))


@pytest.mark.parametrize("method", ["freeze", "svd", "embedding"])
def test_old_classes_give_exactly_the_base_images(base, adapted, method):
    ids = np.concatenate([np.repeat(np.arange(K, dtype=np.int32), 3), [K, K, K]])
    seeds = np.tile(np.array([0, 7, 123456789], np.int64), K + 1)
    old = _sample(base, np.minimum(ids, K - 1), seeds)
    new = _sample(adapted[method].run_dir, ids, seeds)
    np.testing.assert_array_equal(new[:-3], old[:-3])  # old classes, in a batch that also holds new-class rows
    fresh = new[-3:]
    assert np.isfinite(fresh).all() and np.abs(fresh).max() <= 1.0 and not np.array_equal(fresh, old[-3:])


def test_freeze_keeps_the_first_half_of_the_layers(base, adapted):
    before, after = _base_and_new(base, adapted["freeze"].run_dir)
    names = list(before)
    assert names == list(after)
    frozen = names[: len(names) // 2]
    for name in names:
        changed = [not (a.shape == b.shape and np.array_equal(a, b)) for a, b in zip(before[name], after[name])]
        if name == "class_embedding":  # grown table: old rows kept, the new row trained
            np.testing.assert_array_equal(after[name][0][:K], before[name][0])
        elif name in frozen:
            assert not any(changed), name
        else:
            assert any(changed), name


def test_svd_changes_kernels_only(base, adapted):
    before, after = _base_and_new(base, adapted["svd"].run_dir)
    n_kernels = 0
    for name in before:
        for a, b in zip(before[name], after[name]):
            if name == "class_embedding":
                np.testing.assert_array_equal(b[:K], a)
            elif a.ndim >= 2:
                n_kernels += 1
                assert not np.array_equal(a, b), name
            else:  # biases, BatchNorm parameters and statistics
                np.testing.assert_array_equal(a, b, err_msg=name)
    assert n_kernels == 3  # project, up1_convT, to_image (8x8: one upsampling block)


def test_embedding_changes_only_row_k(base, adapted):
    before, after = _base_and_new(base, adapted["embedding"].run_dir)
    for name in before:
        for a, b in zip(before[name], after[name]):
            if name == "class_embedding":
                np.testing.assert_array_equal(b[:K], a)
                assert not np.allclose(b[K], a.mean(axis=0))  # moved from its mean-of-old-rows start
            else:
                np.testing.assert_array_equal(a, b, err_msg=name)
    assert adapted["embedding"].trainable_parameters == after["class_embedding"][0].shape[1]


def test_run_directory_records_the_adaptation(base, adapted):
    r = adapted["svd"]
    config = json.loads((r.run_dir / "config.json").read_text())
    a = config["adapt"]
    assert config["data"]["num_classes"] == K + 1 and config["data"]["n_train"] == K_SHOT
    assert a["method"] == "svd" and a["new_class_id"] == K and a["k"] == K_SHOT and a["steps"] == 3
    assert a["trainable_parameters"] == r.trainable_parameters
    counts = {m: adapted[m].trainable_parameters for m in adapted}
    assert counts["embedding"] < counts["svd"] < counts["freeze"]
    assert a["seconds"] == pytest.approx(r.seconds, abs=1e-3) and r.seconds > 0
    assert (r.run_dir / "samples" / "final.png").is_file() and (r.run_dir / "history.jsonl").is_file()
    assert [h["step"] for h in r.history][-1] == 3 and np.isfinite(r.history[-1]["d_loss"])


def test_adapted_run_exports_and_adapts_again(base, adapted, digits, tmp_path):
    from tfaug.export.savedmodel import export_run
    from tfaug.fewshot.adapt import adapt_run
    from tfaug.synthesis.loader import load_generator

    first = adapted["embedding"].run_dir
    path = export_run(first, "nine", base=tmp_path / "sm")
    served, local = load_generator(path), load_generator(first)
    ids, seeds = np.array([K, K, 2], np.int32), np.array([1, 2, 3], np.int64)
    np.testing.assert_allclose(served.sample(ids, seeds), local.sample(ids, seeds), atol=1.01 / 127.5)
    again = adapt_run(first, digits.images[digits.labels == 8][:3], new_class="eight again", method="embedding",
                      out=tmp_path / "again", steps=1, batch_size=4, progress=False, compiled=False)
    twice = load_generator(again.run_dir)
    assert twice.class_names[-2:] == ("nine", "eight again")
    ids = np.arange(K + 1, dtype=np.int32)
    np.testing.assert_array_equal(twice.sample(ids, ids.astype(np.int64)), local.sample(ids, ids.astype(np.int64)))


def test_bad_requests_fail_with_one_sentence(base, digits, tmp_path, capsys):
    from tfaug.cli import main
    from tfaug.fewshot.adapt import adapt_run, prepare_images

    with pytest.raises(TfaugError, match="at least one image"):
        adapt_run(base, digits.images[:0], new_class="x", method="svd", out=tmp_path / "x")
    with pytest.raises(TfaugError, match="unknown adaptation method"):
        adapt_run(base, digits.images[:2], new_class="x", method="lora", out=tmp_path / "x")
    for extra, message in ((["--class", "9", "--new-class", "3"], "already exists"),
                           (["--class", "42", "--new-class", "x"], "is not a class")):
        code = main(["adapt", str(base), "--dataset", "digits", *extra, "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    rgb = np.zeros((2, 16, 16, 3), np.uint8)
    with pytest.warns(UserWarning) as record:
        out = prepare_images(rgb, (8, 8, 1))
    assert out.shape == (2, 8, 8, 1) and out.dtype == np.float32 and np.allclose(out, -1.0) and len(record) == 2


# ------------------------------------------------------------------------------------------------ stylegan
@pytest.fixture(scope="module")
def style_base(tmp_path_factory, digits):
    from tfaug.config import preset
    from tfaug.training import distribute
    from tfaug.training.gan_runner import train_gan

    keep = digits.labels < K
    out = tmp_path_factory.mktemp("fewshot_style") / "base"
    cfg = dataclasses.replace(preset("gan/stylegan-quick"), steps=2, batch_size=8)
    with pytest.MonkeyPatch.context() as mp:  # eager steps, as in ``base``
        mp.setattr(distribute, "make_train_function", lambda step_fn, strategy, **kw: step_fn)
        train_gan(digits.images[keep], digits.labels[keep], class_names=digits.class_names[:K], cfg=cfg, out=out,
                  progress=False, data_info={"spec": "digits"})
    return out


@pytest.mark.parametrize("method", ["svd", "age"])
def test_stylegan_adaptation_routes_old_classes_and_keeps_truncation(style_base, digits, method):
    from tfaug.export.savedmodel import load_run
    from tfaug.fewshot.adapt import adapt_run
    import tensorflow as tf

    from tfaug.models.sampling import generator_images

    if method == "age":
        age = pytest.importorskip("tfaug.fewshot.age")
        if not hasattr(age, "age_class_network"):
            pytest.skip("tfaug.fewshot.age has no age_class_network yet")
    r = adapt_run(style_base, digits.images[digits.labels == K][:4], new_class="nine", method=method,
                  out=style_base.parent / method, steps=2, batch_size=4, progress=False, compiled=False)
    old, new = load_run(style_base)[0], load_run(r.run_dir)[0]
    assert len(new.inputs) == 3  # [z, class_id, truncation], as the base
    ids, seeds = tf.constant(np.repeat(np.arange(K, dtype=np.int32), 2)), tf.constant(np.arange(2 * K, dtype=np.int64))
    for psi in (None, 0.5):
        np.testing.assert_array_equal(generator_images(new, 16, ids, seeds, psi),
                                      generator_images(old, 16, ids, seeds, psi))
    kid = tf.fill([4], K)
    full, centre = (np.asarray(generator_images(new, 16, kid, seeds[:4], psi)) for psi in (1.0, 0.0))
    assert np.isfinite(full).all() and full.std(axis=0).mean() > centre.std(axis=0).mean()  # psi 0: one image
    if method == "svd":
        inner = new.get_layer("new_class_generator")
        w_avg = np.asarray(inner.get_layer("truncation").w_avg.value)
        base_avg = np.asarray(old.get_layer("truncation").w_avg.value)
        np.testing.assert_array_equal(w_avg[:K], base_avg)
        assert not np.allclose(w_avg[K], base_avg.mean(axis=0))  # the new class's own w centre
        assert r.trainable_parameters > 0
    else:
        assert r.trainable_parameters == 0


def test_age_needs_a_stylegan_run(base):
    from tfaug.fewshot.adapt import adapt_run

    with pytest.raises(TfaugError, match="age needs a stylegan run"):
        adapt_run(base, np.zeros((2, 8, 8, 1), np.uint8), new_class="x", method="age", out=base.parent / "age")
