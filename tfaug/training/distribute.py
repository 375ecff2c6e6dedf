"""Where training runs: ``tf.distribute`` strategies, precision policy and the chief worker (issue 8).

A :class:`tfaug.config.RuntimeConfig` never changes what is trained, only where: the GAN runner and the classifier
build their models inside ``strategy.scope()``, distribute their datasets with the strategy, average losses over
the global batch (``tf.nn.compute_average_loss``) and let only the chief write checkpoints and run directories.

Call order in a process: :func:`configure_devices` (before TensorFlow creates its first tensor), then
:func:`make_strategy`, then :func:`apply_precision`; :func:`runtime_scope` does all three.

How a distributed GAN step works (``tfaug.training.gan_runner`` uses this for every strategy, the default one
included, so one code path is tested everywhere):

* The global batch is ``cfg.batch_size`` images; :func:`check_global_batch` requires it to be divisible by the
  replica count and :func:`distribute_dataset` splits each batch into per-replica shards (contiguous shards under
  ``MirroredStrategy``; per-worker data sharding under ``MultiWorkerMirroredStrategy``).
* :func:`make_train_function` runs the model's own ``train_step`` on every replica (``strategy.run``; with
  ``jit_compile`` the per-replica function is XLA-compiled) and returns the MEAN over replicas of its logs. Losses
  inside ``train_step`` are divided by the *global* batch, and Keras' optimizers sum the gradients over replicas,
  so one step equals one step on the whole batch on one device.
* Randomness: latents and other per-example draws are slices of one global-batch draw
  (``GenerativeModel.batch_normal``), so replicas get different noise and one step under ``mirrored`` draws exactly
  the latents of the default strategy; augmentation seeds are folded with the replica id.
* BatchNorm: :func:`synchronize_batchnorm` makes every BatchNormalization layer of the model's networks use the
  statistics of the global batch when there is more than one replica (otherwise each replica would normalise with
  its own shard's statistics and hold different moving averages). The EMA generator's weights, ADA's state and
  the noise stream's state are then identical on every replica and each is written once per step.
* Mixed precision (``RuntimeConfig.mixed_precision``): networks built under ``mixed_bfloat16`` (``bf16``) or
  ``mixed_float16`` (``fp16``) compute in half precision with float32 variables; their image and logit outputs are
  float32 layers, so losses, gradient penalties, R1, ADA statistics and the EMA generator stay float32, and Keras'
  BatchNormalization normalises and keeps its moving statistics in float32. Under ``fp16`` only, every optimizer
  is a ``keras.optimizers.LossScaleOptimizer`` (``GenerativeModel.build_optimizers``) and train steps scale their
  losses with ``optimizer.scale_loss`` (bfloat16 has float32's exponent range, so it needs no loss scaling).
  ``auto`` is resolved by :func:`resolve_runtime` (``tfaug.utils.hardware.auto_precision``).
* Only :func:`is_chief` writes the run directory; other workers write to a temporary directory that is deleted.
"""
from __future__ import annotations

import contextlib
import json
import os

from tfaug.config import RuntimeConfig
from tfaug.errors import TfaugError

DEFAULT_CPU_REPLICAS = 2  # mirrored on a machine without GPU and devices=0


def configure_devices(runtime: RuntimeConfig) -> int:
    """Make the devices a ``mirrored`` run needs; returns the replica count it will use (1 otherwise).

    On a machine with GPUs nothing is configured (every GPU, or the first ``devices`` of them). Without a GPU,
    the one physical CPU is split into ``devices`` (default 2) logical CPU devices, which TensorFlow only allows
    before it has initialised its devices.

    Raises:
        TfaugError: the CPU must be split but TensorFlow is already initialised with fewer logical devices.
    """
    if runtime.strategy != "mirrored":
        return 1
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        n = runtime.devices or len(gpus)
        if n > len(gpus):
            raise TfaugError(f"devices={n} but this machine has {len(gpus)} GPU(s)")
        return n
    n = runtime.devices or DEFAULT_CPU_REPLICAS
    cpu = tf.config.list_physical_devices("CPU")[0]
    existing = tf.config.get_logical_device_configuration(cpu)
    if existing is not None and len(existing) >= n:
        return n
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have >= n:
            return n
        raise TfaugError(f"the mirrored strategy needs {n} logical CPU devices but TensorFlow is already "
                         f"initialised with {have}; choose the strategy before any TensorFlow work in this "
                         f"process") from None
    return n


def make_strategy(runtime: RuntimeConfig):
    """The ``tf.distribute.Strategy`` of ``runtime`` (the default strategy for ``default``).

    ``mirrored`` uses the GPUs, or ``devices`` logical CPU devices (see :func:`configure_devices`, called here)
    with ``ReductionToOneDevice`` (NCCL needs GPUs). ``multiworker`` needs ``TF_CONFIG`` in the environment.

    Raises:
        TfaugError: ``multiworker`` without a usable ``TF_CONFIG``; devices that cannot be made.
    """
    import tensorflow as tf

    if runtime.strategy == "default":
        return tf.distribute.get_strategy()
    if runtime.strategy == "mirrored":
        n = configure_devices(runtime)
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus[:n]])
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")][:n]
        return tf.distribute.MirroredStrategy(cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    tf_config = _tf_config()
    if tf_config is None:
        raise TfaugError("the multiworker strategy needs the TF_CONFIG environment variable "
                         "(cluster addresses and this worker's task); see the README, 'Several GPUs and machines'")
    return tf.distribute.MultiWorkerMirroredStrategy()


def resolve_runtime(runtime: RuntimeConfig | None) -> RuntimeConfig:
    """``runtime`` (None: ``RuntimeConfig()``) with ``mixed_precision="auto"`` replaced by what this machine
    supports (``bf16`` or ``fp16``); unchanged otherwise.

    Raises:
        TfaugError: ``auto`` on a machine without GPU whose CPU lacks bfloat16 instructions.
    """
    import dataclasses

    from tfaug.utils.hardware import auto_precision

    runtime = runtime or RuntimeConfig()
    if runtime.mixed_precision != "auto":
        return runtime
    return dataclasses.replace(runtime, mixed_precision=auto_precision())


def apply_precision(runtime: RuntimeConfig) -> None:
    """Set the global Keras dtype policy of ``runtime.mixed_precision``: ``float32`` (off), ``mixed_bfloat16``
    (bf16) or ``mixed_float16`` (fp16); ``auto`` is resolved first (:func:`resolve_runtime`)."""
    import keras

    keras.mixed_precision.set_global_policy(resolve_runtime(runtime).dtype_policy)


@contextlib.contextmanager
def runtime_scope(runtime: RuntimeConfig | None):
    """``with runtime_scope(rt) as strategy:`` devices, precision policy and ``strategy.scope()`` in one.

    The previous global dtype policy is restored on exit. ``None`` means ``RuntimeConfig()``.
    """
    import keras

    runtime = resolve_runtime(runtime)
    strategy = make_strategy(runtime)
    previous = keras.mixed_precision.global_policy()
    apply_precision(runtime)
    try:
        with strategy.scope():
            yield strategy
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _tf_config() -> dict | None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError:
        raise TfaugError("TF_CONFIG is not valid JSON") from None
    if not isinstance(cfg, dict) or "cluster" not in cfg or "task" not in cfg:
        raise TfaugError("TF_CONFIG must hold 'cluster' and 'task'")
    return cfg


def is_chief() -> bool:
    """True in the process that writes run directories and checkpoints: every single-process run, and in a
    multi-worker cluster the ``chief`` task or, without one, worker 0 (``TF_CONFIG``)."""
    cfg = _tf_config()
    if cfg is None:
        return True
    task = cfg.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in cfg.get("cluster", {})


def num_replicas(strategy=None) -> int:
    """Replicas in sync of ``strategy`` (default: the current one); 1 for the default strategy."""
    import tensorflow as tf

    return int((strategy or tf.distribute.get_strategy()).num_replicas_in_sync)


def check_global_batch(batch_size: int, strategy) -> int:
    """Return the per-replica batch of a global batch of ``batch_size`` images.

    Raises:
        TfaugError: ``batch_size`` is not divisible by the strategy's replica count.
    """
    n = num_replicas(strategy)
    if int(batch_size) % n:
        raise TfaugError(f"the global batch size {batch_size} must be divisible by the {n} replicas of the "
                         f"strategy; choose a batch size that is a multiple of {n}")
    return int(batch_size) // n


def distribute_dataset(dataset, strategy):
    """``dataset`` of global batches -> the strategy's distributed dataset (per-replica shards).

    The default strategy gets the dataset unchanged. Multi-worker runs shard by data (every worker reads the
    same in-memory arrays and keeps its part of each global batch).
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def synchronize_batchnorm(networks, strategy) -> int:
    """Make every ``BatchNormalization`` layer of ``networks`` use global-batch statistics under ``strategy``.

    With one replica nothing changes. With several, each layer is switched to ``synchronized=True`` in place
    (Keras reads the flag when a training step is traced), so the forward pass and the moving statistics equal
    those of one device on the global batch. Saved networks then carry ``synchronized=True``, which changes
    nothing in inference or on one replica.

    Args:
        networks: an iterable of Keras models (nested models are searched too).
        strategy: the strategy the step will run under.

    Returns:
        The number of BatchNormalization layers switched.
    """
    import keras

    if num_replicas(strategy) <= 1:
        return 0
    count = 0
    for net in networks:
        for layer in _all_layers(net):
            if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized:
                layer.synchronized = True
                count += 1
    return count


def _all_layers(model):
    for layer in getattr(model, "layers", []):
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def make_train_function(step_fn, strategy, *, jit_compile: bool = False, name: str = "model"):
    """Turn a per-replica ``step_fn(batch) -> {name: scalar}`` into a compiled step over a distributed batch.

    The returned callable runs ``strategy.run(step_fn)`` inside one ``tf.function`` and reduces every log with
    ``ReduceOp.MEAN`` over the replicas (float32 scalars). With ``jit_compile`` the per-replica function is
    compiled with XLA; a model XLA cannot compile fails on the first call with one clear TfaugError.

    Args:
        step_fn: the model's ``train_step`` (losses over the global batch, see the module docstring).
        strategy: the strategy the model was built under.
        jit_compile: XLA-compile the per-replica step.
        name: model name for error messages.
    """
    import tensorflow as tf

    def per_replica(batch):
        return {k: tf.cast(v, tf.float32) for k, v in step_fn(batch).items()}

    replica_fn = tf.function(per_replica, jit_compile=True) if jit_compile else per_replica

    @tf.function
    def train_function(batch):
        logs = strategy.run(replica_fn, args=(batch,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in logs.items()}

    if not jit_compile:
        return train_function
    state = {"ok": False}

    def checked(batch):
        if state["ok"]:
            return train_function(batch)
        try:
            out = train_function(batch)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.InternalError) as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise TfaugError(f"model {name!r} cannot be compiled with XLA ({first}); train it without "
                             f"jit_compile (--xla)") from None
        state["ok"] = True
        return out

    return checked


__all__ = ["configure_devices", "make_strategy", "resolve_runtime", "apply_precision", "runtime_scope", "is_chief",
           "DEFAULT_CPU_REPLICAS", "num_replicas", "check_global_batch", "distribute_dataset",
           "synchronize_batchnorm", "make_train_function"]
