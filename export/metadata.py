"""The standard TFLite model metadata in every file of a bundle, so that the file is usable alone:
MediaPipe Tasks' ImageClassifier, the LiteRT support library and Android Studio read it.

It names the model, its version (the converted graph's sha256, so that an export is reproducible
byte for byte) and the toolkit's version, describes the image input (RGB, 0..255, and a
normalization of mean 0 and std 1, since our models normalize inside), and gives the output its
labels file and, for logits, a sigmoid score calibration so that readers report probabilities.
The manifest stays what our runtime trusts; its sha256 is of the file with the metadata in it.

export/metadata_writer.py writes it in pure Python (the ``flatbuffers`` package and TensorFlow's
TFLite schema), the same bytes as tflite-support's metadata writer, without its native library.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from toolkit import __version__
from toolkit.errors import UserError

NORMALIZATION = {"mean": [0.0], "std": [1.0]}  # the model takes 0..255 and normalizes inside


def check_writer() -> None:
    """Refuse an export whose metadata cannot be written before minutes of conversion, in one line."""
    try:
        import export.metadata_writer  # noqa: F401
    except ImportError as err:
        raise UserError(f"writing a bundle's TFLite metadata needs {err.name or err}, which is missing: "
                        "pip install 'multilabel-edge[train]'") from None


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
    """Each job's file rewritten in place with its metadata."""
    from export.metadata_writer import write

    for job in jobs:
        write(job)
