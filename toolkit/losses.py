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
                 gamma_neg: float = 4.0, clip: float = 0.05, smoothing: float = 0.0, name: str | None = None,
                 **kwargs):
        super().__init__(name=name or kind, **kwargs)
        if kind not in LOSSES:
            raise ValueError(f"unknown loss {kind!r}; choose from {', '.join(LOSSES)}")
        self.kind, self.pos_weight, self.gamma = kind, pos_weight, gamma
        self.gamma_neg, self.clip, self.smoothing = gamma_neg, clip, smoothing

    def call(self, y_true, y_pred):
        y = ops.cast(y_true, "float32")
        if self.smoothing:  # label smoothing: 1 - s/2 and s/2 instead of 1 and 0
            y = y * (1 - self.smoothing) + self.smoothing / 2
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
                "gamma_neg": self.gamma_neg, "clip": self.clip, "smoothing": self.smoothing, "name": self.name}


LOSSES = ("bce", "weighted", "focal", "asl")


@keras.saving.register_keras_serializable(package="mledge")
class DistillLoss(keras.losses.Loss):
    """(1 - weight) * the label loss + weight * BCE(sigmoid(student logits / T), teacher probabilities at T).

    y_true holds the labels then the teacher's probabilities (2C columns); sample_weight the label
    mask then the teacher's weights (1, so an unlabelled photo, all masked, learns from the teacher
    alone). The student's logits are recovered from its (float32) probabilities."""

    def __init__(self, kind: str = "bce", pos_weight: list[float] | None = None, weight: float = 0.5,
                 temperature: float = 1.0, smoothing: float = 0.0, name: str | None = None, **kwargs):
        super().__init__(name=name or f"distill_{kind}", **kwargs)
        self.label_loss = MaskedLoss(kind, pos_weight=pos_weight, smoothing=smoothing)
        self.weight, self.temperature = weight, temperature

    def __call__(self, y_true, y_pred, sample_weight=None):
        c = ops.shape(y_pred)[-1]
        y_true = ops.cast(y_true, "float32")
        weights = ops.ones_like(y_true) if sample_weight is None else ops.cast(sample_weight, "float32")
        hard = self.label_loss(y_true[:, :c], y_pred, sample_weight=weights[:, :c])
        p = ops.clip(ops.cast(y_pred, "float32"), EPS, 1 - EPS)
        q = ops.clip(ops.sigmoid((ops.log(p) - ops.log(1 - p)) / self.temperature), EPS, 1 - EPS)
        t, w = y_true[:, c:], weights[:, c:]
        soft = -(t * ops.log(q) + (1 - t) * ops.log(1 - q))
        soft = ops.sum(soft * w) / ops.maximum(ops.sum(w), 1.0)
        return (1 - self.weight) * hard + self.weight * soft

    def get_config(self) -> dict:
        return {"kind": self.label_loss.kind, "pos_weight": self.label_loss.pos_weight, "weight": self.weight,
                "temperature": self.temperature, "smoothing": self.label_loss.smoothing, "name": self.name}


def positive_weights(labels: np.ndarray, mask: np.ndarray, cap: float = 30.0) -> list[float]:
    """Negatives / positives per class on the training labels, capped so rare classes don't explode."""
    pos = (labels * mask).sum(axis=0)
    neg = ((1 - labels) * mask).sum(axis=0)
    return [float(v) for v in np.clip(neg / np.maximum(pos, 1.0), 1.0, cap)]


def make_loss(kind: str, labels: np.ndarray, mask: np.ndarray, distill=None,
              smoothing: float = 0.0) -> keras.losses.Loss:
    """The label loss (labels smoothed by ``smoothing``); with ``distill`` (a config.Distill) wrapped in
    the teacher's term."""
    pos_weight = positive_weights(labels, mask) if kind == "weighted" else None
    if distill is None:
        return MaskedLoss(kind, pos_weight=pos_weight, smoothing=smoothing)
    return DistillLoss(kind, pos_weight, weight=distill.weight, temperature=distill.temperature,
                       smoothing=smoothing)


def label_loss(loss: keras.losses.Loss) -> keras.losses.Loss:
    """The part of a training loss that compares with labels (the val loss of a distilled model)."""
    return getattr(loss, "label_loss", loss)
