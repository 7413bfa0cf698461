"""Write the standard TFLite model metadata into .tflite files with tflite-support's metadata writers.

This script runs in the metadata environment (``make install-metadata``), never inside the toolkit:
tflite-support pins protobuf below 4 and TensorFlow 2.21 needs 6 or later, so the two cannot share
one environment. It imports nothing of ours; export/metadata.py starts it with the jobs on stdin:

    echo '[{"path": "model.tflite", ...}]' | .venv-meta/bin/python export/metadata_writer.py

A job: path, name, description, version, author, input_description, output_description, labels,
normalization ({"mean": [...], "std": [...]} or null) and sigmoid (true when the output is logits:
a score calibration of scale 1, slope 1, offset 0 per class makes MediaPipe report sigmoid(x)).
Each file is rewritten in place through a temporary file and a rename. Exit 1 with one line on error.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import types
import zipfile
from pathlib import Path

FIXED_TIME = 946684800  # 2000-01-01: the time the zip of associated files records


@contextlib.contextmanager
def fixed_zip_time():
    """tflite-support packs the associated files with ``zipfile.writestr``, which stamps them with the
    current time; a fixed time keeps an export reproducible byte for byte."""
    real = zipfile.time
    zipfile.time = types.SimpleNamespace(time=real.time, localtime=lambda *_: real.localtime(FIXED_TIME))
    try:
        yield
    finally:
        zipfile.time = real


def write(job: dict, scratch: Path) -> None:
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as fb
    from tensorflow_lite_support.metadata.python.metadata_writers import image_classifier, metadata_info, writer_utils

    path = Path(job["path"])
    model = bytearray(path.read_bytes())
    labels = scratch / "labels.txt"  # the associated file's name inside the .tflite
    labels.write_text("\n".join(job["labels"]) + "\n", encoding="utf-8")
    calibration = None
    if job["sigmoid"]:
        params = scratch / "sigmoid_calibration.txt"  # one line a class, no trailing empty line
        params.write_text("\n".join("1.0,1.0,0.0" for _ in job["labels"]), encoding="utf-8")
        calibration = metadata_info.ScoreCalibrationMd(fb.ScoreTransformationType.IDENTITY, 0.0, str(params))
    norm = job["normalization"] or {}
    image = metadata_info.InputImageTensorMd(
        name="image", description=job["input_description"], norm_mean=norm.get("mean"), norm_std=norm.get("std"),
        color_space_type=fb.ColorSpaceType.RGB, tensor_type=writer_utils.get_input_tensor_types(model)[0])
    scores = metadata_info.ClassificationTensorMd(
        name="scores", description=job["output_description"], label_files=[metadata_info.LabelFileMd(str(labels))],
        tensor_type=writer_utils.get_output_tensor_types(model)[0], score_calibration_md=calibration)
    general = metadata_info.GeneralMd(name=job["name"], version=job["version"], description=job["description"],
                                      author=job["author"])
    writer = image_classifier.MetadataWriter.create_from_metadata_info(model, general, image, scores)
    tmp = path.with_name(f".{path.name}.metadata")
    with fixed_zip_time():
        tmp.write_bytes(writer.populate())
    os.replace(tmp, path)


def main() -> None:
    try:
        jobs = json.load(sys.stdin)
        for job in jobs:
            with tempfile.TemporaryDirectory() as scratch:
                write(job, Path(scratch))
    except Exception as err:  # the toolkit prints it as one line
        print(f"{type(err).__name__}: {str(err)[:300]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
