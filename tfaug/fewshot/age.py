"""Attribute-group editing (AGE-style) in a style generator's w space: new images of a class without training.

Ding et al. 2022 ("Attribute Group Editing for Reliable Few-shot Image Generation") observe that in a
class-conditional style generator the variation *within* a class (pose, stroke width, slant ...) lies along
directions shared by all classes, while the class itself is a position. So:

* :func:`fit_directions` estimates each class's centroid in w (the mean of ``mapping(z, c)`` over many z) and the
  shared directions: the top right singular vectors of the within-class deviations ``w - centroid[c]`` pooled
  over every class, with ``scales`` = singular values / sqrt(n) (the standard deviation along each direction).
* :func:`age_class_network` inverts a new class's k images (:mod:`tfaug.fewshot.invert`), takes the mean of their
  w as the new centroid, and returns a generator ``[z, truncation] -> images`` that draws
  ``w = centroid + truncation * sum_j z_j * scales_j * directions_j`` (the first m entries of z) and runs the
  run's synthesis network: a new class from a handful of images with no gradient step on the generator.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import keras
import numpy as np

from tfaug.errors import TfaugError
from tfaug.fewshot import invert as inv
from tfaug.fewshot import latent

EXPLAINED = 0.95  # automatic number of directions: the fewest that explain this share of within-class variance


@dataclass
class Directions:
    """Class centroids and shared within-class directions in w."""

    centroids: np.ndarray  # float32 [K, w_dim]
    directions: np.ndarray  # float32 [m, w_dim], orthonormal rows, by decreasing variance
    scales: np.ndarray  # float32 [m] > 0: standard deviation of the deviations along each direction
    explained_variance: np.ndarray  # float32 [m]: share of the within-class variance each direction explains


def fit_directions(sampling_network: keras.Model, *, n_per_class: int = 256, n_directions: int | None = None,
                   seed: int = 0) -> Directions:
    """Class centroids and shared directions of a style generator (see the module docstring).

    Args:
        sampling_network: a stylegan sampling network (``mapping`` and ``synthesis`` layers).
        n_per_class: standard-normal z per class (>= 2).
        n_directions: m (>= 1); None: the fewest directions explaining 95% of the within-class variance. At
            most ``min(z_dim, w_dim)`` (each direction is driven by one entry of z).
        seed: seeds the z.

    Raises:
        TfaugError: not a style generator, or bad counts.
    """
    parts = latent.style_parts(sampling_network)
    if int(n_per_class) < 2:
        raise TfaugError(f"n_per_class must be >= 2, got {n_per_class!r}")
    w = latent.sample_class_w(parts, int(n_per_class), seed).astype(np.float64)  # [K, n, w_dim]
    centroids = w.mean(1)
    deviations = (w - centroids[:, None, :]).reshape(-1, parts.w_dim)
    _, s, vt = np.linalg.svd(deviations, full_matrices=False)
    share = s**2 / max(float(np.sum(s**2)), 1e-30)
    limit = min(parts.z_dim, parts.w_dim)
    if n_directions is None:
        m = int(np.searchsorted(np.cumsum(share), EXPLAINED) + 1)
    elif int(n_directions) >= 1:
        m = int(n_directions)
    else:
        raise TfaugError(f"n_directions must be >= 1, got {n_directions!r}")
    m = min(m, limit)
    return Directions(centroids.astype(np.float32), vt[:m].astype(np.float32),
                      (s[:m] / np.sqrt(len(deviations))).astype(np.float32), share[:m].astype(np.float32))


def age_class_network(sampling_network: keras.Model, images, *, encoder_dir: str | os.PathLike | None = None,
                      refine_steps: int = 100, directions: Directions | None = None, seed: int = 0,
                      progress: bool = False, discriminator: keras.Model | None = None) -> tuple[keras.Model, dict]:
    """A generator for a new class from its few images, by attribute-group editing around their inverted w.

    Args:
        sampling_network: the base stylegan sampling network (its ``synthesis`` is shared, not copied).
        images: float32 ``[k, H, W, C]`` in [-1, 1] (or uint8), k >= 1, at the generator's image shape.
        encoder_dir: encoder directory of this generator (``tfaug invert``) to start the inversion from; None:
            start from the nearest class centroid.
        refine_steps: per-image optimisation steps of the inversion (>= 0).
        directions: from :func:`fit_directions` (default: fitted here with ``seed``).
        seed: seeds the directions and the inversion's statistics.
        progress: tqdm bar over the refinement.
        discriminator: optional stylegan discriminator whose ``d_features`` add a feature loss to the refinement.

    Returns:
        ``(network, info)``: network ``[z float32 [N, z_dim], truncation float32 [N]] -> images float32
        [N, H, W, C]`` in [-1, 1] (deterministic; truncation 0 = the new centroid's image; layer ``age_latent``
        is a registered :class:`~tfaug.models.networks.age.AGELatent`, so it saves as ``.keras``), and info
        ``{"k", "m", "explained_variance" (share of within-class variance the m directions explain),
        "inversion_pixel_mse" (mean over the k images), "class_ids" (nearest/predicted base classes)}``.

    Raises:
        TfaugError: not a style generator, bad images, or directions of another generator.
    """
    from tfaug.models.networks.age import build_age_network

    parts = latent.style_parts(sampling_network, discriminator)
    x = latent.check_images(images, parts.image_shape)
    directions = directions or fit_directions(sampling_network, seed=seed)
    m = min(len(directions.directions), parts.z_dim)
    if directions.directions.shape[1:] != (parts.w_dim,) or directions.centroids.shape != (parts.num_classes,
                                                                                            parts.w_dim):
        raise TfaugError("the AGE directions were fitted on another generator (w size or classes differ)")
    encoder = inv.load_encoder(encoder_dir, parts)[0] if encoder_dir is not None else None
    result = inv.invert_with(parts, x, encoder=encoder, refine_steps=refine_steps, centroids=directions.centroids,
                             seed=seed, progress=progress)
    centroid = result.w.mean(0)
    network = build_age_network(parts.synthesis, parts.z_dim, centroid, directions.directions[:m],
                                directions.scales[:m])
    info = {"k": int(len(x)), "m": int(m), "explained_variance": float(np.sum(directions.explained_variance[:m])),
            "inversion_pixel_mse": float(result.pixel_mse.mean()), "class_ids": result.class_ids.tolist()}
    return network, info


__all__ = ["EXPLAINED", "Directions", "age_class_network", "fit_directions"]
