"""Metrics against scikit-learn and a hand-computed VOC 2007 11-point example."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_fscore_support

from toolkit.metrics import average_precision, best_f1_thresholds, mean_ap, summarize, threshold_metrics


def test_hand_computed_example():
    y = np.array([1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    # PR points: (R .5, P 1), (.5, .5), (1, 2/3), (1, .5), (1, .4)
    assert average_precision(y, s, "area") == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # 11-point: recall 0..0.5 -> max precision 1 (6 points), 0.6..1.0 -> 2/3 (5 points)
    assert average_precision(y, s, "voc07") == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)


@pytest.mark.parametrize("seed", range(5))
def test_ap_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300), 1)  # many ties
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_difficult_entries_are_ignored():
    labels = np.array([[1], [0], [0], [1]], float)
    scores = np.array([[0.9], [0.95], [0.1], [0.2]])
    valid = np.array([[True], [False], [True], [True]])
    assert mean_ap(labels, scores, valid) == pytest.approx(1.0)  # the high negative was difficult
    assert mean_ap(labels, scores, np.ones_like(valid)) < 1.0


def test_threshold_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, (200, 6)).astype(float)
    scores = np.clip(labels * 0.3 + rng.random((200, 6)) * 0.7, 0, 1)
    thresholds = np.linspace(0.3, 0.7, 6)
    valid = np.ones_like(labels, bool)
    m = threshold_metrics(labels, scores, valid, thresholds)
    pred = (scores >= thresholds).astype(int)
    p, r, f, _ = precision_recall_fscore_support(labels, pred, average=None, zero_division=0)
    np.testing.assert_allclose(m["per_class"]["precision"], p)
    np.testing.assert_allclose(m["per_class"]["recall"], r)
    np.testing.assert_allclose(m["per_class"]["f1"], f)
    op, orr, _, _ = precision_recall_fscore_support(labels, pred, average="micro", zero_division=0)
    assert m["OP"] == pytest.approx(op) and m["OR"] == pytest.approx(orr)
    assert m["CP"] == pytest.approx(p.mean()) and m["CR"] == pytest.approx(r.mean())
    assert m["hamming_loss"] == pytest.approx((pred != labels).mean())
    assert m["subset_accuracy"] == pytest.approx((pred == labels).all(axis=1).mean())
    assert m["per_class"]["matched_ones"] == ((pred == 1) & (labels == 1)).sum(axis=0).tolist()


def test_best_f1_thresholds_maximise_f1():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, (150, 3)).astype(float)
    scores = np.clip(labels * 0.4 + rng.random((150, 3)) * 0.6, 0, 1)
    valid = np.ones_like(labels, bool)
    best = best_f1_thresholds(labels, scores, valid)
    f_best = threshold_metrics(labels, scores, valid, best)["per_class"]["f1"]
    for t in np.linspace(0, 1, 41):
        f_t = threshold_metrics(labels, scores, valid, t)["per_class"]["f1"]
        assert all(b >= x - 1e-12 for b, x in zip(f_best, f_t))


def test_summarize_reports_both_definitions():
    labels = np.array([[1, 0], [0, 1], [1, 0]], float)
    scores = np.array([[0.8, 0.1], [0.3, 0.9], [0.6, 0.2]])
    report = summarize(labels, scores, np.ones_like(labels, bool), np.array([0.5, 0.5]))
    assert report["mAP_area"] == 1.0 and report["mAP_voc07"] == 1.0
    assert report["at_0.5"]["OF1"] == 1.0
