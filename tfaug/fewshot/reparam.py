"""Parametrisations of a network's weights as functions of a few trainable tensors (the adaptation methods).

A :class:`Parametrisation` owns some trainable ``keras.Variable`` *parameters* and says, for each weight of a
network it controls, how that weight's value is computed from them. Inside a ``tf.GradientTape``::

    with keras.StatelessScope(state_mapping=p.state_mapping()):
        images = generator([z, class_id])

makes the network read the computed values instead of its own variables, so gradients reach the parameters (also
inside ``tf.function``); the network's variables never change until :meth:`Parametrisation.assign` writes the
values into them. Weights a parametrisation does not control keep their stored values (they are frozen).

Methods (see :func:`parametrise`):

* ``freeze`` -- FreezeD-style fine-tuning (Mo et al. 2020, "Freeze the Discriminator"): the first
  ``freeze_fraction`` of the weighted layers, in topological order, keep their weights; every trainable weight of
  the later layers is a parameter itself.
* ``svd`` -- each kernel (a trainable weight with ndim >= 2, reshaped to ``[prod(shape[:-1]), shape[-1]]``) is
  decomposed once, ``W0 = U diag(S0) V^T``, with U and V frozen and only the singular values S trainable
  (Robb et al. 2020, "Few-Shot Adaptation of Generative Adversarial Networks"). The value is computed as
  ``W0 + U diag(S - S0) V^T``, which equals ``U diag(S) V^T`` but reproduces ``W0`` bit for bit while
  ``S = S0`` (no float round-off from recomposing). Biases and other 1-D weights are frozen.
* ``embedding`` -- nothing but the new class's rows.

In every method the rows ``>= first_new_row`` of the class-embedding tables (``class_tables``) are parameters
and their old rows are frozen, so a new class gets its own embedding while the old classes' codes stay put.

:func:`grow_network` makes those rows: a copy of a network whose class tables have more rows (new rows = the
mean of the old ones), every other weight copied.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tfaug.errors import TfaugError

METHODS = ("freeze", "svd", "embedding")
DEFAULT_FREEZE_FRACTION = 0.5


@dataclass
class Parametrisation:
    """Values of some of a network's weights as functions of trainable parameters.

    Attributes:
        method: ``freeze``, ``svd`` or ``embedding``.
        variables: the network weights it controls (``keras.Variable``), in network order.
        parameters: the trainable ``keras.Variable`` s (float32) the values are computed from.
        frozen_layers: names (paths) of the weighted layers whose weights are all frozen.
    """

    method: str
    variables: list = field(default_factory=list)
    parameters: list = field(default_factory=list)
    frozen_layers: list = field(default_factory=list)
    _value_fns: list = field(default_factory=list, repr=False)

    def add(self, variable, value_fn: Callable[[], tf.Tensor], params: list) -> None:
        """Control ``variable``: its value is ``value_fn()`` (a function of ``params``)."""
        self.variables.append(variable)
        self._value_fns.append(value_fn)
        self.parameters.extend(params)

    def values(self) -> list[tf.Tensor]:
        """The controlled weights' current values, one tensor per entry of :attr:`variables` (differentiable
        w.r.t. :attr:`parameters`; call inside the tape)."""
        return [fn() for fn in self._value_fns]

    def state_mapping(self) -> list[tuple]:
        """``[(variable, value)]`` for ``keras.StatelessScope(state_mapping=...)``."""
        return list(zip(self.variables, self.values()))

    @property
    def trainable_parameters(self) -> int:
        """Number of trainable scalars."""
        return int(sum(int(np.prod(p.shape)) for p in self.parameters))

    def assign(self) -> None:
        """Write the current values into the controlled variables (the network then holds the result)."""
        for var, value in zip(self.variables, self.values()):
            var.assign(value)


def weighted_layers(model) -> list:
    """Layers with weights of ``model`` in topological order, nested models expanded (a custom layer with
    sub-layers counts as one layer)."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(weighted_layers(layer))
        elif layer.weights:
            out.append(layer)
    return out


def parametrise(model, method: str, *, class_tables=(), first_new_row: int = 0,
                freeze_fraction: float = DEFAULT_FREEZE_FRACTION) -> Parametrisation:
    """Parametrise ``model``'s trainable weights for an adaptation method.

    Args:
        model: a built Keras model (functional, possibly with nested models).
        method: ``freeze``, ``svd`` or ``embedding`` (module docstring).
        class_tables: the layers (e.g. ``keras.layers.Embedding``) whose weights are class tables [K', d]; their
            rows ``>= first_new_row`` are trainable, the others frozen (in every method).
        first_new_row: first new class id, >= 0.
        freeze_fraction: ``freeze`` only: share of the weighted layers (topological order) kept frozen, in [0, 1].

    Returns:
        A :class:`Parametrisation` whose parameters start at the weights' current values (so the network's output
        is unchanged until they are trained).

    Raises:
        TfaugError: an unknown method, a bad fraction, or a class table with no new row.
    """
    if method not in METHODS:
        raise TfaugError(f"unknown parametrisation {method!r}; choose one of: {', '.join(METHODS)}")
    if not 0.0 <= float(freeze_fraction) <= 1.0:
        raise TfaugError(f"freeze_fraction must be in [0, 1], got {freeze_fraction!r}")
    tables = {id(layer) for layer in class_tables}
    layers = weighted_layers(model)
    n_frozen = int(np.floor(len(layers) * float(freeze_fraction))) if method == "freeze" else 0
    p = Parametrisation(method)
    for index, layer in enumerate(layers):
        if id(layer) in tables:
            for var in layer.trainable_weights:
                _add_rows(p, var, int(first_new_row))
            continue
        if method == "embedding" or (method == "freeze" and index < n_frozen):
            p.frozen_layers.append(layer.path if hasattr(layer, "path") else layer.name)
            continue
        for var in layer.trainable_weights:
            if method == "freeze":
                _add_full(p, var)
            elif len(var.shape) >= 2:
                _add_svd(p, var)
    return p


# -- growing class tables ---------------------------------------------------------------------------------
def grow_network(net, old_classes: int, new_classes: int, *, name: str):
    """A copy of ``net`` whose class tables have ``new_classes`` rows instead of ``old_classes``.

    Class tables are ``Embedding`` layers with ``input_dim == old_classes`` and layers configured with
    ``num_classes == old_classes`` (nested models included). Every weight is copied; a weight that grew by rows gets
    the mean of its old rows in each new row.

    Returns:
        ``(grown model, [its layers with grown trainable weights])``.
    """
    cfg = keras.saving.serialize_keras_object(net)
    _grow_config(cfg, int(old_classes), int(new_classes))
    cfg["config"]["name"] = name
    import tfaug.models.networks.layers  # noqa: F401  (registered layers)

    grown = keras.saving.deserialize_keras_object(cfg)
    if new_classes > old_classes:
        # An EMA copy is stored frozen; weights created non-trainable (BatchNorm statistics) stay so.
        _make_trainable(grown)
    for old, new in zip(net.weights, grown.weights):
        value = np.asarray(old.value)
        if tuple(new.shape) != value.shape:
            extra = int(new.shape[0]) - value.shape[0]
            value = np.concatenate([value, np.repeat(value.mean(axis=0, keepdims=True), extra, axis=0)])
        new.assign(value)
    tables = [layer for layer in _all_layers(grown) if any(
        int(w.shape[0]) == new_classes and w.trainable for w in layer.weights if len(w.shape) >= 1)
        and _is_table(layer, new_classes)]
    return grown, tables


def copy_network(net, *, name: str):
    """An independent copy of ``net`` (same architecture and weight values, no shared layer)."""
    return grow_network(net, 0, 0, name=name)[0]


def _make_trainable(model) -> None:
    model.trainable = True
    for layer in model.layers:  # nested models keep their own flags
        if isinstance(layer, keras.Model):
            _make_trainable(layer)
        layer.trainable = True


def _is_table(layer, classes: int) -> bool:
    cfg = layer.get_config()
    return cfg.get("input_dim") == classes or cfg.get("num_classes") == classes


def _grow_config(node, old: int, new: int) -> None:
    if isinstance(node, dict):
        inner = node.get("config")
        if isinstance(inner, dict) and node.get("class_name") and "layers" not in inner:
            if node.get("class_name") == "Embedding" and inner.get("input_dim") == old:
                inner["input_dim"] = new
            elif inner.get("num_classes") == old:
                inner["num_classes"] = new
        for value in node.values():
            _grow_config(value, old, new)
    elif isinstance(node, list):
        for value in node:
            _grow_config(value, old, new)


def _all_layers(model) -> list:
    out = []
    for layer in model.layers:
        out.extend(_all_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return out


# -- parametrisation parts -------------------------------------------------------------------------------
def _param(value, name: str):
    return keras.Variable(value, dtype="float32", trainable=True, name=name)


def _add_full(p: Parametrisation, var) -> None:
    param = _param(var.value, f"{var.name}_free")
    p.add(var, lambda: param.value, [param])


def _add_rows(p: Parametrisation, var, first: int) -> None:
    value = np.asarray(var.value)
    if value.ndim < 1 or value.shape[0] <= first:
        raise TfaugError(f"class table {var.path} has {value.shape[0] if value.ndim else 0} rows; it needs a row "
                         f"for class {first}")
    old = tf.constant(value[:first])
    new = _param(value[first:], f"{var.name}_new_rows")
    p.add(var, lambda: tf.concat([old, new.value], axis=0), [new])


def svd_factors(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of a kernel reshaped to ``[prod(shape[:-1]), shape[-1]]``, computed in float64.

    Returns:
        ``(U [m, r], S [r], Vt [r, n])`` float32 with ``r = min(m, n)`` and ``U diag(S) Vt`` equal to the reshaped
        kernel up to float32 round-off.
    """
    w = np.asarray(kernel, np.float64)
    u, s, vt = np.linalg.svd(w.reshape(-1, w.shape[-1]), full_matrices=False)
    return u.astype(np.float32), s.astype(np.float32), vt.astype(np.float32)


def _add_svd(p: Parametrisation, var) -> None:
    w0 = np.asarray(var.value, np.float32)
    u, s0, vt = svd_factors(w0)
    u_c, vt_c, s0_c, w0_c = (tf.constant(a) for a in (u, vt, s0, w0))
    s = _param(s0, f"{var.name}_singular_values")
    shape = tuple(w0.shape)

    def value():
        delta = tf.matmul(u_c * (s.value - s0_c)[None, :], vt_c)
        return w0_c + tf.reshape(delta, shape)

    p.add(var, value, [s])


__all__ = ["DEFAULT_FREEZE_FRACTION", "METHODS", "Parametrisation", "copy_network", "grow_network", "parametrise",
           "svd_factors", "weighted_layers"]
