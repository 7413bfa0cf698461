"""A bare .tflite image classifier, run without a manifest: one of our bundle's files copied alone,
or a model another tool made (MediaPipe Model Maker, say), so that both sit in one bench table.

Its input size and dtype come from the model, its labels, normalization and score calibration from
its standard TFLite metadata (edge/tflite_metadata.py), its thresholds are 0.5. It is untrusted input
like a manifest, and nothing vouches for it: there is no sha256 to check it against (``NOTE``).
Pixels go in as MediaPipe feeds them: a float input gets (x - mean) / std, a uint8 input the bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edge.bundle import BundleError, load_interpreter, read_manifest
from edge.schema import MAX_MODEL_BYTES
from edge.tflite_metadata import (
    CALIBRATION_FILE,
    LABELS_FILE,
    MetadataError,
    ModelMetadata,
    ScoreCalibration,
    associated_lines,
    read_metadata,
)

NOTE = ("{path}: a bare .tflite, no manifest to verify it against: labels and normalization from its metadata, "
        "thresholds 0.5")
BARE = "bare"  # the manifest's architecture for a bare file


def _labels(path: Path, meta: ModelMetadata, columns: int) -> list[str]:
    labels = associated_lines(path, meta, LABELS_FILE, "labels")
    if labels is None:
        raise MetadataError(f"{path}: its metadata has no labels file for the output (TENSOR_AXIS_LABELS)")
    if len(labels) != columns:
        raise MetadataError(f"{path}: its metadata has {len(labels)} labels for {columns} output columns")
    seen: dict[str, int] = {}
    names = []
    for k, label in enumerate(labels):  # ImageNet's own labels repeat two names; each column needs its own
        name = label.strip() or f"class {k}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return names


def _normalization(path: Path, meta: ModelMetadata, dtype: str) -> dict | None:
    if dtype == "uint8":
        return None  # the bytes themselves, as MediaPipe feeds a uint8 model
    mean, std = meta.input.mean, meta.input.std
    if not mean or not std:
        raise MetadataError(f"{path}: a {dtype} input and no normalization in its metadata: nothing says which "
                            "pixel values it takes")
    if len(mean) != len(std) or len(mean) not in (1, 3) or not np.isfinite(mean + std).all() or 0 in std:
        raise MetadataError(f"{path}: its normalization (mean {mean}, std {std}) is not 1 or 3 finite pairs "
                            "with std not 0")
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def open_bare(path: str | Path, num_threads: int | None = None) -> tuple[dict, ScoreCalibration | None, tuple]:
    """(manifest, its score calibration, what load_interpreter gave: the Predictor runs that very
    interpreter) of a lone .tflite file."""
    path = Path(path)
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise BundleError(f"{path}: {path.stat().st_size} bytes, more than a model may have ({MAX_MODEL_BYTES})")
    content = path.read_bytes()
    meta = read_metadata(path, content)
    if meta is None:
        raise MetadataError(f"{path}: no TFLite metadata, so no labels or normalization (a bundle folder has a "
                            "manifest for that)")
    loaded = load_interpreter(path, content, num_threads)
    _, inputs, outputs = loaded
    if len(inputs) != 1 or len(outputs) != 1:
        raise BundleError(f"{path}: {len(inputs)} inputs and {len(outputs)} outputs; an image classifier has one each")
    shape, dtype = [int(v) for v in inputs[0]["shape"]], np.dtype(inputs[0]["dtype"]).name
    if len(shape) != 4 or shape[3] != 3 or dtype not in ("uint8", "float32"):
        raise BundleError(f"{path}: input {shape} {dtype}; an image classifier takes [1, H, W, 3] uint8 or float32")
    columns = int(np.prod(outputs[0]["shape"][1:])) if len(outputs[0]["shape"]) > 1 else 0
    classes = _labels(path, meta, columns)
    calibration = None
    if meta.output.calibration:
        lines = associated_lines(path, meta, CALIBRATION_FILE, "score calibration")
        if lines is None or len(lines) != columns:
            raise MetadataError(f"{path}: its score calibration has {0 if lines is None else len(lines)} lines for "
                                f"{columns} output columns")
        calibration = ScoreCalibration.parse(path, *meta.output.calibration, lines)
    manifest = {
        "architecture": BARE, "fused": False, "classes": classes, "thresholds": [0.5] * len(classes),
        "input": {"height": shape[1], "width": shape[2], "channels": 3, "layout": "NHWC", "channel_order": "RGB",
                  "dtype": dtype, "quantization": None, "value_range": [0, 255], "resize": "bilinear",
                  "normalization": _normalization(path, meta, dtype)},
        "output": "calibrated" if calibration else "probabilities",
        "quantization": f"{dtype} input",
        "files": [{"name": path.name, "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest(),
                   "outputs": classes}],
        "metadata": {"name": meta.name, "description": meta.description, "version": meta.version,
                     "author": meta.author},
    }
    return manifest, calibration, loaded


def read_any(path: str | Path) -> dict:
    """The manifest of a bundle folder (checked), or the one a bare file's metadata makes."""
    return open_bare(path)[0] if Path(path).is_file() else read_manifest(path)
