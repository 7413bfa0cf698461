"""Classification heads on a pretrained backbone's feature map, in one registry.

- ``avg``: global average pooling, Dropout, Dense(C): one feature vector for every class.
- ``csra``: class-specific residual attention (Zhu and Wu, ICCV 2021): a 1x1 convolution gives each
  class a score map; its logit is the map's average plus lambda x an attention-weighted average
  (softmax over the locations of T x the class's scores), so a small object that lights up a few
  locations is not averaged away. All TFLite builtins (conv, mean, softmax, mul, sum).

The layer that outputs the logits is named "logits": export cuts every model there.
"""

from __future__ import annotations

import keras
from keras import layers, ops

CSRA_LAMBDA, CSRA_TEMPERATURE = 0.1, 1.0  # the paper's settings for VOC 2007 (one head)


@keras.saving.register_keras_serializable(package="mledge")
class CSRAPool(layers.Layer):
    """(N, H, W, C) class score maps -> (N, C) logits: mean + lambda x softmax(T x scores)-weighted sum."""

    def __init__(self, lam: float = CSRA_LAMBDA, temperature: float = CSRA_TEMPERATURE, **kwargs):
        super().__init__(**kwargs)
        self.lam, self.temperature = lam, temperature

    def call(self, scores):
        shape = ops.shape(scores)
        flat = ops.reshape(scores, (shape[0], shape[1] * shape[2], shape[3]))  # (N, HW, C)
        base = ops.mean(flat, axis=1)
        attention = ops.softmax(flat * self.temperature, axis=1)
        return base + self.lam * ops.sum(attention * flat, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "lam": self.lam, "temperature": self.temperature}


def avg_head(features, outputs: int, lam: float = CSRA_LAMBDA):
    """Pooled features -> logits (``lam`` is csra's)."""
    x = layers.Dropout(0.2, name="drop_head")(features)
    return layers.Dense(outputs, name="logits")(x)


def csra_head(feature_map, outputs: int, lam: float = CSRA_LAMBDA):
    """The feature map -> logits; ``lam`` weighs the attention-weighted average against the plain one."""
    x = layers.Dropout(0.2, name="drop_head")(feature_map)
    scores = layers.Conv2D(outputs, 1, name="class_scores")(x)
    return CSRAPool(lam, name="logits")(scores)


# name -> (builder(features, outputs, csra lambda) -> logits, whether it takes pooled features rather than the map)
HEADS = {"avg": (avg_head, True), "csra": (csra_head, False)}
HEAD_WEIGHTS = ("logits", "class_scores")  # layers with weights a head adds on top of the backbone
