"""On-device inference for multilabel-edge bundles: numpy, Pillow and a TFLite interpreter only.

Nothing here imports TensorFlow, Keras or the rest of this project, so a board needs only
``pip install multilabel-edge[edge]`` (or numpy, pillow and tflite-runtime).
"""

from edge.bundle import BundleError, read_manifest
from edge.predictor import Prediction, Predictor

__all__ = ["BundleError", "Prediction", "Predictor", "read_manifest"]
