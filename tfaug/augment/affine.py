"""RandomAffine: rotation, zoom and translation composed into ONE affine warp.

Chaining Keras' RandomRotation, RandomZoom and RandomTranslation resamples the image three times, and every
bilinear resampling blurs; on 8x8 or 28x28 images three of them wash strokes out visibly. This layer samples the
three parameters per image, composes them into one matrix (Keras' own ``_compute_affine_matrix``) and
resamples once. Conventions are those of the Keras layers it replaces, so the ranges in ``AugmentSpec`` mean
the same thing.
"""
from __future__ import annotations

import keras


def _pair(value, name: str) -> tuple[float, float]:
    if isinstance(value, (tuple, list)):
        lo, hi = float(value[0]), float(value[1])
    else:
        lo, hi = -abs(float(value)), abs(float(value))
    if lo > hi:
        raise ValueError(f"{name} range must have low <= high, got {value!r}")
    return lo, hi


@keras.saving.register_keras_serializable(package="tfaug")
class RandomAffine(keras.layers.RandomRotation):
    """Random rotation + zoom + translation with a single resampling.

    Args:
        rotation: fraction of a full turn, ``v`` -> U(-v, v) or ``(lo, hi)`` (RandomRotation's ``factor``).
        zoom: RandomZoom's height factor: ``f`` shows ``1 + f`` times the field of view (negative = zoom in);
            ``v`` -> U(-v, v) or ``(lo, hi)``, each > -1.
        translation: shift of U(-v, v) of the width (x) and height (y), v in [0, 1].
        fill_mode, fill_value, interpolation, seed: as in ``keras.layers.RandomRotation``.
    """

    def __init__(self, rotation=0.0, zoom=0.0, translation: float = 0.0, **kwargs):
        kwargs.pop("factor", None)
        super().__init__(factor=rotation, **kwargs)
        self.rotation = rotation
        self.zoom = _pair(zoom, "zoom")
        self.translation = float(translation)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        ops = self.backend
        images = data["images"] if isinstance(data, dict) else data
        shape = ops.core.shape(images)
        unbatched = len(shape) == 3
        batch = 1 if unbatched else shape[0]
        height, width = (shape[0], shape[1]) if unbatched else (shape[1], shape[2])
        if seed is None:
            seed = self._get_seed_generator(ops._backend)
        angle = ops.random.uniform((batch,), self.factor[0] * 360.0, self.factor[1] * 360.0, seed=seed)
        view = 1.0 + ops.random.uniform((batch,), self.zoom[0], self.zoom[1], seed=seed)
        t = self.translation
        tx = ops.random.uniform((batch,), -t, t, seed=seed) * ops.cast(width, "float32")
        ty = ops.random.uniform((batch,), -t, t, seed=seed) * ops.cast(height, "float32")
        zeros = ops.numpy.zeros((batch,))
        matrix = self._compute_affine_matrix(0.5, 0.5, angle, tx, ty, view, zeros, zeros, height, width)
        if unbatched:
            matrix = ops.numpy.squeeze(matrix, axis=0)
        return {"angle": angle, "rotation_matrix": matrix, "image_height": height, "image_width": width,
                "batch_size": batch}

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        raise NotImplementedError("RandomAffine transforms images only")

    def get_config(self):
        config = super().get_config()
        config.pop("factor", None)
        return {**config, "rotation": self.rotation, "zoom": list(self.zoom), "translation": self.translation}
