"""The pure-Python metadata writer writes the bytes tflite-support's writer wrote.

tests/data/tflite-support-0.4.4/ holds two small models converted by TensorFlow 2.21 (float32 and
uint8 inputs) and, for five jobs (jobs.json: logits or probabilities, with and without a
normalization), the files tflite-support 0.4.4's ``image_classifier.MetadataWriter`` made of them
through the writer this toolkit used before (its tensor types, a fixed zip time).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.tflite_metadata import read_metadata
from export.metadata_writer import with_metadata

DATA = Path(__file__).parent / "data" / "tflite-support-0.4.4"
CASES = json.loads((DATA / "jobs.json").read_text())


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_same_bytes_as_tflite_support(case):
    model, job = (DATA / CASES[case]["model"]).read_bytes(), CASES[case]["job"]
    assert with_metadata(model, job) == (DATA / f"{case}.tflite").read_bytes()


def test_written_again_the_metadata_is_replaced_not_added():
    model, job = (DATA / "float.tflite").read_bytes(), CASES["float-true"]["job"]
    once = with_metadata(model, job)
    assert with_metadata(once, job) == once
    relabelled = with_metadata(once, {**job, "labels": ["a", "b", "c"], "sigmoid": False})
    meta = read_metadata(Path("relabelled.tflite"), relabelled)
    assert meta.archive == {"labels.txt": b"a\nb\nc\n"} and meta.output.calibration is None


def test_what_it_writes_reads_back():
    job = CASES["uint8-true"]["job"]
    meta = read_metadata(Path("m.tflite"), with_metadata((DATA / "uint8.tflite").read_bytes(), job))
    assert (meta.name, meta.description, meta.version, meta.author) == (
        job["name"], job["description"], job["version"], job["author"])
    assert (meta.input.name, meta.input.mean, meta.input.std) == ("image", [0.0], [1.0])
    assert meta.output.files == {"labels.txt": 2, "sigmoid_calibration.txt": 4}
    assert meta.output.calibration == ("identity", 0.0)
    assert meta.archive["labels.txt"].decode().split() == job["labels"]
    assert meta.archive["sigmoid_calibration.txt"].decode().splitlines() == ["1.0,1.0,0.0"] * 3
