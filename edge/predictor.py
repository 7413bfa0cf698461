"""Run a bundle: one interpreter (a single model or a fused ensemble) or one per file (the ensemble
as the study deploys it), with the manifest's preprocessing, and the labels over its thresholds.
A bare .tflite with metadata runs the same way (edge/bare.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.bare import open_bare
from edge.bundle import BundleError, load_interpreter, read_manifest, read_model
from edge.preprocess import load_image, mirror, prepare
from edge.tflite_metadata import ScoreCalibration


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))


@dataclass
class Prediction:
    source: str
    probabilities: dict[str, float]
    labels: list[str]


class ModelFile:
    """One .tflite file: feeds pixels in the dtype its input wants, returns float outputs (N, k).

    The model is untrusted: it loads from the bytes the bundle reader checked, and its input and
    output must be what the manifest says (shape, dtype, one column per class it claims)."""

    def __init__(self, path: Path, loaded: tuple, spec: dict, outputs: int, output_kind: str,
                 calibration: ScoreCalibration | None = None):
        """``loaded``: what load_interpreter gave for the file's checked bytes."""
        self.path = path
        self.interpreter, inputs, results = loaded
        if len(inputs) != 1 or len(results) != 1:
            raise BundleError(f"{path}: {len(inputs)} inputs and {len(results)} outputs; a bundle model has one each")
        self.input, self.output = inputs[0], results[0]
        shape = [int(v) for v in self.input["shape"]]
        expected = [int(spec["height"]), int(spec["width"]), 3]
        if len(shape) != 4 or shape[1:] != expected or np.dtype(self.input["dtype"]).name != spec["dtype"]:
            raise BundleError(f"{path}: input {shape} {np.dtype(self.input['dtype']).name}, the manifest says "
                              f"[N, {', '.join(map(str, expected))}] {spec['dtype']}")
        width = int(np.prod(self.output["shape"][1:])) if len(self.output["shape"]) > 1 else 0
        if width != outputs:
            raise BundleError(f"{path}: {width} output columns, the manifest names {outputs} classes for it")
        self.output_kind, self.calibration = output_kind, calibration
        norm = spec.get("normalization")  # a bare file's; a bundle's models normalize inside
        self.mean, self.std = ((np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32))
                               if norm else (None, None))
        self.raw = spec.get("quantization") is None  # a bare uint8 input takes the bytes, as in MediaPipe
        signature = self.input.get("shape_signature", self.input["shape"])
        self.dynamic_batch = len(signature) > 0 and signature[0] == -1
        self.batch = max(1, shape[0])

    def _resize(self, n: int) -> None:
        if n != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], [n, *self.input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
            self.batch = n

    def _quantize(self, pixels: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype == np.float32:
            x = pixels.astype(np.float32)
            return x if self.mean is None else (x - self.mean) / self.std
        scale, zero = self.input["quantization"]
        if dtype == np.uint8 and (scale == 1.0 and zero == 0 or self.raw):
            return pixels  # raw pixels are the quantized input: no arithmetic at all
        info = np.iinfo(dtype)
        return np.clip(np.round(pixels / scale + zero), info.min, info.max).astype(dtype)

    def invoke(self, pixels: np.ndarray) -> np.ndarray:
        """pixels: (N, H, W, 3) uint8 -> (N, k) probabilities."""
        if self.dynamic_batch:
            self._resize(len(pixels))
            return self._invoke_batch(pixels)
        return np.concatenate([self._invoke_batch(pixels[i : i + self.batch])
                               for i in range(0, len(pixels), self.batch)])

    def _invoke_batch(self, pixels: np.ndarray) -> np.ndarray:
        try:
            self.interpreter.set_tensor(self.input["index"], self._quantize(pixels))
            self.interpreter.invoke()
            out = self.interpreter.get_tensor(self.output["index"])
        except (ValueError, RuntimeError) as err:
            raise BundleError(f"{self.path}: the model fails to run ({str(err)[:160]})") from None
        if out.dtype != np.float32:
            scale, zero = self.output["quantization"]
            out = (out.astype(np.float32) - zero) * scale
        out = out.reshape(len(pixels), -1)
        if self.calibration is not None:
            return self.calibration.apply(out)
        return sigmoid(out) if self.output_kind == "logits" else out


class Predictor:
    """Load a bundle (manifest and sha256 checked), or a bare .tflite with metadata, and label images.

    >>> p = Predictor("bundles/multioutput-int8", num_threads=2)
    >>> p.predict(["photo.jpg"])[0].labels
    """

    def __init__(self, bundle: str | Path, num_threads: int | None = None, verify: bool = True):
        self.path = Path(bundle)
        self.bare = self.path.is_file()
        if self.bare:
            self.manifest, calibration, loaded = open_bare(self.path, num_threads)
            interpreters, calibrations = [loaded], [calibration]
        else:
            self.manifest = read_manifest(self.path, verify=False)  # each file is verified as it is read
            interpreters = [load_interpreter(self.path / entry["name"], read_model(self.path, entry, verify),
                                             num_threads) for entry in self.manifest["files"]]
            calibrations = [None] * len(interpreters)
        self.classes: list[str] = list(self.manifest["classes"])
        self.thresholds = np.asarray(self.manifest["thresholds"], dtype=np.float64)
        spec = self.manifest["input"]
        self.size = (int(spec["height"]), int(spec["width"]))
        self.resize = spec.get("resize", "bilinear")
        self.num_threads = num_threads
        self.files = [ModelFile(self.path if self.bare else self.path / entry["name"], loaded, spec,
                                len(entry["outputs"]), self.manifest["output"], calibration)
                      for entry, loaded, calibration in zip(self.manifest["files"], interpreters, calibrations)]
        order = {c: k for k, c in enumerate(self.classes)}
        self.columns = [[order[c] for c in entry["outputs"]] for entry in self.manifest["files"]]
        self.flip_average = bool(self.manifest.get("flip_average"))  # mledge export --flip-average

    def load(self, source) -> np.ndarray:
        """Decode one image to the (H, W, 3) uint8 array the bundle expects."""
        return load_image(source, self.size, self.resize)

    def prepare(self, image) -> np.ndarray:
        """A decoded PIL image (a video frame) to the array the bundle expects."""
        return prepare(image, self.size, self.resize)

    def predict_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, C) probabilities in the bundle's class order; for a bundle exported
        with --flip-average, the mean of each photo's and its mirror's."""
        pixels = np.asarray(pixels, dtype=np.uint8)
        if pixels.ndim == 3:
            pixels = pixels[None]
        out = self._scores(pixels)
        if self.flip_average:
            out = (out + self._scores(mirror(pixels))) / 2
        return out

    def _scores(self, pixels: np.ndarray) -> np.ndarray:
        out = np.empty((len(pixels), len(self.classes)), dtype=np.float32)
        for model, columns in zip(self.files, self.columns):
            out[:, columns] = model.invoke(pixels)
        return out

    def labels_of(self, probs: np.ndarray, threshold: float | None = None) -> list[str]:
        cut = self.thresholds if threshold is None else threshold
        return [c for c, hit in zip(self.classes, probs >= cut) if hit]

    def predict(self, sources: list, threshold: float | None = None) -> list[Prediction]:
        pixels = np.stack([self.load(s) for s in sources])
        probs = self.predict_pixels(pixels)
        return [Prediction(str(s), dict(zip(self.classes, map(float, p))), self.labels_of(p, threshold))
                for s, p in zip(sources, probs)]
