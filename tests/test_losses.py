"""Masked losses: masked entries add nothing; bce matches Keras'; each kind behaves as defined."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from toolkit.losses import LOSSES, MaskedLoss, positive_weights

Y = np.array([[1, 0, 1], [0, 0, 1]], np.float32)
P = np.array([[0.9, 0.2, 0.6], [0.3, 0.1, 0.8]], np.float32)


def test_bce_matches_keras():
    ours = float(MaskedLoss("bce")(Y, P))
    keras_bce = float(keras.losses.BinaryCrossentropy()(Y, P))
    assert ours == pytest.approx(keras_bce, rel=1e-5)


@pytest.mark.parametrize("kind", LOSSES)
def test_masked_entries_contribute_nothing(kind):
    loss = MaskedLoss(kind, pos_weight=[2.0, 3.0, 4.0])
    mask = np.array([[1, 1, 0], [1, 0, 1]], np.float32)
    changed = P.copy()
    changed[mask == 0] = 0.001  # terrible predictions, but on masked entries
    assert float(loss(Y, P, mask)) == pytest.approx(float(loss(Y, changed, mask)), rel=1e-6)


def test_focal_and_asl_down_weight_easy_negatives():
    y, easy = np.zeros((1, 1), np.float32), np.full((1, 1), 0.04, np.float32)
    bce = float(MaskedLoss("bce")(y, easy))
    assert float(MaskedLoss("focal")(y, easy)) < bce / 10
    assert float(MaskedLoss("asl")(y, easy)) == pytest.approx(0.0, abs=1e-6)  # below the 0.05 clip


def test_weighted_scales_positives():
    y, p = np.ones((1, 1), np.float32), np.full((1, 1), 0.5, np.float32)
    assert float(MaskedLoss("weighted", pos_weight=[3.0])(y, p)) == pytest.approx(3 * float(MaskedLoss("bce")(y, p)))


def test_positive_weights_from_frequencies():
    labels = np.array([[1, 0], [0, 0], [0, 1], [0, 0]], np.float32)
    assert positive_weights(labels, np.ones_like(labels)) == [3.0, 3.0]


def test_serialises_for_resume(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", MaskedLoss("weighted", pos_weight=[2.0], smoothing=0.1))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.loss.kind == "weighted" and loaded.loss.pos_weight == [2.0] and loaded.loss.smoothing == 0.1


@pytest.mark.parametrize("smoothing", [0.1, 0.3])
def test_label_smoothing_aims_at_s_over_2_from_the_labels(smoothing):
    smoothed = Y * (1 - smoothing) + smoothing / 2
    assert float(MaskedLoss("bce", smoothing=smoothing)(Y, P)) == pytest.approx(float(MaskedLoss("bce")(smoothed, P)),
                                                                                rel=1e-6)
    # its minimum over p is at the smoothed target, not at the label
    grid = np.linspace(0.01, 0.99, 99, dtype=np.float32)
    losses = [float(MaskedLoss("bce", smoothing=smoothing)(np.ones((1, 1), np.float32), np.full((1, 1), p)))
              for p in grid]
    assert grid[int(np.argmin(losses))] == pytest.approx(1 - smoothing / 2, abs=0.011)


def test_distillation_smooths_only_the_labels():
    from toolkit.losses import DistillLoss

    teacher = np.full_like(Y, 0.7)
    y_true = np.concatenate([Y, teacher], axis=1)
    plain, smoothed = DistillLoss(weight=0.5), DistillLoss(weight=0.5, smoothing=0.2)
    soft = (float(plain(y_true, P)) - 0.5 * float(MaskedLoss("bce")(Y, P))) / 0.5
    expected = 0.5 * float(MaskedLoss("bce", smoothing=0.2)(Y, P)) + 0.5 * soft
    assert float(smoothed(y_true, P)) == pytest.approx(expected, rel=1e-5)
    assert smoothed.get_config()["smoothing"] == 0.2
