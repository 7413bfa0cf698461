"""Masked multi-label losses on sigmoid probabilities: bce (the study's), weighted, focal, asl.

The mask arrives as Keras' sample_weight with the labels' shape; a masked ("difficult") entry adds
nothing, and the mean is over unmasked entries, so a batch full of difficult labels weighs no less.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

EPS = 1e-7


@keras.saving.register_keras_serializable(package="mledge")
class MaskedLoss(keras.losses.Loss):
    """Per-element loss averaged over the entries the mask keeps."""

    def __init__(self, kind: str = "bce", pos_weight: list[float] | None = None, gamma: float = 2.0,
                 gamma_neg: float = 4.0, clip: float = 0.05, name: str | None = None, **kwargs):
        super().__init__(name=name or kind, **kwargs)
        if kind not in LOSSES:
            raise ValueError(f"unknown loss {kind!r}; choose from {', '.join(LOSSES)}")
        self.kind, self.pos_weight, self.gamma = kind, pos_weight, gamma
        self.gamma_neg, self.clip = gamma_neg, clip

    def call(self, y_true, y_pred):
        y = ops.cast(y_true, "float32")
        p = ops.clip(ops.cast(y_pred, "float32"), EPS, 1 - EPS)
        if self.kind == "bce":
            return -(y * ops.log(p) + (1 - y) * ops.log(1 - p))
        if self.kind == "weighted":
            w = ops.convert_to_tensor(np.asarray(self.pos_weight, np.float32))
            return -(w * y * ops.log(p) + (1 - y) * ops.log(1 - p))
        if self.kind == "focal":
            return -(y * (1 - p) ** self.gamma * ops.log(p) + (1 - y) * p**self.gamma * ops.log(1 - p))
        # asl (Ridnik et al. 2021): no focusing on positives, strong focusing and a shifted
        # probability on negatives, so easy negatives (most of a multi-label matrix) fade out.
        p_neg = ops.maximum(p - self.clip, 0.0)
        return -(y * ops.log(p) + (1 - y) * p_neg**self.gamma_neg * ops.log(ops.maximum(1 - p_neg, EPS)))

    def __call__(self, y_true, y_pred, sample_weight=None):
        values = self.call(y_true, y_pred)
        weight = ops.ones_like(values) if sample_weight is None else ops.cast(sample_weight, "float32")
        return ops.sum(values * weight) / ops.maximum(ops.sum(weight), 1.0)

    def get_config(self) -> dict:
        return {"kind": self.kind, "pos_weight": self.pos_weight, "gamma": self.gamma,
                "gamma_neg": self.gamma_neg, "clip": self.clip, "name": self.name}


LOSSES = ("bce", "weighted", "focal", "asl")


def positive_weights(labels: np.ndarray, mask: np.ndarray, cap: float = 30.0) -> list[float]:
    """Negatives / positives per class on the training labels, capped so rare classes don't explode."""
    pos = (labels * mask).sum(axis=0)
    neg = ((1 - labels) * mask).sum(axis=0)
    return [float(v) for v in np.clip(neg / np.maximum(pos, 1.0), 1.0, cap)]


def make_loss(kind: str, labels: np.ndarray, mask: np.ndarray) -> MaskedLoss:
    return MaskedLoss(kind, pos_weight=positive_weights(labels, mask) if kind == "weighted" else None)
