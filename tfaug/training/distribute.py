"""Where training runs: ``tf.distribute`` strategies, precision policy and the chief worker (issue 8).

A :class:`tfaug.config.RuntimeConfig` never changes what is trained, only where: the GAN runner and the classifier
build their models inside ``strategy.scope()``, distribute their datasets with the strategy, average losses over
the global batch (``tf.nn.compute_average_loss``) and let only the chief write checkpoints and run directories.

Call order in a process: :func:`configure_devices` (before TensorFlow creates its first tensor), then
:func:`make_strategy`, then :func:`apply_precision`; :func:`runtime_scope` does all three.
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


def apply_precision(runtime: RuntimeConfig) -> None:
    """Set the global Keras dtype policy: ``mixed_float16`` with ``runtime.mixed_precision``, else float32."""
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16" if runtime.mixed_precision else "float32")


@contextlib.contextmanager
def runtime_scope(runtime: RuntimeConfig | None):
    """``with runtime_scope(rt) as strategy:`` devices, precision policy and ``strategy.scope()`` in one.

    The previous global dtype policy is restored on exit. ``None`` means ``RuntimeConfig()``.
    """
    import keras

    runtime = runtime or RuntimeConfig()
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


__all__ = ["configure_devices", "make_strategy", "apply_precision", "runtime_scope", "is_chief",
           "DEFAULT_CPU_REPLICAS"]
