"""GAN losses as pure functions.

The adversarial losses take discriminator logits and return PER-EXAMPLE losses ``[N]``: callers reduce with
``tf.nn.compute_average_loss`` so that the same train step is correct under ``tf.distribute`` (the sum over
replicas of per-replica averages over the *global* batch). Logits may be ``[N]`` or ``[N, 1]``; anything
else is an error, never a silent broadcast. The mode-seeking regulariser compares pairs of examples, so it
returns one scalar per (replica) batch; reduce it with ``tf.nn.scale_regularization_loss``.
"""
from __future__ import annotations

import tensorflow as tf

from tfaug.errors import TfaugError


def _per_example(logits) -> tf.Tensor:
    """``[N]`` or ``[N, 1]`` logits -> float32 ``[N]``."""
    logits = tf.convert_to_tensor(logits)
    logits = tf.cast(logits, tf.float32)
    return tf.reshape(logits, [tf.shape(logits)[0]])


def d_loss_nonsaturating(real_logits, fake_logits, real_label: float = 1.0) -> tf.Tensor:
    """Discriminator binary cross-entropy of the standard GAN (Goodfellow et al. 2014, "Generative
    Adversarial Nets", eq. 1), with optional one-sided label smoothing (Salimans et al. 2016, "Improved
    Techniques for Training GANs", sec. 3.4): real targets are ``real_label`` (e.g. 0.9), fake targets stay 0.

    ``loss_i = BCE(real_label, sigmoid(real_i)) + BCE(0, sigmoid(fake_i))``.

    Args:
        real_logits: D's logits on real images, ``[N]`` or ``[N, 1]``.
        fake_logits: D's logits on generated images, same batch size as ``real_logits``.
        real_label: target for real images, in (0, 1]; 1.0 disables smoothing.

    Returns:
        float32 ``[N]``, >= 0 when ``real_label`` is 1.
    """
    real = _per_example(real_logits)
    fake = _per_example(fake_logits)
    real_term = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(real), float(real_label)),
                                                        logits=real)
    fake_term = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake), logits=fake)
    return real_term + fake_term


def g_loss_nonsaturating(fake_logits) -> tf.Tensor:
    """Non-saturating generator loss ``-log sigmoid(D(G(z)))`` (Goodfellow et al. 2014, sec. 3): G maximises
    the log-probability of D being wrong, which gives strong gradients early in training when D easily
    rejects G's samples (the minimax form ``log(1 - sigmoid)`` saturates there).

    Args:
        fake_logits: D's logits on generated images, ``[N]`` or ``[N, 1]``.

    Returns:
        float32 ``[N]`` = ``softplus(-fake_logits)`` (a numerically stable ``-log sigmoid``), >= 0.
    """
    return tf.nn.softplus(-_per_example(fake_logits))


def _pairwise_rms(x: tf.Tensor) -> tf.Tensor:
    """Root-mean-square distance between all rows of ``x`` [N, D] -> [N, N] (via a Gram matrix, O(N^2 + N D))."""
    sq = tf.reduce_sum(tf.square(x), axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * tf.matmul(x, x, transpose_b=True)
    # The floor keeps sqrt's gradient finite for (near-)identical rows, e.g. the masked diagonal.
    return tf.sqrt(tf.maximum(d2, 1e-8) / tf.cast(tf.shape(x)[1], x.dtype))


def mode_seeking_loss(images, latents, class_ids, eps: float = 1e-5) -> tf.Tensor:
    """Mode-seeking regulariser of Mao et al. 2019, "Mode Seeking Generative Adversarial Networks for
    Diverse Image Synthesis" (CVPR): conditional generators tend to ignore their noise and produce one image
    per class; this term rewards image distance per unit of latent distance between samples of the same class.

    ``loss = 1 / (mean over same-class pairs i != j of d(G_i, G_j) / d(z_i, z_j) + eps)`` with root-mean-square
    distances (the paper uses mean absolute distances of one pair per condition; all same-class pairs of a
    batch are used here, so no extra generator pass is needed).

    Args:
        images: generated images ``[N, ...]`` (any float range; [-1, 1] in tfaug).
        latents: the latents that produced them, ``[N, z_dim]``.
        class_ids: their classes, int ``[N]``.
        eps: keeps the loss finite when the generator has fully collapsed.

    Returns:
        float32 scalar >= 0; 0 when the batch has no same-class pair (nothing to compare).
    """
    images = tf.cast(images, tf.float32)
    n = tf.shape(images)[0]
    flat = tf.reshape(images, [n, -1])
    z = tf.reshape(tf.cast(latents, tf.float32), [n, -1])
    ids = tf.reshape(class_ids, [-1])
    pairs = tf.cast(tf.equal(ids[:, None], ids[None, :]), tf.float32) * (1.0 - tf.eye(n))
    count = tf.reduce_sum(pairs)
    ratio = tf.reduce_sum(_pairwise_rms(flat) / _pairwise_rms(z) * pairs) / tf.maximum(count, 1.0)
    return tf.where(count > 0, 1.0 / (ratio + eps), 0.0)


def r1_penalty(real_images, d_fn, gamma: float = 1.0) -> tf.Tensor:
    """R1 gradient penalty on real data (Mescheder, Geiger, Nowozin 2018, "Which Training Methods for GANs do
    actually Converge?", eq. 9): ``R1_i = gamma / 2 * ||grad_x D(x_i)||^2``, penalising D's gradient on reals.

    Pass the images exactly as D sees them, i.e. after ``GenerativeModel.augment`` when DiffAugment/ADA is on
    (as StyleGAN2-ADA does): the penalty is on D's gradient at its own input. Call it inside D's tape (the
    gradient of the penalty w.r.t. D's weights is second order: the inner tape here, the outer one in the step).

    Args:
        real_images: float32 ``[N, H, W, C]`` (in [-1, 1] or augmented).
        d_fn: ``images -> logits [N]`` or ``[N, 1]`` in which each logit depends only on its own image (no
            BatchNorm across the batch), e.g. ``lambda x: D([x, labels], training=True)``.
        gamma: R1 weight (``GANConfig.r1``), >= 0.

    Returns:
        float32 ``[N]`` per-example penalties (>= 0); reduce with ``tf.nn.compute_average_loss`` like the
        adversarial terms so the step stays correct under ``tf.distribute``.
    """
    x = tf.cast(real_images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        # Sum over the batch: each logit depends only on its own image, so this gives per-example gradients.
        total = tf.reduce_sum(_per_example(d_fn(x)))
    grads = tape.gradient(total, x)
    sq = tf.reduce_sum(tf.square(tf.reshape(grads, [tf.shape(x)[0], -1])), axis=1)
    return 0.5 * float(gamma) * sq


def wgan_critic_loss(real_scores, fake_scores) -> tf.Tensor:
    """Wasserstein critic loss (Arjovsky, Chintala, Bottou 2017, "Wasserstein GAN", eq. 3; Gulrajani et al.
    2017, "Improved Training of Wasserstein GANs", Algorithm 1 without the penalty): the critic maximises
    ``E[D(x)] - E[D(G(z))]``, i.e. minimises ``loss_i = D(G(z_i)) - D(x_i)``.

    Args:
        real_scores: critic scores on real images, ``[N]`` or ``[N, 1]`` (unbounded).
        fake_scores: critic scores on generated images, same batch size.

    Returns:
        float32 ``[N]`` (any sign); add :func:`gradient_penalty` times its weight.
    """
    return _per_example(fake_scores) - _per_example(real_scores)


def wgan_generator_loss(fake_scores) -> tf.Tensor:
    """Wasserstein generator loss ``loss_i = -D(G(z_i))`` (Arjovsky et al. 2017; Gulrajani et al. 2017, Alg. 1).

    Args:
        fake_scores: critic scores on generated images, ``[N]`` or ``[N, 1]``.

    Returns:
        float32 ``[N]`` (any sign).
    """
    return -_per_example(fake_scores)


def gradient_penalty(critic_fn, real, fake, *, eps=None, seed=None) -> tf.Tensor:
    """WGAN-GP two-sided gradient penalty (Gulrajani et al. 2017, eq. 3 / Algorithm 1):
    ``x_hat_i = eps_i * x_i + (1 - eps_i) * x~_i`` with ``eps_i ~ U[0, 1]`` per example and
    ``penalty_i = (||grad_{x_hat} D(x_hat_i)||_2 - 1)^2``. The caller multiplies by the weight (10 in the paper).

    Call it inside the critic's tape (the penalty's gradient w.r.t. the critic weights is second order).

    Args:
        critic_fn: ``images -> scores [N]`` or ``[N, 1]`` where each score depends only on its own image
            (no BatchNorm), e.g. ``lambda x: critic([x, labels], training=True)``.
        real: float32 ``[N, H, W, C]`` real images (in [-1, 1], or as the critic sees them).
        fake: float32 ``[N, H, W, C]`` generated images (gradients to G are stopped).
        eps: optional float ``[N]`` interpolation coefficients in [0, 1] (tests); drawn uniformly when None.
        seed: seed of the draw (an int or a ``keras.random.SeedGenerator``).

    Returns:
        float32 ``[N]`` per-example penalties >= 0.
    """
    real = tf.cast(real, tf.float32)
    fake = tf.stop_gradient(tf.cast(fake, tf.float32))
    n = tf.shape(real)[0]
    if eps is None:
        import keras  # lazy: only the draw needs it

        eps = keras.random.uniform([n], 0.0, 1.0, seed=seed)
    eps = tf.reshape(tf.cast(eps, tf.float32), tf.concat([[n], tf.ones([tf.rank(real) - 1], tf.int32)], 0))
    x_hat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        # Sum over the batch (inside the tape): each score depends only on its own input, so this gives
        # per-example gradients.
        total = tf.reduce_sum(_per_example(critic_fn(x_hat)))
    grads = tf.reshape(tape.gradient(total, x_hat), [n, -1])
    # The tiny floor keeps the sqrt differentiable where the gradient vanishes.
    norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=1) + 1e-12)
    return tf.square(norm - 1.0)


def auxiliary_class_loss(class_logits, labels) -> tf.Tensor:
    """Auxiliary-classifier loss of AC-GAN (Odena, Olah, Shlens 2017, "Conditional Image Synthesis with
    Auxiliary Classifier GANs", eq. 2): ``loss_i = -log softmax(class_logits_i)[c_i]``, the negative
    log-likelihood ``-log P(C = c | X)`` of the class. With one class it is identically 0.

    Args:
        class_logits: float ``[N, K]`` logits of the class head.
        labels: int ``[N]`` classes in ``[0, K)``.

    Returns:
        float32 ``[N]`` >= 0.
    """
    logits = tf.cast(class_logits, tf.float32)
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def kl_normal(mean, log_var) -> tf.Tensor:
    """KL divergence of ``N(mean, diag(exp(log_var)))`` from ``N(0, I)`` per example (Kingma & Welling 2014,
    "Auto-Encoding Variational Bayes", appendix B): ``KL_i = 1/2 sum_j (exp(lv_ij) + mu_ij^2 - 1 - lv_ij)``.

    Args:
        mean: float ``[N, D]``.
        log_var: float ``[N, D]`` log-variances.

    Returns:
        float32 ``[N]`` >= 0 (0 exactly for mean 0, log_var 0).
    """
    mean = tf.cast(mean, tf.float32)
    log_var = tf.cast(log_var, tf.float32)
    return 0.5 * tf.reduce_sum(tf.exp(log_var) + tf.square(mean) - 1.0 - log_var, axis=-1)


RECONSTRUCTIONS = ("bce", "mse")


def reconstruction_loss(images, reconstructions, kind: str = "bce") -> tf.Tensor:
    """VAE reconstruction term ``-log p(x | z)`` summed over the pixels of each image (Kingma & Welling 2014).

    * ``bce``: Bernoulli likelihood (the paper's MNIST decoder) on images rescaled to [0, 1]:
      ``-sum_p [t_p log y_p + (1 - t_p) log(1 - y_p)]`` with ``t = (x + 1) / 2``, ``y = (x_rec + 1) / 2``
      (clipped to [1e-6, 1 - 1e-6]); its minimum is the targets' own entropy, 0 only for binary images.
    * ``mse``: ``sum_p (x_p - x_rec_p)^2`` on the [-1, 1] images (a Gaussian likelihood of fixed variance 1/2,
      up to a constant).

    Args:
        images: float ``[N, H, W, C]`` in [-1, 1].
        reconstructions: float ``[N, H, W, C]`` in [-1, 1] (the decoder's tanh output).
        kind: ``bce`` or ``mse``.

    Returns:
        float32 ``[N]`` >= 0.
    """
    x = tf.cast(images, tf.float32)
    y = tf.cast(reconstructions, tf.float32)
    n = tf.shape(x)[0]
    if kind == "mse":
        per_pixel = tf.square(x - y)
    elif kind == "bce":
        t = (x + 1.0) / 2.0
        p = tf.clip_by_value((y + 1.0) / 2.0, 1e-6, 1.0 - 1e-6)
        per_pixel = -(t * tf.math.log(p) + (1.0 - t) * tf.math.log(1.0 - p))
    else:
        raise TfaugError(f"unknown reconstruction loss {kind!r}; choose one of: {', '.join(RECONSTRUCTIONS)}")
    return tf.reduce_sum(tf.reshape(per_pixel, [n, -1]), axis=1)


# -- BAGAN and CVAE-GAN (engineer Z3) ---------------------------------------------------------------------

def d_loss_bagan(real_logits, labels, fake_logits) -> tf.Tensor:
    """(K+1)-way discriminator loss of BAGAN (Mariani et al. 2018, "BAGAN: Data Augmentation with Balancing
    GAN", sec. 3.3): reals must be classified as their class, fakes as the extra class K ("fake").

    ``loss_i = -log softmax(real_i)[c_i] - log softmax(fake_i)[K]``.

    Args:
        real_logits: float ``[N, K + 1]`` D logits on real images.
        labels: int ``[N]`` classes of the reals in ``[0, K)``.
        fake_logits: float ``[N, K + 1]`` D logits on generated images (same N).

    Returns:
        float32 ``[N]`` >= 0.
    """
    real = tf.cast(real_logits, tf.float32)
    fake = tf.cast(fake_logits, tf.float32)
    fake_class = tf.fill([tf.shape(fake)[0]], tf.shape(fake)[1] - 1)
    return (tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.reshape(tf.cast(labels, tf.int32), [-1]),
                                                           logits=real)
            + tf.nn.sparse_softmax_cross_entropy_with_logits(labels=fake_class, logits=fake))


def g_loss_bagan(fake_logits, fake_labels) -> tf.Tensor:
    """BAGAN generator loss (Mariani et al. 2018, sec. 3.3): G wants D to classify an image generated for class
    ``c`` as class ``c`` (not as "fake"): ``loss_i = -log softmax(fake_i)[c_i]`` over K + 1 logits.

    Args:
        fake_logits: float ``[N, K + 1]`` D logits on generated images.
        fake_labels: int ``[N]`` requested classes in ``[0, K)``.

    Returns:
        float32 ``[N]`` >= 0.
    """
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.reshape(tf.cast(fake_labels, tf.int32), [-1]), logits=tf.cast(fake_logits, tf.float32))


def realness_logit(logits) -> tf.Tensor:
    """Real-vs-fake logit of a (K+1)-way discriminator (last column = fake):
    ``log sum_{c<K} exp(l_c) - l_K = log P(real) / P(fake)`` (Salimans et al. 2016, "Improved Techniques for
    Training GANs", sec. 5, the same reduction of a K+1 classifier to D(x)). float ``[N, K+1]`` -> ``[N]``.
    """
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_logsumexp(logits[:, :-1], axis=1) - logits[:, -1]


def pairwise_feature_loss(a, b) -> tf.Tensor:
    """Per-example squared L2 distance ``1/2 ||a_i - b_i||^2`` (summed over all non-batch axes): CVAE-GAN's
    reconstruction term on pixels and on D's and C's features (Bao et al. 2017, "CVAE-GAN: Fine-Grained Image
    Generation through Asymmetric Training", eq. 9: ``L_G = 1/2 (||x - x'||^2 + ||f_D(x) - f_D(x')||^2 +
    ||f_C(x) - f_C(x')||^2)``).

    Returns:
        float32 ``[N]`` >= 0.
    """
    a = tf.cast(a, tf.float32)
    b = tf.cast(b, tf.float32)
    diff = tf.reshape(a - b, [tf.shape(a)[0], -1])
    return 0.5 * tf.reduce_sum(tf.square(diff), axis=1)


def mean_feature_matching(real_features, fake_features) -> tf.Tensor:
    """Mean feature matching (Salimans et al. 2016, sec. 3.1; Bao et al. 2017, eq. 7 ``L_GD``):
    ``1/2 ||mean_i f(x_i) - mean_j f(x'_j)||^2`` between the batch means of real and generated features.

    A batch-level term (one scalar per replica batch): reduce with ``tf.nn.scale_regularization_loss``.

    Args:
        real_features: float ``[N, F]``.
        fake_features: float ``[M, F]`` (M may differ from N).

    Returns:
        float32 scalar >= 0.
    """
    r = tf.reduce_mean(tf.cast(real_features, tf.float32), axis=0)
    f = tf.reduce_mean(tf.cast(fake_features, tf.float32), axis=0)
    return 0.5 * tf.reduce_sum(tf.square(r - f))


def class_mean_feature_matching(real_features, real_labels, fake_features, fake_labels,
                                num_classes: int) -> tf.Tensor:
    """Class-wise mean feature matching of CVAE-GAN's classifier term (Bao et al. 2017, eq. 8 ``L_GC``):
    ``1/2 sum_c ||mean f_C(x of class c) - mean f_C(x' of class c)||^2`` over the classes that have both real
    and generated examples in the batch (a class missing on either side contributes 0).

    A batch-level term: reduce with ``tf.nn.scale_regularization_loss``.

    Args:
        real_features: float ``[N, F]``; real_labels: int ``[N]`` in ``[0, num_classes)``.
        fake_features: float ``[M, F]``; fake_labels: int ``[M]`` in ``[0, num_classes)``.
        num_classes: K >= 1.

    Returns:
        float32 scalar >= 0.
    """
    def class_means(feats, labels):
        feats = tf.cast(feats, tf.float32)
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        sums = tf.math.unsorted_segment_sum(feats, labels, num_classes)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(labels, tf.float32), labels, num_classes)
        return sums / tf.maximum(counts, 1.0)[:, None], counts > 0

    r, r_has = class_means(real_features, real_labels)
    f, f_has = class_means(fake_features, fake_labels)
    both = tf.cast(tf.logical_and(r_has, f_has), tf.float32)
    return 0.5 * tf.reduce_sum(both * tf.reduce_sum(tf.square(r - f), axis=1))


__all__ = ["d_loss_nonsaturating", "g_loss_nonsaturating", "mode_seeking_loss", "r1_penalty",
           "wgan_critic_loss", "wgan_generator_loss", "gradient_penalty", "auxiliary_class_loss", "kl_normal",
           "reconstruction_loss", "RECONSTRUCTIONS"]
__all__ += ["d_loss_bagan", "g_loss_bagan", "realness_logit", "pairwise_feature_loss", "mean_feature_matching",
            "class_mean_feature_matching"]
