"""The quantization modes, as a registry: each sets up a TFLiteConverter.

- float32: no quantization (the reference).
- float16: weights stored as float16 (half the bytes), computed in float32 on CPUs.
- dynamic: int8 weights, float activations (dynamic-range quantization); no calibration data.
- int8:    full integer, calibrated on real training images; uint8 input (raw pixels: the model's
           rescale is its first layer, so the input scale is exactly 1) and a float output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuantMode:
    name: str
    needs_calibration: bool
    summary: str
    configure: Callable  # (converter, representative_dataset | None) -> None


def _float32(converter, _):
    pass


def _float16(converter, _):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(converter, _):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _int8(converter, representative):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.float32  # dequantized output: no 1/256 steps on the scores


QUANT_MODES: dict[str, QuantMode] = {
    "float32": QuantMode("float32", False, "no quantization", _float32),
    "float16": QuantMode("float16", False, "float16 weights", _float16),
    "dynamic": QuantMode("dynamic", False, "int8 weights, float activations", _dynamic),
    "int8": QuantMode("int8", True, "full integer, uint8 input, float output", _int8),
}


def representative_dataset(images: np.ndarray) -> Callable[[], Iterable[list[np.ndarray]]]:
    """Calibration samples as the model sees them (float pixels in [0, 255]), plus one image holding
    0 and 255 so the calibrated input range is exactly [0, 255] and raw pixels are the uint8 input."""
    extremes = np.zeros_like(images[:1])
    extremes[0, 0, 0] = 255

    def generate():
        for image in np.concatenate([extremes, images]):
            yield [image[None].astype(np.float32)]

    return generate
