"""Build the edge tests' bundles in the training environment: ``python -m tests.edge.fixtures DIR``.

The edge suite then runs where TensorFlow is absent and only loads these. Keras' own probabilities
on the test split are saved beside them, so the edge runtime can be checked against the model it
came from. Rebuilt only when the code that makes them changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[2]
FEW = ["aeroplane", "car", "person"]
# Max |Keras - interpreter| probability per quantization mode, for the export tests and the edge
# tests alike (why these bounds: tests/test_export.py).
TOLERANCE = {"float32": 1e-5, "float16": 1e-2, "dynamic": 0.02, "int8": 0.05, "int8-float-last": 0.05}
BUNDLES = {  # name -> (run, quant, fuse)
    "multioutput-float32": ("multioutput", "float32", False),
    "multioutput-int8": ("multioutput", "int8", False),
    "multioutput-float16": ("multioutput", "float16", False),
    "multioutput-dynamic": ("multioutput", "dynamic", False),
    "multioutput-int8-float-last": ("multioutput", "int8-float-last", False),
    "independent-float32": ("independent", "float32", False),
    "independent-int8": ("independent", "int8", False),
    "shared-int8-fused": ("shared", "int8", True),
}


def source_digest() -> str:
    digest = hashlib.sha256()
    for folder in ("toolkit", "export", "edge"):
        for path in sorted((REPO / folder).rglob("*.py")):
            digest.update(path.read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def build(out: Path) -> None:
    import numpy as np

    from export.convert import ExportOptions, export_run
    from tests.edge.host_reference import save_host_predictions
    from tests.helpers import tiny_config
    from toolkit import train
    from toolkit.data.arrays import load_arrays
    from toolkit.data.dataset import load_split
    from toolkit.data.synth import make_synthetic_voc
    from toolkit.predict import predict_run
    from toolkit.run import Run

    stamp = out / "stamp.json"
    digest = source_digest()
    if stamp.is_file() and json.loads(stamp.read_text()).get("digest") == digest:
        print(f"{out}: edge fixtures are up to date")
        return
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    data = out / "data"
    make_synthetic_voc(data, images=120, size=48, seed=1)
    runs = {
        "multioutput": tiny_config(data, "multioutput", epochs=2),
        "independent": tiny_config(data, "independent", classes=FEW),
        "shared": tiny_config(data, "shared", classes=FEW),
    }
    test = load_split(data, "test")
    images = load_arrays(test, 32).images
    reference = {}
    for name, cfg in runs.items():
        train.start(cfg, out / "runs" / name)
        reference[name] = predict_run(Run(out / "runs" / name), images)
    for name, (run, quant, fuse) in BUNDLES.items():
        export_run(out / "runs" / run, out / "bundles" / name, ExportOptions(quant=quant, fuse=fuse, calib_images=40))
    np.savez(out / "reference.npz", **reference)
    build_bare(out / "bundles" / "multioutput-float32", out / "bare")
    (out / "test_ids.txt").write_text("\n".join(test.ids) + "\n")
    save_host_predictions(out)
    stamp.write_text(json.dumps({"digest": digest, "bundles": BUNDLES}))
    print(f"{out}: edge fixtures built")


def build_bare(bundle: Path, out: Path) -> None:
    """Lone .tflite files whose metadata is wrong (a label short, no normalization) or absent."""
    from tensorflow.lite.tools import flatbuffer_utils

    from export.metadata import describe, write_metadata

    manifest = json.loads((bundle / "manifest.json").read_text())
    model = flatbuffer_utils.read_model_from_bytearray(bytearray((bundle / "model.tflite").read_bytes()))
    model.metadata = [m for m in model.metadata or [] if m.name != b"TFLITE_METADATA"]
    plain = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    out.mkdir(parents=True)
    for name in ("no-metadata", "a-label-short", "no-normalization"):
        (out / f"{name}.tflite").write_bytes(plain)
    short = describe(out / "a-label-short.tflite", manifest["classes"][:-1], manifest)
    bare = describe(out / "no-normalization.tflite", manifest["classes"], manifest)
    write_metadata([short, {**bare, "normalization": None}])


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "build" / "edge-fixtures")
