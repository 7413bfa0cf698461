"""The quantization modes, as a registry: each sets up a TFLiteConverter.

- float32: no quantization (the reference).
- float16: weights stored as float16 (half the bytes), computed in float32 on CPUs.
- dynamic: int8 weights; activations quantized per inference at run time where a kernel supports
           it (XNNPACK's convolutions and Dense do), float elsewhere; no calibration data.
- int8:    full integer, calibrated on real training images; uint8 input (raw pixels: the model's
           rescale is its first layer, so the input scale is exactly 1) and a float output.
- int8-float-last: int8 as above, but the op that writes the output stays float (the logits layer;
           the sigmoid with --output probabilities).
           One int8 tensor holds all 20 logits on one scale: a model whose logits span -24..+27
           gets a step of 0.2 and many tied scores. Float input (a QUANTIZE op feeds the int8 body).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class QuantMode:
    name: str
    needs_calibration: bool
    summary: str
    configure: Callable  # (converter, representative_dataset | None) -> None
    convert: Callable = field(default=lambda converter: converter.convert())  # (converter) -> .tflite bytes


def _float32(converter, _):
    pass


def _float16(converter, _):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(converter, _):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _calibrated(converter, representative):
    """Weights and activations quantized over ranges calibrated on the representative images; input,
    output and the ops allowed left as they are (int8-float-last's setup; int8 narrows them)."""
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative


def _int8(converter, representative):
    import tensorflow as tf

    _calibrated(converter, representative)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.float32  # dequantized output: no 1/256 steps on the scores


def _convert_float_last(converter) -> bytes:
    """TensorFlow's selective quantization (tf.lite.experimental.QuantizationDebugger): calibrate once,
    then quantize with the ops that write the model's outputs left in float. Their names are only
    known in the calibrated model, hence the second set of options."""
    import tensorflow as tf

    from edge.runtime import get_runtime

    with warnings.catch_warnings():  # the debugger runs TF's own interpreter, which warns it is deprecated
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning)
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter,
                                                             debug_dataset=converter.representative_dataset)
        calibrated = get_runtime().interpreter_class(model_content=debugger.calibrated_model)
        outputs = [detail["name"] for detail in calibrated.get_output_details()]
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=outputs)
        return debugger.get_nondebug_quantized_model()


QUANT_MODES: dict[str, QuantMode] = {
    "float32": QuantMode("float32", False, "no quantization", _float32),
    "float16": QuantMode("float16", False, "float16 weights", _float16),
    "dynamic": QuantMode("dynamic", False, "int8 weights, activations quantized at run time", _dynamic),
    "int8": QuantMode("int8", True, "full integer, uint8 input, float output", _int8),
    "int8-float-last": QuantMode("int8-float-last", True, "int8 but the last layer (the logits) in float; "
                                 "float input", _calibrated, _convert_float_last),
}


def representative_dataset(images: np.ndarray) -> Callable[[], Iterable[list[np.ndarray]]]:
    """Calibration samples as the model sees them (float pixels in [0, 255]), plus one image holding
    0 and 255 so the calibrated input range is exactly [0, 255] and raw pixels are the uint8 input."""
    extremes = np.zeros_like(images[:1])
    extremes[0, 0, 0] = 255

    def generate():
        yield [extremes.astype(np.float32)]
        for image in images:  # a row at a time: the photos may be a memory-mapped file
            yield [image[None].astype(np.float32)]

    return generate
