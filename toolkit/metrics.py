"""Multi-label metrics in numpy: AP in both VOC definitions, threshold metrics, per-class thresholds.

Every function takes ``valid``, a boolean mask of the entries that count: VOC's "difficult" labels
are left out of evaluation, as the devkit does. numpy only, so export can use it without Keras.
"""

from __future__ import annotations

import numpy as np

from edge.metrics import AP_METHODS, average_precision, mean_ap, per_class_ap, pr_curve

__all__ = ["AP_METHODS", "average_precision", "best_f1_thresholds", "mean_ap", "per_class_ap", "pr_curve",
           "points", "summarize", "threshold_metrics"]


def points(value: float | None) -> str:
    """A recorded mAP (0 to 1) in points for a log line; "?" where the source recorded none."""
    return "?" if value is None else f"{100 * value:.2f}"


def best_f1_thresholds(labels: np.ndarray, scores: np.ndarray, valid: np.ndarray,
                       default: float = 0.5) -> np.ndarray:
    """Per class, the score threshold (predict positive when score >= it) that maximises F1."""
    out = np.full(labels.shape[1], default, dtype=np.float64)
    for k in range(labels.shape[1]):
        y, s = labels[valid[:, k], k].astype(np.float64), scores[valid[:, k], k].astype(np.float64)
        if y.sum() == 0:
            continue
        precision, recall, thresholds = pr_curve(y, s)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
        out[k] = thresholds[int(np.argmax(f1))]
    return out


def _safe_div(a, b):
    return np.where(b > 0, a / np.maximum(b, 1e-12), 0.0)


def threshold_metrics(labels: np.ndarray, scores: np.ndarray, valid: np.ndarray,
                      thresholds: np.ndarray | float) -> dict:
    """Per-class precision/recall/F1 and the study's counts; CP, CR, CF1, OP, OR, OF1 (the usual
    multi-label summary: C = mean over classes, O = over all entries), hamming loss, subset accuracy."""
    pred = scores >= np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (labels.shape[1],))
    y = labels.astype(bool)
    tp = ((pred & y) & valid).sum(axis=0)
    predicted = (pred & valid).sum(axis=0)
    actual = (y & valid).sum(axis=0)
    precision, recall = _safe_div(tp, predicted), _safe_div(tp, actual)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    cp, cr = float(precision.mean()), float(recall.mean())
    op, orr = float(_safe_div(tp.sum(), predicted.sum())), float(_safe_div(tp.sum(), actual.sum()))
    wrong = (pred != y) & valid
    return {
        "per_class": {
            "precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
            "actual_ones": actual.tolist(), "predicted_ones": predicted.tolist(), "matched_ones": tp.tolist(),
        },
        "CP": cp, "CR": cr, "CF1": float(_safe_div(2 * cp * cr, cp + cr)),
        "OP": op, "OR": orr, "OF1": float(_safe_div(2 * op * orr, op + orr)),
        "hamming_loss": float(wrong.sum() / max(valid.sum(), 1)),
        "subset_accuracy": float((~wrong.any(axis=1)).mean()),
        "mean_label_accuracy": float(1 - wrong.sum() / max(valid.sum(), 1)),
    }


def summarize(labels: np.ndarray, scores: np.ndarray, valid: np.ndarray, thresholds: np.ndarray) -> dict:
    """Everything evaluation reports: AP both ways, metrics at the given thresholds and at 0.5."""
    ap_area = per_class_ap(labels, scores, valid, "area")
    ap_voc = per_class_ap(labels, scores, valid, "voc07")
    return {
        "mAP_area": float(np.nanmean(ap_area)),
        "mAP_voc07": float(np.nanmean(ap_voc)),
        "AP_area": [None if np.isnan(v) else float(v) for v in ap_area],
        "AP_voc07": [None if np.isnan(v) else float(v) for v in ap_voc],
        "at_thresholds": threshold_metrics(labels, scores, valid, thresholds),
        "at_0.5": threshold_metrics(labels, scores, valid, 0.5),
        "thresholds": [float(t) for t in thresholds],
        "images": int(labels.shape[0]),
    }
