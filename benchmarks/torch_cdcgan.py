"""tfaug's conditional DCGAN (``cdcgan``, embedding conditioning, projection discriminator) written in PyTorch.

A benchmarks-only twin of ``tfaug.models.networks.generators.build_generator`` +
``tfaug.models.networks.discriminators.build_discriminator`` + ``tfaug.models.cgan.ConditionalGAN.train_step``,
used by ``benchmarks/train_throughput.py`` to compare training speed. Same layers and parameter count (the
benchmark asserts it), same hyper-parameters where the frameworks' defaults differ (BatchNorm epsilon 1e-3 and
momentum 0.1 = Keras' 0.9; Adam epsilon 1e-7), same step:

1. ``fake = G(z, y)`` once;
2. D step on ``augment(concat(real, fake.detach()))`` with the non-saturating loss and one-sided label smoothing;
3. G step against the updated D on ``augment(fake)`` plus the mode-seeking term (Mao et al. 2019), with D's
   parameters frozen (``requires_grad_(False)``, as idiomatic PyTorch GAN code does, so no D weight gradients
   are computed: TensorFlow prunes them from its graph too);
4. EMA of G's parameters and BatchNorm buffers.

DiffAugment follows the authors' PyTorch reference (``DiffAugment_pytorch.py``) with tfaug's conventions (images
in [-1, 1], zero fill, saturation skipped for one channel). Supports the 28x28 plan only where tfaug's planner gives
a 7x7 start grid and two 2x resamplings (28x28; 25..31 px sides would need a crop, which is not written here).

Importing this module needs ``torch`` (``make bench-install``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

KERAS_BN_EPS = 1e-3  # Keras BatchNormalization default (PyTorch's is 1e-5)
KERAS_BN_MOMENTUM = 0.1  # = 1 - tfaug's BN_MOMENTUM 0.9 (PyTorch counts momentum the other way round)
KERAS_ADAM_EPS = 1e-7


def _plan(h: int, w: int) -> tuple[int, int, int]:
    """tfaug's ``plan_generator``: (start_h, start_w, resamplings)."""
    n = max(0, int(math.floor(math.log2(min(h, w) / 4))))
    return math.ceil(h / 2**n), math.ceil(w / 2**n), n


def _init(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases (tfaug's ``dcgan_init``); BN gamma N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """``[z [N, z_dim], class_id int64 [N]] -> images [N, C, H, W]`` in [-1, 1]."""

    def __init__(self, image_shape=(28, 28, 1), num_classes: int = 10, z_dim: int = 64, width: int = 32,
                 embed_dim: int = 32):
        super().__init__()
        h, w, c = image_shape
        sh, sw, n_up = _plan(h, w)
        if (sh * 2**n_up, sw * 2**n_up) != (h, w):
            raise ValueError(f"the PyTorch twin only covers shapes without a crop, got {image_shape}")
        chans = [max(width, (4 * width) // 2**i) for i in range(n_up + 1)]
        self.start = (chans[0], sh, sw)
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.project = nn.Linear(z_dim + embed_dim, sh * sw * chans[0], bias=False)
        self.project_bn = nn.BatchNorm2d(chans[0], eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM)
        blocks = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            blocks += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(cout, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM), nn.ReLU()]
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Conv2d(chans[-1], c, 3, padding=1)
        _init(self)
        nn.init.normal_(self.embed.weight, 0.0, 1.0)

    def forward(self, z, class_id):
        x = self.project(torch.cat([z, self.embed(class_id)], dim=1)).view(-1, *self.start)
        x = self.blocks(F.relu(self.project_bn(x)))
        return torch.tanh(self.to_image(x))


class Discriminator(nn.Module):
    """Projection discriminator with the dense head: ``[images [N, C, H, W], class_id [N]] -> logits [N, 1]``."""

    def __init__(self, image_shape=(28, 28, 1), num_classes: int = 10, width: int = 32):
        super().__init__()
        h, w, c = image_shape
        sh, sw, n_down = _plan(h, w)
        chans = [max(width, (4 * width) // 2**i) for i in range(n_down + 1)][::-1]
        self.stem = nn.Conv2d(c, chans[0], 3, padding=1)
        self.downs = nn.ModuleList(nn.Conv2d(cin, cout, 4, stride=2, padding=1)
                                   for cin, cout in zip(chans[:-1], chans[1:]))
        self.features = nn.Linear(chans[-1] * (h // 2**n_down) * (w // 2**n_down), chans[-1])
        self.logit = nn.Linear(chans[-1], 1)
        self.class_projection = nn.Embedding(num_classes, chans[-1])
        _init(self)
        nn.init.normal_(self.class_projection.weight, 0.0, 0.02)

    def forward(self, x, class_id):
        x = F.leaky_relu(self.stem(x), 0.2)
        for conv in self.downs:
            x = F.leaky_relu(conv(x), 0.2)
        feats = F.leaky_relu(self.features(torch.flatten(x, 1)), 0.2)
        return self.logit(feats) + (self.class_projection(class_id) * feats).sum(dim=1, keepdim=True)


# -- DiffAugment (NCHW) --------------------------------------------------------------------------------------
def rand_color(x):
    x = x + (torch.rand(x.size(0), 1, 1, 1, device=x.device) - 0.5)
    if x.size(1) != 1:
        mean_c = x.mean(dim=1, keepdim=True)
        x = (x - mean_c) * (torch.rand(x.size(0), 1, 1, 1, device=x.device) * 2) + mean_c
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, device=x.device) + 0.5) + mean


def rand_translation(x, ratio: float = 0.125):
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gb, gy, gx = torch.meshgrid(torch.arange(n), torch.arange(h), torch.arange(w), indexing="ij")
    # Zero padding of one ring of width sh/sw, then a gather: uncovered pixels read the padding (0).
    gy = torch.clamp(gy + ty + sh, 0, h + 2 * sh - 1)
    gx = torch.clamp(gx + tx + sw, 0, w + 2 * sw - 1)
    padded = F.pad(x, [sw, sw, sh, sh])
    return padded.permute(0, 2, 3, 1)[gb, gy, gx].permute(0, 3, 1, 2)


def rand_cutout(x, ratio: float = 0.5):
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + 1 - ch % 2, (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + 1 - cw % 2, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - (cy - ch // 2)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - (cx - cw // 2)
    inside = (rows >= 0) & (rows < ch) & (cols >= 0) & (cols < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


OPS = {"color": rand_color, "translation": rand_translation, "cutout": rand_cutout}


def diff_augment(x, policy: tuple[str, ...]):
    for name in policy:
        x = OPS[name](x)
    return x


def mode_seeking_loss(images, z, class_id, eps: float = 1e-5):
    """tfaug.models.losses.mode_seeking_loss: 1 / (mean same-class RMS image distance / RMS latent distance)."""
    def rms(a):
        sq = (a * a).sum(1)
        d2 = sq[:, None] + sq[None, :] - 2.0 * a @ a.t()
        return torch.sqrt(torch.clamp(d2, min=1e-8) / a.size(1))

    n = images.size(0)
    pairs = (class_id[:, None] == class_id[None, :]).float() * (1.0 - torch.eye(n))
    count = pairs.sum()
    ratio = (rms(images.reshape(n, -1)) / rms(z.reshape(n, -1)) * pairs).sum() / torch.clamp(count, min=1.0)
    return torch.where(count > 0, 1.0 / (ratio + eps), torch.zeros(()))


class TorchCDCGAN:
    """G, D, EMA G and both Adam optimizers; :meth:`train_step` is tfaug's ``ConditionalGAN.train_step``."""

    def __init__(self, image_shape=(28, 28, 1), num_classes: int = 10, z_dim: int = 64, width: int = 32, *,
                 lr: float = 2e-4, betas=(0.5, 0.999), real_label: float = 0.9, ema_decay: float = 0.99,
                 mode_seeking: float = 0.05, diffaugment: tuple[str, ...] = ("color", "translation", "cutout"),
                 seed: int = 0):
        torch.manual_seed(seed)
        self.z_dim, self.real_label, self.ema_decay = z_dim, real_label, ema_decay
        self.mode_seeking, self.policy = mode_seeking, tuple(diffaugment)
        self.generator = Generator(image_shape, num_classes, z_dim, width)
        self.discriminator = Discriminator(image_shape, num_classes, width)
        self.ema_generator = Generator(image_shape, num_classes, z_dim, width)
        self.ema_generator.load_state_dict(self.generator.state_dict())
        self.ema_generator.requires_grad_(False)
        self.g_opt = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas, eps=KERAS_ADAM_EPS)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas, eps=KERAS_ADAM_EPS)
        self._ema_pairs = [(e, s) for e, s in zip(self.ema_generator.state_dict().values(),
                                                  self.generator.state_dict().values()) if e.is_floating_point()]

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per network (comparable with Keras' ``count_params`` of trainable weights)."""
        return {"generator": sum(p.numel() for p in self.generator.parameters()),
                "discriminator": sum(p.numel() for p in self.discriminator.parameters())}

    def train_step(self, real, labels) -> dict[str, float]:
        """One D then one G update on ``real`` float [N, C, H, W] in [-1, 1] and ``labels`` int64 [N]."""
        n = real.size(0)
        z = torch.randn(n, self.z_dim)
        fake = self.generator(z, labels)
        # D step on reals and fakes as one batch.
        self.discriminator.requires_grad_(True)
        d_in = diff_augment(torch.cat([real, fake.detach()]), self.policy)
        logits = self.discriminator(d_in, torch.cat([labels, labels])).view(-1)
        real_logits, fake_logits = logits[:n], logits[n:]
        d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, self.real_label))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        # G step against the updated D.
        self.discriminator.requires_grad_(False)
        g_logits = self.discriminator(diff_augment(fake, self.policy), labels).view(-1)
        g_loss = F.softplus(-g_logits).mean()
        g_total = g_loss + self.mode_seeking * mode_seeking_loss(fake, z, labels) if self.mode_seeking else g_loss
        self.g_opt.zero_grad(set_to_none=True)
        g_total.backward()
        self.g_opt.step()
        with torch.no_grad():
            for e, s in self._ema_pairs:
                e.mul_(self.ema_decay).add_(s, alpha=1.0 - self.ema_decay)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}


__all__ = ["Generator", "Discriminator", "TorchCDCGAN", "diff_augment", "mode_seeking_loss"]
