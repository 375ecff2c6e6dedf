"""S3's classifiers (disc-bank, M1-M4): scores against brute-force numpy, the epsilon-ball rule by hand, votes
and seeds, and accuracy on a toy problem where a right generator must win and a wrong one must lose."""
import numpy as np
import pytest

from tfaug.errors import TfaugError
from tfaug.studies import methods
from tfaug.studies.methods import disc_bank_predict, m1_scores, m3_scores, predict_method

K, SHAPE = 3, (8, 8, 1)
PARAMS = {"m": 20, "L": 3, "N": 3, "mu": 0.1}


class BlobGenerator:
    """Class c = a Gaussian blob around a fixed random mean image; ``shift`` samples class (c + shift) % K's blob.

    ``sample`` is deterministic per (class, seed) and records every pair it was asked for."""

    num_classes, image_shape = K, SHAPE

    def __init__(self, shift: int = 0, noise: float = 0.35):
        self.means = np.random.default_rng(123).uniform(-0.6, 0.6, (K, *SHAPE))
        self.shift, self.noise, self.calls = shift, noise, []

    def sample(self, class_ids, seeds):
        ids, seeds = np.asarray(class_ids), np.asarray(seeds)
        self.calls.extend(zip(ids.tolist(), seeds.tolist()))
        noise = [np.random.default_rng([int(c), int(s)]).normal(size=SHAPE) for c, s in zip(ids, seeds)]
        out = [self.means[(c + self.shift) % K] + self.noise * e for c, e in zip(ids, noise)]
        return np.clip(np.asarray(out), -1, 1).astype(np.float32)


def _queries(n_per_class=30):
    """Real test images of the toy problem: fresh draws from the true blobs (seeds disjoint from sampling's)."""
    gen = BlobGenerator()
    y = np.repeat(np.arange(K), n_per_class)
    x = gen.sample(y, 10**12 + np.arange(len(y)))
    return x, y


def _projection(dim=6):
    w = np.random.default_rng(7).normal(size=(int(np.prod(SHAPE)), dim))
    return lambda images: np.asarray(images).reshape(len(images), -1) @ w


# -- scores against brute force ------------------------------------------------------------------------


def _brute(samples, queries):
    return np.linalg.norm(queries[:, None, None, :] - samples[None], axis=-1)  # [N, K, m]


@pytest.mark.parametrize("block", [methods.MAX_BLOCK, 7])  # one block, and blocks of a single query
def test_m1_scores_match_brute_force(monkeypatch, block):
    monkeypatch.setattr(methods, "MAX_BLOCK", block)
    rng = np.random.default_rng(0)
    samples, queries = rng.normal(size=(4, 6, 5)), rng.normal(size=(9, 5))
    d = np.sort(_brute(samples, queries), axis=2)
    for L in (1, 3, 6):
        np.testing.assert_allclose(m1_scores(samples, queries, L), d[:, :, :L].mean(axis=2), rtol=1e-9, atol=1e-9)
    with pytest.raises(TfaugError, match="L must be"):
        m1_scores(samples, queries, 7)


@pytest.mark.parametrize("block", [methods.MAX_BLOCK, 5])
def test_m3_scores_match_brute_force(monkeypatch, block):
    monkeypatch.setattr(methods, "MAX_BLOCK", block)
    rng = np.random.default_rng(1)
    samples, queries = rng.normal(size=(3, 5, 4)), rng.normal(size=(8, 4))
    d = _brute(samples, queries)
    for mu in (0.01, 0.3, 1.0):
        t = max(1, int(np.ceil(mu * 15)))
        eps = np.sort(d.reshape(len(queries), -1), axis=1)[:, t - 1]
        counts = (d <= eps[:, None, None]).sum(axis=2)
        want = counts / counts.sum(axis=1, keepdims=True)
        got = m3_scores(samples, queries, mu)
        np.testing.assert_allclose(got, want, atol=1e-12)
        np.testing.assert_allclose(got.sum(axis=1), 1.0)


def test_eps_ball_by_hand_in_1d():
    # class 0 at 0, 1, 2; class 1 at 0.5, 3, 10 (K=2, m=3: K*m = 6 pooled samples).
    samples = np.array([[[0.0], [1.0], [2.0]], [[0.5], [3.0], [10.0]]])
    q = np.array([[0.0], [1.5]])
    # mu=0.5 -> t=3: from 0 the pooled distances are 0, .5, 1, 2, 3, 10 -> eps=1 holds 0, 1 (class 0) and .5.
    np.testing.assert_allclose(m3_scores(samples, q[:1], 0.5), [[2 / 3, 1 / 3]])
    # mu=0.2 -> t=ceil(1.2)=2 -> eps=0.5: one sample of each class.
    np.testing.assert_allclose(m3_scores(samples, q[:1], 0.2), [[0.5, 0.5]])
    # From 1.5, t=1 gives eps=0.5, but two samples (1 and 2) sit at exactly 0.5: both count, both class 0.
    np.testing.assert_allclose(m3_scores(samples, q[1:], 0.1), [[1.0, 0.0]])
    # mu=1: the ball holds every sample, so the posterior is the class share, 1/2 each.
    np.testing.assert_allclose(m3_scores(samples, q, 1.0), [[0.5, 0.5], [0.5, 0.5]])


def test_ball_size_rounds_up_without_float_noise():
    assert methods._ball_size(0.05, 50, 10) == 25
    assert methods._ball_size(0.1, 3, 10) == 3  # 0.1 * 3 * 10 = 3.0000000000000004 in floats
    assert methods._ball_size(0.001, 5, 2) == 1 and methods._ball_size(1.0, 5, 2) == 10
    with pytest.raises(TfaugError):
        methods._ball_size(0.0, 5, 2)


def test_distances_stay_exact_enough_for_copies():
    """A query that is one of the samples has distance 0 to it (the expansion's rounding is clipped at 0)."""
    rng = np.random.default_rng(2)
    samples = rng.uniform(-1, 1, (2, 4, 784))
    d = m1_scores(samples, samples[1, 2:3], 1)
    assert d[0, 1] < 1e-5 and d[0, 0] > 1.0


# -- votes, ties, seeds ----------------------------------------------------------------------------------


def test_vote_majority_then_summed_score_then_lowest_id():
    votes = np.array([[2, 1, 0], [1, 1, 1], [1, 1, 0], [0, 2, 2]])
    summed = np.array([[0.0, 9.0, 9.0], [0.1, 0.3, 0.2], [0.5, 0.5, 9.0], [9.0, 0.1, 0.4]])
    np.testing.assert_array_equal(methods._vote(votes, summed), [0, 1, 0, 2])


@pytest.mark.parametrize("method", ["m1", "m3"])
def test_votes_deterministic_and_seeds_never_reused(method):
    x, _ = _queries(5)
    gens = [BlobGenerator(noise=0.9), BlobGenerator(noise=0.9)]
    a, b = (predict_method(method, images=x, num_classes=K, generator=g, params=PARAMS, seed=4) for g in gens)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64 and a.shape == (len(x),)
    calls = gens[0].calls
    assert len(calls) == PARAMS["N"] * PARAMS["m"] * K and len(set(calls)) == len(calls)  # fresh samples per round
    assert gens[0].calls == gens[1].calls
    # Another seed draws other samples.
    other = BlobGenerator(noise=0.9)
    predict_method(method, images=x, num_classes=K, generator=other, params=PARAMS, seed=5)
    assert set(other.calls) != set(calls)


def test_more_votes_use_more_rounds():
    x, _ = _queries(3)
    g = BlobGenerator()
    predict_method("m1", images=x, num_classes=K, generator=g, params={**PARAMS, "N": 5}, seed=0)
    assert len(g.calls) == 5 * PARAMS["m"] * K


# -- accuracy on the toy problem ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["m1", "m2", "m3", "m4"])
def test_right_generator_wins_and_wrong_generator_loses(method):
    x, y = _queries()
    embed = _projection() if method in ("m2", "m4") else None
    right = predict_method(method, images=x, num_classes=K, generator=BlobGenerator(), embed_fn=embed,
                           params=PARAMS, seed=0)
    wrong = predict_method(method, images=x, num_classes=K, generator=BlobGenerator(shift=1), embed_fn=embed,
                           params=PARAMS, seed=0)
    assert np.mean(right == y) > 0.9
    assert np.mean(wrong == y) < 0.4


@pytest.mark.parametrize("method", ["m2", "m4"])
def test_embedded_methods_measure_in_the_embedding(method):
    """An embedding that collapses every image to one point leaves no information: accuracy drops to chance."""
    x, y = _queries()
    collapse = lambda images: np.zeros((len(images), 4))  # noqa: E731
    pred = predict_method(method, images=x, num_classes=K, generator=BlobGenerator(), embed_fn=collapse,
                          params=PARAMS, seed=0)
    assert np.mean(pred == y) < 0.4


def test_uint8_images_are_accepted():
    x, y = _queries(10)
    x8 = np.round((x + 1) * 127.5).astype(np.uint8)
    pred = predict_method("m1", images=x8, num_classes=K, generator=BlobGenerator(), params=PARAMS, seed=0)
    assert np.mean(pred == y) > 0.9


# -- disc-bank and errors ------------------------------------------------------------------------------------


class StubBank:
    def __init__(self, scores):
        self.scores, self.seen = np.asarray(scores, np.float32), None

    def discriminator_scores(self, images):
        self.seen = images
        return self.scores


def test_disc_bank_predict_takes_argmax_of_known_scores():
    scores = [[0.1, 0.9, 0.3], [0.8, 0.2, 0.1], [0.2, 0.2, 0.7], [0.5, 0.5, 0.1]]
    bank = StubBank(scores)
    images = np.zeros((4, *SHAPE), np.uint8)
    pred = predict_method("disc-bank", images=images, num_classes=K, bank=bank, params=PARAMS)
    np.testing.assert_array_equal(pred, [1, 0, 2, 0])
    assert pred.dtype == np.int64
    assert bank.seen.dtype == np.float32 and bank.seen.min() == -1.0  # uint8 0 -> -1
    with pytest.raises(TfaugError, match="scores"):
        disc_bank_predict(StubBank(scores[:2]), images)


@pytest.mark.parametrize("method,kwargs,match", [
    ("disc-bank", {}, "bank"),
    ("m1", {}, "generator"),
    ("m3", {}, "generator"),
    ("m2", {"generator": BlobGenerator()}, "embed_fn"),
    ("m4", {"generator": BlobGenerator()}, "embed_fn"),
    ("m5", {"generator": BlobGenerator()}, "unknown"),
])
def test_missing_pieces_are_clear_errors(method, kwargs, match):
    with pytest.raises(TfaugError, match=match):
        predict_method(method, images=np.zeros((2, *SHAPE), np.float32), num_classes=K, params=PARAMS, **kwargs)


@pytest.mark.parametrize("params,match", [
    ({"m": 2, "L": 3, "N": 1, "mu": 0.1}, "L"),
    ({"m": 0, "L": 1, "N": 1, "mu": 0.1}, "m must"),
    ({"m": 5, "N": 1, "mu": 0.1}, "'L'"),
])
def test_bad_parameters_are_clear_errors(params, match):
    with pytest.raises(TfaugError, match=match):
        predict_method("m1", images=np.zeros((2, *SHAPE), np.float32), num_classes=K, generator=BlobGenerator(),
                       params=params)


def test_real_gan_bank_end_to_end_on_digits():
    """A gan-bank zoo model trained 3 steps on 8x8 digits (3 classes) works with disc-bank and M1 (shape/dtype)."""
    import keras

    from tfaug.config import GANConfig
    from tfaug.data.sources import load_dataset
    from tfaug.models.zoo import build_model

    ds = load_dataset("digits")
    keep = np.flatnonzero(ds.labels < K)[:60]
    x = ds.images[keep].astype(np.float32) / 127.5 - 1.0
    y = ds.labels[keep].astype(np.int32)
    cfg = GANConfig(model="gan-bank", steps=3, z_dim=8, batch_size=12, sample_every=0, checkpoint_every=0,
                    options={"g_units": "16,32", "d_units": "32,16"})
    keras.utils.set_random_seed(0)
    bank = build_model("gan-bank", x.shape[1:], K, cfg)
    bank.fit(x, y, batch_size=12, epochs=1, steps_per_epoch=3, verbose=0)
    pred = predict_method("disc-bank", images=x, num_classes=K, bank=bank, params=PARAMS)
    assert pred.shape == (len(x),) and pred.dtype == np.int64 and pred.min() >= 0 and pred.max() < K
    pred = predict_method("m1", images=x[:10], num_classes=K, generator=bank, params={**PARAMS, "m": 4, "N": 2})
    assert pred.shape == (10,) and pred.dtype == np.int64 and pred.max() < K
