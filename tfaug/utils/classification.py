"""Classifier metrics on real test data: accuracy, balanced accuracy, macro-F1, per-class recall/F1, minority-class
F1/recall, head/middle/tail group accuracy of a long-tailed training set, degenerate-classifier flag.

Groups (:func:`group_accuracy`): the K classes sorted by their TRAINING image count, largest first (ties: smaller
class id first), split into three contiguous groups with ``numpy.array_split`` (sizes differ by at most one, the
larger groups first: K = 10 gives 4 head, 3 middle, 3 tail classes). A group's accuracy is the accuracy over the
test images whose true class is in the group. Under the exponential profile the classes are already in count order.

All functions take integer labels and predictions (numpy) and return plain Python numbers so results can be
written straight to CSV/JSON. They live in ``utils`` (numpy only), below ``training``, which scores a trained
classifier with them, and below ``metrics``, ``studies`` and ``enrich``, which report them.
"""
from __future__ import annotations

import numpy as np

from tfaug.errors import TfaugError


GROUPS = ("head", "middle", "tail")


def classification_metrics(y_true, y_pred, num_classes: int, minority=None, train_counts=None) -> dict:
    """Score predictions against true labels.

    Args:
        y_true: int [N] true class ids in [0, num_classes).
        y_pred: int [N] predicted class ids in [0, num_classes).
        num_classes: K >= 2.
        minority: optional class id, or list of class ids, reported as ``minority_f1`` and ``minority_recall`` (the
            mean over the listed classes).
        train_counts: optional K training image counts: adds ``head_accuracy``, ``middle_accuracy`` and
            ``tail_accuracy`` (:func:`group_accuracy`).

    Returns:
        dict with ``accuracy``, ``balanced_accuracy`` (mean recall over the classes present in ``y_true``) and
        ``macro_f1`` in [0, 1], ``per_class_recall`` and ``per_class_f1`` (lists of K floats in [0, 1]), ``n`` (test
        size), ``predicted_classes`` (how many distinct classes were predicted) and ``degenerate`` (True when the
        classifier predicts a single class for every input: S1's failure mode).
    """
    from sklearn.metrics import f1_score, recall_score

    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    labels = list(range(num_classes))
    per_recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    per_f1 = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = np.isin(labels, np.unique(y_true))
    distinct = int(len(np.unique(y_pred)))
    out = {
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else float("nan"),
        # Macro-F1 over the classes present in the test set (absent classes would count as 0 otherwise).
        "macro_f1": float(np.mean(per_f1[present])) if present.any() else float("nan"),
        "balanced_accuracy": float(np.mean(per_recall[present])) if present.any() else float("nan"),
        "per_class_recall": [float(v) for v in per_recall],
        "per_class_f1": [float(v) for v in per_f1],
        "n": int(len(y_true)),
        "predicted_classes": distinct,
        "degenerate": bool(distinct <= 1 and len(np.unique(y_true)) > 1),
    }
    if minority is not None:
        ids = [int(c) for c in np.atleast_1d(np.asarray(minority)).reshape(-1)]
        out["minority_f1"] = float(np.mean(per_f1[ids]))
        out["minority_recall"] = float(np.mean(per_recall[ids]))
    if train_counts is not None:
        out.update(group_accuracy(y_true, y_pred, train_counts))
    return out


def class_groups(train_counts, groups: int = 3) -> list[list[int]]:
    """Class ids split into ``groups`` contiguous groups by training count, largest first (see the module docstring).

    Args:
        train_counts: K >= ``groups`` training image counts >= 0.
        groups: number of groups >= 1.

    Returns:
        ``groups`` lists of class ids (head first).
    """
    counts = np.asarray(train_counts).reshape(-1)
    if groups < 1 or counts.size < groups:
        raise TfaugError(f"need at least {groups} classes to form {groups} groups, got {counts.size}")
    order = sorted(range(counts.size), key=lambda c: (-counts[c], c))
    return [part.tolist() for part in np.array_split(np.asarray(order, np.int64), groups)]


def group_accuracy(y_true, y_pred, train_counts) -> dict:
    """Head / middle / tail accuracy of a long-tailed training set (thirds of the classes by training count).

    Args:
        y_true: int [N] true class ids in [0, K).
        y_pred: int [N] predicted class ids.
        train_counts: K >= 3 training image counts.

    Returns:
        ``{"head_accuracy", "middle_accuracy", "tail_accuracy"}``: accuracy in [0, 1] over the test images of each
        group's classes (NaN when the test set has none of them).
    """
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    out = {}
    for name, ids in zip(GROUPS, class_groups(train_counts, len(GROUPS))):
        sel = np.isin(y_true, ids)
        out[f"{name}_accuracy"] = float(np.mean(y_true[sel] == y_pred[sel])) if sel.any() else float("nan")
    return out
