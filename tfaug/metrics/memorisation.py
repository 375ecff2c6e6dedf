"""Memorisation: does a generator copy its training images? Nearest-neighbour distances and a closest-pairs grid.

For each generated image we find its nearest training image (Euclidean, in feature space and optionally in pixel
space). Whether that distance is "suspiciously small" is judged against real data the generator never saw: the
threshold is the ``percentile``-th percentile of the nearest-neighbour distances from held-out real images to the
same training set. ``share_copies`` is the share of generated images at or below it, so unseen real images score
about ``percentile / 100`` by construction, a generator that reproduces its training images scores 1.0, and
anything clearly above ``percentile / 100`` means the generator sits closer to its training images than new real
images do.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tfaug.errors import TfaugError
from tfaug.utils.images import save_class_grid, to_float, to_uint8
from tfaug.utils.neighbours import leave_one_out_distances, nearest_neighbours


def _features(x, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0:
        raise TfaugError(f"{what} must be a non-empty array [N, D], got shape {x.shape}")
    return x.reshape(len(x), -1)


def _pixels(x, what: str) -> np.ndarray:
    """uint8 [0, 255] or float [-1, 1] images [N, H, W, C] -> float32 [N, H*W*C] in [-1, 1]."""
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0:
        raise TfaugError(f"{what} must be a non-empty image array [N, H, W, C], got shape {x.shape}")
    x = to_float(x) if x.dtype == np.uint8 else x.astype(np.float32)
    return x.reshape(len(x), -1)


def _share_copies(distances: np.ndarray, threshold: float) -> float:
    # "<=" so that exact copies count even when the threshold itself is 0 (held-out images duplicated in train).
    return float(np.mean(distances <= threshold))


def memorisation(
    gen_features,
    train_features,
    heldout_features,
    *,
    gen_pixels=None,
    train_pixels=None,
    percentile: float = 1.0,
    heldout_pixels=None,
    chunk: int = 1024,
    progress: bool = False,
) -> dict:
    """Nearest training image of every generated image and the share of generated images that are near-copies.

    Args:
        gen_features: float [N, D] features of the generated images (any extractor; images are flattened).
        train_features: float [M, D] features of the generator's training images, same extractor.
        heldout_features: float [H, D] features of real images the generator never saw, same extractor.
        gen_pixels, train_pixels: optional images (uint8 [0, 255] or float [-1, 1], [N|M, H, W, C]) for the same
            comparison in pixel space. Its threshold comes from ``heldout_pixels`` when given, otherwise from the
            leave-one-out nearest-neighbour distances inside ``train_pixels`` (how far apart distinct real
            training images are), recorded as ``pixel_threshold_reference``.
        percentile: in (0, 100]; percentile of the held-out distances used as the copy threshold.
        heldout_pixels: optional held-out real images for the pixel-space threshold.
        chunk: most queries per nearest-neighbour block (memory is bounded; see ``tfaug.utils.neighbours``).
        progress: show progress bars over the nearest-neighbour searches.

    Returns:
        dict with ``share_copies`` in [0, 1], ``threshold`` (feature distance), ``median_nn_distance`` (generated
        to train), ``heldout_median_nn_distance`` (held-out to train), ``nearest_index`` (int64 [N] into the
        training set), ``nearest_distance`` (float32 [N]), ``percentile``, ``n_generated``, ``n_train``,
        ``n_heldout``; with pixels also ``share_copies_pixel``, ``pixel_threshold``, ``median_nn_distance_pixel``,
        ``nearest_index_pixel``, ``nearest_distance_pixel`` and ``pixel_threshold_reference``.
    """
    if not 0.0 < float(percentile) <= 100.0:
        raise TfaugError(f"percentile must be in (0, 100], got {percentile}")
    gen = _features(gen_features, "generated features")
    train = _features(train_features, "training features")
    held = _features(heldout_features, "held-out features")
    if not gen.shape[1] == train.shape[1] == held.shape[1]:
        raise TfaugError(
            f"feature sizes differ (generated {gen.shape[1]}, training {train.shape[1]}, held-out {held.shape[1]}); "
            "use the same extractor for all three")
    index, distance = nearest_neighbours(gen, train, chunk=chunk, progress=progress)
    _, held_distance = nearest_neighbours(held, train, chunk=chunk, progress=progress)
    threshold = float(np.percentile(held_distance, percentile))
    out = {
        "share_copies": _share_copies(distance, threshold),
        "threshold": threshold,
        "median_nn_distance": float(np.median(distance)),
        "heldout_median_nn_distance": float(np.median(held_distance)),
        "nearest_index": index,
        "nearest_distance": distance,
        "percentile": float(percentile),
        "n_generated": int(len(gen)),
        "n_train": int(len(train)),
        "n_heldout": int(len(held)),
    }
    if gen_pixels is not None or train_pixels is not None:
        out.update(_pixel_memorisation(gen_pixels, train_pixels, heldout_pixels, len(gen), len(train), percentile,
                                       chunk, progress))
    return out


def _pixel_memorisation(gen_pixels, train_pixels, heldout_pixels, n_gen: int, n_train: int, percentile: float,
                        chunk: int, progress: bool) -> dict:
    if gen_pixels is None or train_pixels is None:
        raise TfaugError("give both gen_pixels and train_pixels for pixel-space memorisation, or neither")
    gen, train = _pixels(gen_pixels, "generated pixels"), _pixels(train_pixels, "training pixels")
    if len(gen) != n_gen or len(train) != n_train:
        raise TfaugError("gen_pixels/train_pixels must hold the same images, in the same order, as the features")
    if gen.shape[1] != train.shape[1]:
        raise TfaugError(f"generated images have {gen.shape[1]} values each but training images {train.shape[1]}")
    if heldout_pixels is not None:
        held = _pixels(heldout_pixels, "held-out pixels")
        if held.shape[1] != train.shape[1]:
            raise TfaugError("held-out images must have the training images' shape")
        _, reference = nearest_neighbours(held, train, chunk=chunk, progress=progress)
        source = "heldout"
    else:
        if n_train < 2:
            raise TfaugError("pixel-space memorisation without heldout_pixels needs at least 2 training images")
        reference = leave_one_out_distances(train, chunk=chunk, progress=progress)
        source = "train_leave_one_out"
    index, distance = nearest_neighbours(gen, train, chunk=chunk, progress=progress)
    threshold = float(np.percentile(reference, percentile))
    return {
        "share_copies_pixel": _share_copies(distance, threshold),
        "pixel_threshold": threshold,
        "pixel_threshold_reference": source,
        "median_nn_distance_pixel": float(np.median(distance)),
        "nearest_index_pixel": index,
        "nearest_distance_pixel": distance,
    }


def closest_pairs_grid(
    path: str | os.PathLike,
    gen_images_uint8,
    train_images_uint8,
    nearest_index,
    nearest_distance,
    n: int = 16,
) -> Path:
    """Save a PNG of the ``n`` generated images closest to a training image, each next to that training image.

    Args:
        path: output PNG path (written atomically; parent directories are created).
        gen_images_uint8: generated images uint8 [N, H, W, C] (float [-1, 1] is converted).
        train_images_uint8: training images uint8 [M, H, W, C], same H, W, C.
        nearest_index: int [N] index of each generated image's nearest training image (``memorisation()``).
        nearest_distance: float [N] the matching distances; the rows are sorted by it and show it in the label.
        n: number of pairs (rows), >= 1; fewer when there are fewer generated images.

    Returns:
        The path written.
    """
    gen, train = _uint8(gen_images_uint8), _uint8(train_images_uint8)
    index = np.asarray(nearest_index, np.int64).reshape(-1)
    distance = np.asarray(nearest_distance, np.float64).reshape(-1)
    if not len(gen) == len(index) == len(distance):
        raise TfaugError("give one nearest index and distance per generated image")
    if gen.shape[1:] != train.shape[1:]:
        raise TfaugError(f"generated images {gen.shape[1:]} and training images {train.shape[1:]} differ in shape")
    if len(gen) == 0 or n < 1:
        raise TfaugError("closest_pairs_grid needs at least one generated image and n >= 1")
    if index.min() < 0 or index.max() >= len(train):
        raise TfaugError(f"nearest_index must point into the {len(train)} training images")
    order = np.argsort(distance, kind="stable")[:n]
    rows = [np.stack([gen[i], train[index[i]]]) for i in order]
    labels = [f"gen {i} / train {index[i]}\nd={distance[i]:.3g}" for i in order]
    save_class_grid(path, rows, labels, title="closest pairs: generated (left), nearest training image (right)")
    return Path(path)


def _uint8(images) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise TfaugError(f"images must be [N, H, W, C], got shape {x.shape}")
    return x if x.dtype == np.uint8 else to_uint8(x)
