"""Classifier metrics on real test data: accuracy, macro-F1, per-class recall/F1, degenerate-classifier flag.

All functions take integer labels and predictions (numpy) and return plain Python numbers so results can be
written straight to CSV/JSON.
"""
from __future__ import annotations

import numpy as np


def classification_metrics(y_true, y_pred, num_classes: int, minority: int | None = None) -> dict:
    """Score predictions against true labels.

    Args:
        y_true: int [N] true class ids in [0, num_classes).
        y_pred: int [N] predicted class ids in [0, num_classes).
        num_classes: K >= 2.
        minority: optional class id whose F1 is reported as ``minority_f1``.

    Returns:
        dict with ``accuracy`` and ``macro_f1`` in [0, 1], ``per_class_recall`` and ``per_class_f1`` (lists of K
        floats in [0, 1]), ``n`` (test size), ``predicted_classes`` (how many distinct classes were predicted) and
        ``degenerate`` (True when the classifier predicts a single class for every input: S1's failure mode).
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
        "per_class_recall": [float(v) for v in per_recall],
        "per_class_f1": [float(v) for v in per_f1],
        "n": int(len(y_true)),
        "predicted_classes": distinct,
        "degenerate": bool(distinct <= 1 and len(np.unique(y_true)) > 1),
    }
    if minority is not None:
        out["minority_f1"] = float(per_f1[minority])
    return out
