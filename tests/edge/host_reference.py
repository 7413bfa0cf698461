"""The edge runtime's own outputs on this (x86) host, per interpreter, for comparison with an
emulated ARM run of the same runtime: ``python -m tests.edge.host_reference FIXTURES``.

Writes host_<runtime>.npz (probabilities per bundle on the test images) and int8_steps.json (one
step of each int8 bundle's quantized logits). Uses whichever interpreter imports first, so the
same script serves LiteRT and tflite-runtime (put its site folder first on PYTHONPATH).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edge.bundle import BundleError
from edge.predictor import Predictor
from edge.runtime import get_runtime


def int8_output_step(predictor: Predictor) -> float | None:
    """The largest scale among int8 tensors shaped like an output: one step of the quantized logits."""
    steps = []
    for model in predictor.files:
        shape = tuple(model.output["shape"][1:])
        steps += [d["quantization"][0] for d in model.interpreter.get_tensor_details()
                  if np.dtype(d["dtype"]) == np.int8 and tuple(d["shape"][1:]) == shape and d["quantization"][0]]
    return max(steps) if steps else None


def save_host_predictions(fixtures: Path) -> Path:
    ids = (fixtures / "test_ids.txt").read_text().split()
    images = [fixtures / "data" / "VOC2007" / "JPEGImages" / f"{i}.jpg" for i in ids]
    outputs, steps = {}, {}
    for bundle in sorted((fixtures / "bundles").iterdir()):
        try:
            predictor = Predictor(bundle)
        except BundleError:  # a model this runtime cannot load (tests check that error themselves)
            continue
        outputs[bundle.name] = np.stack([predictor.predict_pixels(predictor.load(p))[0] for p in images])
        if predictor.manifest["quantization"] == "int8":
            steps[bundle.name] = int8_output_step(predictor)
    path = fixtures / f"host_{get_runtime().name}.npz"
    np.savez(path, **outputs)
    (fixtures / "int8_steps.json").write_text(json.dumps(steps, indent=2))
    return path


if __name__ == "__main__":
    print(save_host_predictions(Path(sys.argv[1])))
