"""Average precision in numpy alone, shared by the edge bench and the training side's metrics.

``valid`` masks the entries that count: VOC's "difficult" labels are left out, as the devkit does.
"""

from __future__ import annotations

import numpy as np

AP_METHODS = {
    "area": "area under the precision-recall curve (non-interpolated, as sklearn and modern papers)",
    "voc07": "VOC 2007 11-point interpolated AP (the devkit's)",
}


def pr_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and score at each distinct score, highest first (ties count together)."""
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each tie group
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return tp / (tp + fp), tp / max(y.sum(), 1), s[last]


def average_precision(y: np.ndarray, s: np.ndarray, method: str = "area") -> float:
    """AP of one class; nan when it has no positive (such a class is left out of the mean)."""
    y = np.asarray(y, dtype=np.float64)
    if y.sum() == 0:
        return float("nan")
    precision, recall, _ = pr_curve(y, np.asarray(s, dtype=np.float64))
    if method == "area":
        return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    if method == "voc07":
        return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                              for t in np.linspace(0, 1, 11)]))
    raise ValueError(f"unknown AP method {method!r}; choose from {', '.join(AP_METHODS)}")


def per_class_ap(labels: np.ndarray, scores: np.ndarray, valid: np.ndarray, method: str = "area") -> np.ndarray:
    return np.array([average_precision(labels[valid[:, k], k], scores[valid[:, k], k], method)
                     for k in range(labels.shape[1])])


def mean_ap(labels: np.ndarray, scores: np.ndarray, valid: np.ndarray, method: str = "area") -> float:
    aps = per_class_ap(labels, scores, valid, method)
    return float(np.nanmean(aps)) if np.isfinite(aps).any() else float("nan")


