"""The parts of one cDCGAN training step, timed alone in tfaug (tf.function) and in PyTorch (eager).

Used by ``benchmarks/train_throughput.py --breakdown``; each part does the work it does inside the step:

* G forward + backward (B latents, weight gradients);
* D forward + backward on 2B images (reals and fakes as one batch, weight gradients);
* DiffAugment: forward on 2B images (D step) and forward + backward on B images (G step);
* mode-seeking term forward + backward (gradient w.r.t. the fakes);
* Adam: both optimizers' updates (with gradients of ones);
* EMA update of G's weights and BatchNorm statistics.

The parts overlap little, so their sum is close to the step; what the step costs beyond the sum is graph/Python
overhead and the G step's D pass.
"""
from __future__ import annotations


def tf_parts(gan, batch, args, time_it) -> list[dict]:
    """Rows ``{"what", "framework": "tfaug", "part": True, "s"}`` for a built ``ConditionalGAN``."""
    import tensorflow as tf

    from tfaug.models.losses import mode_seeking_loss

    real, labels = tf.cast(batch[0], tf.float32), tf.cast(batch[1], tf.int32)
    n = int(real.shape[0])
    z = tf.random.stateless_normal((n, gan.z_dim), seed=(0, 1))
    g, d = gan.generator, gan.discriminator
    fake = g([z, labels], training=False)
    real2, labels2 = tf.concat([real, fake], 0), tf.concat([labels, labels], 0)

    @tf.function
    def g_part():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(g([z, labels], training=True))
        return tf.add_n([tf.reduce_sum(x) for x in tape.gradient(loss, g.trainable_variables)])

    @tf.function
    def d_part():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(d([real2, labels2], training=True))
        return tf.add_n([tf.reduce_sum(x) for x in tape.gradient(loss, d.trainable_variables)])

    @tf.function
    def aug_part():
        with tf.GradientTape() as tape:
            tape.watch(fake)
            loss = tf.reduce_mean(gan.augment(fake))
        return tf.reduce_sum(gan.augment(real2)[:, 0, 0, 0]) + tf.reduce_sum(tape.gradient(loss, fake))

    @tf.function
    def ms_part():
        with tf.GradientTape() as tape:
            tape.watch(fake)
            loss = mode_seeking_loss(fake, z, labels)
        return tf.reduce_sum(tape.gradient(loss, fake))

    g_vars, d_vars = g.trainable_variables, d.trainable_variables

    @tf.function
    def adam_part():
        gan.g_optimizer.apply([tf.ones_like(v) * 1e-6 for v in g_vars], g_vars)
        gan.d_optimizer.apply([tf.ones_like(v) * 1e-6 for v in d_vars], d_vars)
        return tf.constant(0.0)

    @tf.function
    def ema_part():
        gan.update_ema(gan.ema_generator, g, gan.ema_decay)
        return tf.constant(0.0)

    parts = [("G forward+backward", g_part), ("D forward+backward on 2B", d_part),
             ("DiffAugment (fwd 2B, fwd+bwd B)", aug_part), ("mode-seeking fwd+bwd", ms_part),
             ("Adam updates (G and D)", adam_part), ("EMA update", ema_part)]
    return [{"what": name, "framework": "tfaug", "part": True,
             "s": time_it(fn, args.warmup, args.steps, args.windows)} for name, fn in parts]


def torch_parts(model, real, labels, args, time_it) -> list[dict]:
    """The same rows for a ``TorchCDCGAN`` on NCHW ``real`` and int64 ``labels``."""
    import torch

    from torch_cdcgan import diff_augment, mode_seeking_loss

    n = real.size(0)
    g, d = model.generator, model.discriminator
    z = torch.randn(n, model.z_dim)
    with torch.no_grad():
        fake0 = g(z, labels)
    real2, labels2 = torch.cat([real, fake0]), torch.cat([labels, labels])

    def grads_sum(params):
        return sum(p.grad.sum() for p in params if p.grad is not None)

    def g_part():
        g.zero_grad(set_to_none=True)
        g(z, labels).mean().backward()
        return grads_sum(g.parameters())

    def d_part():
        d.requires_grad_(True)
        d.zero_grad(set_to_none=True)
        d(real2, labels2).mean().backward()
        return grads_sum(d.parameters())

    def aug_part():
        fake = fake0.clone().requires_grad_(True)
        diff_augment(fake, model.policy).mean().backward()
        with torch.no_grad():
            out = diff_augment(real2, model.policy)
        return out[:, 0, 0, 0].sum() + fake.grad.sum()

    def ms_part():
        fake = fake0.clone().requires_grad_(True)
        mode_seeking_loss(fake, z, labels).backward()
        return fake.grad.sum()

    def adam_part():
        for opt, net in ((model.g_opt, g), (model.d_opt, d)):
            for p in net.parameters():
                p.grad = torch.full_like(p, 1e-6)
            opt.step()
        return torch.zeros(())

    def ema_part():
        with torch.no_grad():
            for e, s in model._ema_pairs:
                e.mul_(model.ema_decay).add_(s, alpha=1.0 - model.ema_decay)
        return torch.zeros(())

    parts = [("G forward+backward", g_part), ("D forward+backward on 2B", d_part),
             ("DiffAugment (fwd 2B, fwd+bwd B)", aug_part), ("mode-seeking fwd+bwd", ms_part),
             ("Adam updates (G and D)", adam_part), ("EMA update", ema_part)]
    return [{"what": name, "framework": "torch", "part": True,
             "s": time_it(fn, args.warmup, args.steps, args.windows)} for name, fn in parts]


__all__ = ["tf_parts", "torch_parts"]
