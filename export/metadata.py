"""The standard TFLite model metadata in every file of a bundle, so that the file is usable alone:
MediaPipe Tasks' ImageClassifier, the LiteRT support library and Android Studio read it.

It names the model, its version (the converted graph's sha256, so that an export is reproducible
byte for byte) and the toolkit's version, describes the image input (RGB, 0..255, and a
normalization of mean 0 and std 1, since our models normalize inside), and gives the output its
labels file and, for logits, a sigmoid score calibration so that readers report probabilities.
The manifest stays what our runtime trusts; its sha256 is of the file with the metadata in it.

tflite-support writes it (export/metadata_writer.py), in an environment of its own: the Python of
``MLEDGE_METADATA_PYTHON``, else the checkout's ``.venv-meta`` (``make install-metadata``), else
this one if it has tflite-support.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from toolkit import __version__
from toolkit.errors import UserError

WRITER = Path(__file__).with_name("metadata_writer.py")
METADATA_ENV = Path(__file__).resolve().parents[1] / ".venv-meta"
NORMALIZATION = {"mean": [0.0], "std": [1.0]}  # the model takes 0..255 and normalizes inside


def writer_python() -> str:
    if os.environ.get("MLEDGE_METADATA_PYTHON"):
        return os.environ["MLEDGE_METADATA_PYTHON"]
    if (METADATA_ENV / "bin" / "python").is_file():
        return str(METADATA_ENV / "bin" / "python")
    if importlib.util.find_spec("tensorflow_lite_support") is not None:
        return sys.executable
    raise UserError("writing a bundle's TFLite metadata needs tflite-support, which cannot share TensorFlow's "
                    "environment: run `make install-metadata` in the checkout, or set MLEDGE_METADATA_PYTHON to a "
                    "Python that has tflite-support==0.4.4")


def describe(path: Path, labels: list[str], manifest: dict) -> dict:
    """The writer's job for one file of the bundle whose manifest (without files yet) is given."""
    spec, arch, quant = manifest["input"], manifest["architecture"], manifest["quantization"]
    kind = f"{arch}{' fused' if manifest.get('fused') else ''}, {quant}"
    own = f": {labels[0]}" if len(labels) == 1 and len(manifest["classes"]) > 1 else ""
    return {
        "path": str(path), "labels": labels, "normalization": NORMALIZATION,
        "sigmoid": manifest["output"] == "logits",
        "name": f"multilabel-edge {kind}{own}",
        "description": (f"Multi-label image classifier: {len(labels)} class(es), each scored on its own, so a photo "
                        f"may show several or none. Exported by multilabel-edge {__version__} ({kind}). A class is "
                        "present when its probability reaches its threshold in the bundle's manifest.json "
                        "(0.5 without one)." + (" The bundle averages each photo's probabilities with its mirror's "
                                                "(flip_average): this file alone scores one view."
                                                if manifest.get("flip_average") else "")),
        "version": f"graph sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:12]}",
        "author": f"multilabel-edge {__version__}",
        "input_description": (f"An RGB photo at {spec['width']}x{spec['height']}, values 0..255 ({spec['dtype']}), "
                              f"resized with {spec['resize']} filtering; the model normalizes inside."),
        "output_description": "Per-class probabilities" + (" (a sigmoid of the logits, by score calibration)."
                                                           if manifest["output"] == "logits" else "."),
    }


def write_metadata(jobs: list[dict]) -> None:
    """Every file in one run of the writer (its start, about a second, is paid once)."""
    proc = subprocess.run([writer_python(), str(WRITER)], input=json.dumps(jobs), capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise UserError(f"{jobs[0]['path']}: writing its TFLite metadata failed ({last[:300]})")
