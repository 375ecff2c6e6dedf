"""Registered Keras layers of adapted sampling networks: class routing between a base generator and the generator
of a class added later (``tfaug adapt``).

An adapted sampling network runs the base network on every row (with class ids clamped into the base's range by
:class:`ClampClassId`, so its embedding lookups stay valid) and the new class's network on every row, and
:class:`ClassRouter` keeps, row by row, the base's image for ``class_id < num_base_classes`` and the new network's
image otherwise. A row of an old class therefore gets exactly the base's image (the base sees the same batch it
would see on its own), whatever the adaptation did to the new class's weights.

:class:`ClassIdMap` renames a caller's class ids to a network's (a study's pretrained-and-adapted generator serves
the study's classes 0..K-1 with rows K0.. of a network grown from a K0-class source; ``mapped_network``).
"""
from __future__ import annotations

import keras
from keras import layers, ops

from tfaug.errors import TfaugError


@keras.saving.register_keras_serializable(package="tfaug")
class ClampClassId(layers.Layer):
    """``class_id int32 [N] -> minimum(class_id, max_id)`` int32 [N] (ids of classes a network does not know are
    mapped to a valid one; their rows are discarded by :class:`ClassRouter`).

    Args:
        max_id: largest class id the downstream network accepts, >= 0.
    """

    def __init__(self, max_id: int, **kwargs):
        super().__init__(**kwargs)
        if int(max_id) < 0:
            raise TfaugError(f"max_id must be >= 0, got {max_id!r}")
        self.max_id = int(max_id)
        self.built = True

    def call(self, class_id):
        return ops.minimum(ops.cast(class_id, "int32"), self.max_id)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, class_id):
        return keras.KerasTensor(class_id.shape, dtype="int32")

    def get_config(self) -> dict:
        return {**super().get_config(), "max_id": self.max_id}


@keras.saving.register_keras_serializable(package="tfaug")
class ClassRouter(layers.Layer):
    """``[class_id int32 [N], base_images [N, ...], new_images [N, ...]] -> images [N, ...]``: row i is
    ``base_images[i]`` when ``class_id[i] < num_base_classes``, else ``new_images[i]`` (values copied, not mixed).

    Args:
        num_base_classes: K, the number of classes the base network serves (>= 1).
    """

    def __init__(self, num_base_classes: int, **kwargs):
        super().__init__(**kwargs)
        if int(num_base_classes) < 1:
            raise TfaugError(f"num_base_classes must be >= 1, got {num_base_classes!r}")
        self.num_base_classes = int(num_base_classes)
        self.built = True

    def call(self, inputs):
        class_id, base, new = inputs
        new = ops.cast(new, base.dtype)
        is_base = ops.reshape(ops.cast(class_id, "int32") < self.num_base_classes,
                              (-1,) + (1,) * (len(base.shape) - 1))
        return ops.where(is_base, base, new)

    def compute_output_shape(self, input_shapes):
        return input_shapes[1]

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[1].shape, dtype=inputs[1].dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_base_classes": self.num_base_classes}


def routed_network(base: keras.Model, new: keras.Model, num_base_classes: int, *, name: str) -> keras.Model:
    """A sampling network with ``base``'s inputs that routes classes ``< num_base_classes`` to ``base`` and the
    others to ``new``.

    Args:
        base: sampling network ``[z, class_id]`` or ``[z, class_id, truncation]`` -> images [N, H, W, C].
        new: the new class's network: the same inputs as ``base`` (a generator knowing more classes), or the
            same inputs without ``class_id`` (e.g. an AGE network ``[z, truncation]``), or ``[z]``.
        num_base_classes: K; class ids ``>= K`` go to ``new``.
        name: name of the returned model.

    Returns:
        A functional model with the same inputs (names, shapes, dtypes) as ``base`` and its output shape.

    Raises:
        TfaugError: the two networks' inputs or output shapes do not fit together.
    """
    if len(base.inputs) not in (2, 3):
        raise TfaugError(f"the base network must take [z, class_id(, truncation)], it takes {len(base.inputs)} inputs")
    if tuple(base.outputs[0].shape[1:]) != tuple(new.outputs[0].shape[1:]):
        raise TfaugError(f"the new class's network makes images of shape {tuple(new.outputs[0].shape[1:])}, "
                         f"the base {tuple(base.outputs[0].shape[1:])}")
    inputs = [keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=_input_name(t, i))
              for i, t in enumerate(base.inputs)]
    z, class_id, rest = inputs[0], inputs[1], inputs[2:]
    base_images = base([z, ClampClassId(num_base_classes - 1, name="base_class_id")(class_id), *rest])
    n_new = len(new.inputs)
    if n_new == len(base.inputs):
        new_images = new([z, class_id, *rest])
    elif n_new == len(base.inputs) - 1:
        new_images = new([z, *rest]) if rest else new(z)
    else:
        raise TfaugError(f"the new class's network takes {n_new} inputs; the base takes {len(base.inputs)}")
    images = ClassRouter(num_base_classes, name="route")([class_id, base_images, new_images])
    return keras.Model(inputs, images, name=name)


@keras.saving.register_keras_serializable(package="tfaug")
class ClassIdMap(layers.Layer):
    """``class_id int32 [N] -> table[class_id]`` int32 [N]: a caller's class ids (``0 .. len(table) - 1``) renamed
    to the ids a network knows (e.g. target class c of a pretrained-and-adapted generator -> K0 + c).

    Args:
        table: one network class id (>= 0) per caller class id; at least one entry.
    """

    def __init__(self, table, **kwargs):
        super().__init__(**kwargs)
        table = [int(v) for v in table]
        if not table or min(table) < 0:
            raise TfaugError(f"a class-id table needs at least one id, all >= 0; got {table!r}")
        self.table = table
        self.built = True

    def call(self, class_id):
        table = ops.convert_to_tensor(self.table, dtype="int32")
        return ops.take(table, ops.cast(class_id, "int32"), axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, class_id):
        return keras.KerasTensor(class_id.shape, dtype="int32")

    def get_config(self) -> dict:
        return {**super().get_config(), "table": list(self.table)}


def mapped_network(net: keras.Model, table, *, name: str) -> keras.Model:
    """``net`` behind a :class:`ClassIdMap`: same inputs ``[z, class_id(, truncation)]`` and output, but caller class
    id c is run as ``net``'s class ``table[c]`` (caller ids ``0 .. len(table) - 1``)."""
    if len(net.inputs) not in (2, 3):
        raise TfaugError(f"a class-mapped network must take [z, class_id(, truncation)], it takes {len(net.inputs)} "
                         "inputs")
    inputs = [keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=_input_name(t, i))
              for i, t in enumerate(net.inputs)]
    mapped = ClassIdMap(table, name="class_map")(inputs[1])
    return keras.Model(inputs, net([inputs[0], mapped, *inputs[2:]]), name=name)


def _input_name(tensor, index: int) -> str:
    name = str(getattr(tensor, "name", "") or "")
    return name.split(":")[0] or ("z", "class_id", "truncation")[index]


__all__ = ["ClampClassId", "ClassIdMap", "ClassRouter", "mapped_network", "routed_network"]
