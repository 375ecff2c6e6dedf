"""Run configurations: frozen dataclasses with named presets and a JSON/YAML round trip.

A config fully describes a run: it is written to ``RUN_DIR/config.json`` and read back on ``--resume`` and
by ``tfaug export`` (so that an exported SavedModel carries the config that trained it).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tfaug.errors import TfaugError

T = TypeVar("T")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise TfaugError(msg)



@dataclass(frozen=True)
class GANConfig:
    """Conditional GAN training configuration.

    Attributes:
        model: zoo model name (``tfaug.models.zoo.model_names()``: dcgan, cdcgan, acgan, wgan-gp, vae, cvae,
            bagan, cvae-gan, gan-bank, stylegan).
        z_dim: latent size, >= 1.
        width: base channel count of G and D (their widest layer is ``4 * width``), >= 4.
        steps: total optimisation steps (one D and one G update each), >= 1.
        batch_size: images per step, >= 1 (capped at the training-set size for tiny sets).
        g_lr, d_lr: Adam learning rates, > 0.
        beta_1, beta_2: Adam moments, in [0, 1).
        real_label: one-sided label smoothing target for real images in D's loss, in (0, 1]; 1 disables it.
        ema_decay: EMA decay of the sampling generator, in [0, 1); 0 copies G every step.
        mode_seeking: weight of the mode-seeking term in G's loss (Mao et al. 2019), >= 0; without it the
            generator drew one image per class on 100 MNIST images (see tfaug.models.cgan).
        diffaugment: comma-separated DiffAugment policies applied to D's real and fake inputs
            (``color``, ``translation``, ``cutout``; default all three); empty string disables.
        ada_target: ADA (Karras et al. 2020) target for ``E[sign(D(real))]`` in [0, 1); 0 disables ADA. With ADA
            on, the DiffAugment policies (all of them when ``diffaugment`` is empty) are each applied per image
            with an adaptive probability p, logged as ``ada_p``.
        ada_interval: D steps between ADA adjustments of p, >= 1.
        ada_kimg: ADA speed, thousands of images for p to move from 0 to 1, > 0.
        r1: weight gamma of the R1 penalty on reals (Mescheder et al. 2018), >= 0; 0 disables it.
        best_every: every this many steps score a fixed sample against the training images (pixel KID, lower
            is better) and keep ``checkpoints/best`` when it improves; 0 disables the best checkpoint.
        sample_every: write a sample grid every this many steps (0 = only at the end).
        checkpoint_every: write the ``last`` checkpoint every this many steps (0 = only at the end).
        seed: run seed (data order, noise, initialisation).
        class_balanced: draw every batch class-balanced (a class uniformly, then one of its images) instead of
            in epochs of the data's frequencies, so the tail classes of a long-tailed set condition G and D as
            often as the head (``tfaug.data.pipeline.make_step_pipeline(balanced=True)``); default False.
        options: model-specific settings by name (see each zoo model's builder; unknown names are an error
            naming the option), e.g. ``{"n_critic": 5}`` for ``wgan-gp``.
    """

    model: str = "cdcgan"
    z_dim: int = 64
    width: int = 32
    steps: int = 2000
    batch_size: int = 64
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    real_label: float = 0.9
    ema_decay: float = 0.99
    mode_seeking: float = 0.05
    # color,translation,cutout: cdcgan's class consistency on 100 MNIST images per class went from 43 % (worst class
    # 1 %) under translation,cutout to 84 % (worst 45 %) at 1,000 steps (benchmarks/results/zoo.md, follow-up).
    diffaugment: str = "color,translation,cutout"
    ada_target: float = 0.0
    ada_interval: int = 4
    ada_kimg: float = 100.0
    r1: float = 0.0
    best_every: int = 0
    sample_every: int = 500
    checkpoint_every: int = 500
    seed: int = 0
    class_balanced: bool = False
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.z_dim >= 1, "z_dim must be >= 1")
        _check(self.width >= 4, "width must be >= 4")
        _check(self.steps >= 1, "steps must be >= 1")
        _check(self.batch_size >= 1, "batch_size must be >= 1")
        _check(self.g_lr > 0 and self.d_lr > 0, "learning rates must be > 0")
        _check(0.0 < self.real_label <= 1.0, "real_label must be in (0, 1]")
        _check(0.0 <= self.ema_decay < 1.0, "ema_decay must be in [0, 1)")
        _check(self.mode_seeking >= 0.0, "mode_seeking must be >= 0")
        _check(0.0 <= self.ada_target < 1.0, "ada_target must be in [0, 1) (0 disables ADA)")
        _check(self.ada_interval >= 1, "ada_interval must be >= 1")
        _check(self.ada_kimg > 0, "ada_kimg must be > 0")
        _check(self.r1 >= 0.0, "r1 must be >= 0 (0 disables the R1 penalty)")
        _check(self.best_every >= 0, "best_every must be >= 0 (0 disables the best checkpoint)")
        _check(isinstance(self.class_balanced, bool), "class_balanced must be true or false")
        _check(isinstance(self.options, dict), "options must be a dict of model-specific settings")
        # The name is checked where models are known: the zoo's build_model, the CLI's --model choices and the
        # study config (config.py sits below every package and imports none of them).
        _check(isinstance(self.model, str) and bool(self.model), "model must be a zoo model name")


@dataclass(frozen=True)
class ClassifierConfig:
    """Classifier training configuration.

    The field defaults are the first wave's control (``small_cnn``, Adam at a constant 1e-3, 600 steps) so that
    configs written against it keep their meaning; the default control of every command is the preset
    ``classifier/fewshot`` (:data:`DEFAULT_CLASSIFIER`), see :data:`PRESETS`.

    Attributes:
        name: network builder, ``res_cnn``, ``small_cnn`` or ``lenet5``.
        steps: optimisation steps, >= 1 (step-based so that tiny and large training sets get the same budget);
            with ``min_epochs`` the floor of the budget (see :meth:`budget`).
        batch_size: images per step, >= 1.
        lr: peak learning rate, > 0 (Adam; AdamW when ``weight_decay`` > 0).
        width: base filters of ``res_cnn`` / ``small_cnn``, >= 4.
        dropout: dropout before the last layer, in [0, 1).
        augment: ``none``, ``bootstrap`` or ``classic`` (or ``classic:PRESET``).
        seed: run seed.
        kernel, fc1, fc2: ``lenet5`` only: convolution kernel size (odd, >= 1) and the two hidden dense widths
            (>= 1); 5/120/84 is LeCun's LeNet-5, S1's "dynamic LeNet" tunes them over {3,5,7} x {128,256,512} x
            {64,128,256}.
        weight_decay: decoupled weight decay of AdamW (Loshchilov & Hutter 2019), >= 0; 0 trains with Adam.
            BatchNorm parameters and biases are not decayed.
        schedule: ``constant`` or ``cosine`` (linear warm-up to ``lr``, then cosine decay to 0; Loshchilov &
            Hutter 2017).
        warmup: fraction of the steps spent warming up under ``cosine``, in [0, 0.5].
        label_smoothing: target smoothing epsilon in [0, 1) (Szegedy et al. 2016): the true class gets
            ``1 - eps + eps / K``.
        min_epochs: >= 0; the budget grows with the training set to at least this many passes over it (see
            :meth:`budget`); 0 keeps exactly ``steps``.
        max_steps: cap of the grown budget, >= 0 (0 = no cap).
        ensemble: members >= 1 trained with seeds ``seed, seed + 1, ...`` on the same data; the model averages
            their probabilities (its logits are ``log(mean softmax)``).
    """

    name: str = "small_cnn"
    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-3
    width: int = 32
    dropout: float = 0.3
    augment: str = "none"
    seed: int = 0
    kernel: int = 5
    fc1: int = 120
    fc2: int = 84
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup: float = 0.0
    label_smoothing: float = 0.0
    min_epochs: float = 0.0
    max_steps: int = 0
    ensemble: int = 1

    def __post_init__(self) -> None:
        _check(self.steps >= 1, "steps must be >= 1")
        _check(self.kernel >= 1 and self.kernel % 2 == 1, "kernel must be an odd integer >= 1")
        _check(self.fc1 >= 1 and self.fc2 >= 1, "fc1 and fc2 must be >= 1")
        _check(self.batch_size >= 1, "batch_size must be >= 1")
        _check(self.lr > 0, "lr must be > 0")
        _check(0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)")
        _check(self.weight_decay >= 0.0, "weight_decay must be >= 0")
        _check(self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
        _check(0.0 <= self.warmup <= 0.5, "warmup must be in [0, 0.5] (a fraction of the steps)")
        _check(0.0 <= self.label_smoothing < 1.0, "label_smoothing must be in [0, 1)")
        _check(self.min_epochs >= 0.0, "min_epochs must be >= 0")
        _check(self.max_steps >= 0, "max_steps must be >= 0 (0 = no cap)")
        _check(isinstance(self.ensemble, int) and self.ensemble >= 1, "ensemble must be an integer >= 1")

    def budget(self, n_train: int) -> int:
        """Optimisation steps for a real training set of ``n_train`` >= 1 images.

        ``max(steps, ceil(min_epochs * n_train / batch))``, capped at ``max_steps`` when that is > 0 (never
        below ``steps``). Pass the *real* draw's size, so that strategies that add images train as long as
        their control.
        """
        grown = math.ceil(self.min_epochs * max(1, int(n_train)) / max(1, min(self.batch_size, int(n_train))))
        steps = max(self.steps, grown)
        return max(self.steps, min(steps, self.max_steps)) if self.max_steps else steps


SCHEDULES = ("constant", "cosine")


STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("off", "bf16", "fp16", "auto")
# Keras global dtype policy of each resolved precision.
PRECISION_POLICIES = {"off": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
# Spellings of earlier versions and of Keras (a boolean meant mixed_float16).
_PRECISION_ALIASES = {False: "off", None: "off", "": "off", "none": "off", "float32": "off", "fp32": "off",
                      True: "fp16", "float16": "fp16", "mixed_float16": "fp16",
                      "bfloat16": "bf16", "mixed_bfloat16": "bf16"}


def precision_name(value: Any) -> str:
    """``"off"``, ``"bf16"``, ``"fp16"`` or ``"auto"`` from a precision setting, old spellings included (``True``
    and ``"mixed_float16"`` -> ``"fp16"``, ``"mixed_bfloat16"`` -> ``"bf16"``, ``False``/``None`` -> ``"off"``).

    Raises:
        TfaugError: an unknown value.
    """
    key = value.strip().lower() if isinstance(value, str) else value
    if isinstance(key, bool) or key is None:
        return _PRECISION_ALIASES[key]
    if key in PRECISIONS:
        return key
    if isinstance(key, str) and key in _PRECISION_ALIASES:
        return _PRECISION_ALIASES[key]
    raise TfaugError(f"unknown mixed_precision {value!r}; choose one of: {', '.join(PRECISIONS)}")


@dataclass(frozen=True)
class RuntimeConfig:
    """How a run uses the machine(s); never changes what is trained, only where and at which precision.

    Attributes:
        strategy: ``default`` (one device), ``mirrored`` (``tf.distribute.MirroredStrategy`` over this machine's
            GPUs, or over ``devices`` logical CPU devices when there is no GPU) or ``multiworker``
            (``tf.distribute.MultiWorkerMirroredStrategy``; the cluster comes from the ``TF_CONFIG`` environment
            variable, one process per worker).
        devices: ``mirrored`` only: number of replicas, >= 0; 0 means every GPU, or 2 logical CPU devices on a
            machine without GPU (CPU devices are for testing: they share the same cores).
        mixed_precision: ``"off"`` (float32), ``"bf16"`` (the ``mixed_bfloat16`` Keras policy: bfloat16 compute,
            float32 variables, no loss scaling; fast on GPUs of compute capability >= 8.0 and CPUs with AMX or
            AVX512-BF16), ``"fp16"`` (``mixed_float16``: float16 compute with loss scaling on every optimizer; for
            older GPUs) or ``"auto"`` (bf16 where the hardware has it, else fp16 on a GPU; resolved when training
            starts, see ``tfaug.utils.hardware.auto_precision``). Older configs' values are accepted: ``true`` and
            ``"mixed_float16"`` mean ``"fp16"``, ``"mixed_bfloat16"`` means ``"bf16"``, ``false`` means ``"off"``.
        jit_compile: compile training steps with XLA (``jit_compile=True``).
    """

    strategy: str = "default"
    devices: int = 0
    mixed_precision: str = "off"
    jit_compile: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "mixed_precision", precision_name(self.mixed_precision))
        _check(self.strategy in STRATEGIES, f"unknown strategy {self.strategy!r}; choose one of: {', '.join(STRATEGIES)}")
        _check(isinstance(self.devices, int) and self.devices >= 0, "devices must be an integer >= 0")
        _check(self.devices == 0 or self.strategy == "mirrored", "devices is a setting of the mirrored strategy only")

    @property
    def distributed(self) -> bool:
        """True for ``mirrored`` and ``multiworker``."""
        return self.strategy != "default"

    @property
    def dtype_policy(self) -> str:
        """The Keras global dtype policy of ``mixed_precision`` (``float32``, ``mixed_bfloat16`` or
        ``mixed_float16``); ``auto`` must have been resolved (``tfaug.training.distribute.resolve_runtime``)."""
        _check(self.mixed_precision != "auto", "mixed_precision 'auto' is resolved when training starts")
        return PRECISION_POLICIES[self.mixed_precision]


FEWSHOT = ClassifierConfig(name="res_cnn", width=16, dropout=0.3, batch_size=64, lr=2e-3, weight_decay=5e-4,
                           schedule="cosine", warmup=0.05, label_smoothing=0.1, steps=800, min_epochs=40,
                           max_steps=4000)
DEFAULT_CLASSIFIER = "classifier/fewshot"

PRESETS: dict[str, Any] = {
    # GAN presets: "quick" is for tests and smoke runs, "digits" is the demo's, "mnist" for 28x28 data.
    "gan/quick": GANConfig(steps=150, batch_size=32, width=16, sample_every=0, checkpoint_every=0),
    "gan/digits": GANConfig(steps=1500, batch_size=64, width=32),
    "gan/mnist": GANConfig(steps=3000, batch_size=64, width=64, z_dim=100),
    # S1's 64x64 RGB DCGAN (coins): z=100, G 512->256->128->64->3 and D 64->128->256->512->1, lr 5e-4, batch 128.
    "gan/dcgan64": GANConfig(model="dcgan", z_dim=100, width=64, g_lr=5e-4, d_lr=5e-4, batch_size=128,
                             real_label=1.0, ema_decay=0.0, mode_seeking=0.0, diffaugment=""),
    # S4's best conditional DCGAN variant: one-hot conditioning, one-sided label smoothing 0.9, batch 100.
    "gan/cdcgan-onehot": GANConfig(model="cdcgan", batch_size=100, real_label=0.9, options={"conditioning": "onehot"}),
    # Small-data adversarial defaults: DiffAugment policies under ADA plus a light R1 penalty.
    "gan/ada": GANConfig(ada_target=0.6, r1=0.1, diffaugment="color,translation,cutout", best_every=500),
    # Compact conditional StyleGAN2 (issue 7): "stylegan" for 28x28-64x64 data, "stylegan-quick" for tests/smoke runs.
    "gan/stylegan": GANConfig(model="stylegan", steps=2000, batch_size=32, width=16, z_dim=64, g_lr=2.5e-4,
                              d_lr=2.5e-4, beta_1=0.0, beta_2=0.99, real_label=1.0, ema_decay=0.99,
                              mode_seeking=0.05, diffaugment="translation,cutout", r1=0.1),
    "gan/stylegan-quick": GANConfig(model="stylegan", steps=100, batch_size=16, width=8, z_dim=16, g_lr=1e-3,
                                    d_lr=1e-3, beta_1=0.0, beta_2=0.99, real_label=1.0, ema_decay=0.9,
                                    mode_seeking=0.0, diffaugment="translation", r1=0.1, sample_every=0,
                                    checkpoint_every=0, options={"w_dim": 16, "mapping_layers": 2}),
    # The few-shot control every enrichment must beat (issue 15); how it was chosen: docs/RESULTS.md "controls".
    "classifier/fewshot": FEWSHOT,
    "classifier/quick": ClassifierConfig(steps=60, batch_size=32, width=16),
    # The first wave's control (small VGG-style CNN, Adam, 600 steps), kept for comparison.
    "classifier/small_cnn": ClassifierConfig(),
}


def preset(name: str) -> Any:
    """Return a named preset config (``gan/quick``, ``classifier/default`` ...)."""
    if name not in PRESETS:
        raise TfaugError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def to_dict(cfg: Any) -> dict:
    """Config -> plain dict (JSON/YAML-ready)."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict) -> T:
    """Plain dict -> config; an unknown key is an error that names it."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise TfaugError(f"unknown {cls.__name__} key(s): {', '.join(unknown)}; known keys: {', '.join(sorted(names))}")
    return cls(**data)


def replace(cfg: T, **changes: Any) -> T:
    """A copy of ``cfg`` with ``changes`` applied (``None`` values are ignored, as from unset CLI flags)."""
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})


def to_json(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)


def from_json(cls: type[T], text: str) -> T:
    return from_dict(cls, json.loads(text))


def to_yaml(cfg: Any) -> str:
    import yaml

    return yaml.safe_dump(to_dict(cfg), sort_keys=True)


def from_yaml(cls: type[T], text: str) -> T:
    import yaml

    return from_dict(cls, yaml.safe_load(text) or {})


__all__ = ["GANConfig", "ClassifierConfig", "DEFAULT_CLASSIFIER", "FEWSHOT", "RuntimeConfig", "STRATEGIES",
           "PRECISIONS", "PRECISION_POLICIES", "precision_name", "PRESETS", "preset", "to_dict", "from_dict", "replace",
           "to_json", "from_json", "to_yaml", "from_yaml"]
