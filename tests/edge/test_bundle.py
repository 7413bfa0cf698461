"""Bundle checks: a changed or missing file, an unknown format version, a broken manifest."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from edge import BundleError, Predictor, read_manifest


@pytest.fixture
def bundle(bundles, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(bundles / "independent-int8", copy)
    return copy


def test_valid_bundle(bundle):
    manifest = read_manifest(bundle)
    assert manifest["format_version"] == 1 and len(manifest["files"]) == 3
    assert manifest["input"]["height"] == 32 and manifest["output"] == "logits"


def test_changed_file(bundle):
    path = bundle / "car.tflite"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="car.tflite: file changed since export"):
        Predictor(bundle)


def test_missing_file(bundle):
    (bundle / "person.tflite").unlink()
    with pytest.raises(BundleError, match="person.tflite: model file named in the manifest is missing"):
        Predictor(bundle)


def test_unknown_format_version(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format_version"] = 99
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format version 99 is not supported"):
        read_manifest(bundle)


def test_broken_manifest(bundle, tmp_path):
    (bundle / "manifest.json").write_text("{")
    with pytest.raises(BundleError, match="manifest.json: not valid JSON"):
        read_manifest(bundle)
    with pytest.raises(BundleError, match="manifest.json: missing"):
        read_manifest(tmp_path)


def test_outputs_must_cover_classes(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][0]["outputs"] = ["car"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="do not cover the classes exactly once"):
        read_manifest(bundle)


def rewrite(bundle, change) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def set_field(path: str, value):
    def change(manifest):
        *parents, last = path.split(".")
        node = manifest
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return change


DELETE = object()
BAD_FIELDS = [  # (where, value, the field the error must name)
    ("thresholds", [1.5, 0.5, 0.5], "thresholds"),
    ("thresholds", ["0.5", 0.5, 0.5], "thresholds"),
    ("thresholds", [0.5, 0.5], "thresholds"),
    ("classes", ["car", "car", "person"], "classes"),
    ("classes", "car", "classes"),
    ("architecture", "resnet", "architecture"),
    ("quantization", "int4", "quantization"),
    ("output", None, "output"),
    ("flip_average", "yes", "flip_average"),
    ("input.height", 0, "input.height"),
    ("input.width", -32, "input.width"),
    ("input.height", 32.0, "input.height"),
    ("input.channels", 4, "input.channels"),
    ("input.dtype", "float64", "input.dtype"),
    ("input.resize", "lanczos9", "input.resize"),
    ("input.quantization", {"scale": 0, "zero_point": 0}, "input.quantization"),
    ("input", DELETE, "input"),
    ("files", [], "files"),
    ("files.0.name", "../car.tflite", "files[0].name"),
    ("files.0.name", "/etc/passwd.tflite", "files[0].name"),
    ("files.0.name", "sub/car.tflite", "files[0].name"),
    ("files.0.name", "car.tflite\0", "files[0].name"),
    ("files.0.bytes", -1, "files[0].bytes"),
    ("files.0.bytes", True, "files[0].bytes"),
    ("files.0.sha256", "abc", "files[0].sha256"),
    ("files.0.outputs", [1], "files[0].outputs"),
    ("files.0.outputs", DELETE, "files[0].outputs"),
]


@pytest.mark.parametrize(("where", "value", "field"), BAD_FIELDS, ids=[f"{w}={v!r}"[:40] for w, v, _ in BAD_FIELDS])
def test_every_field_is_checked_and_named(bundle, where, value, field):
    rewrite(bundle, set_field(where, value))
    with pytest.raises(BundleError, match=rf"manifest.json: {re.escape(field)}:"):
        Predictor(bundle)


def test_a_link_may_not_leave_the_bundle(bundle, tmp_path):
    outside = tmp_path / "elsewhere.tflite"
    shutil.copy(bundle / "car.tflite", outside)
    (bundle / "car.tflite").unlink()
    (bundle / "car.tflite").symlink_to(outside)
    with pytest.raises(BundleError, match="car.tflite: links outside the bundle folder"):
        Predictor(bundle)
    (bundle / "car.tflite").unlink()  # a link to a file inside the folder is fine
    shutil.copy(outside, bundle / "car-real.tflite")
    (bundle / "car.tflite").symlink_to("car-real.tflite")
    Predictor(bundle)


def test_model_must_be_a_regular_file(bundle):
    (bundle / "car.tflite").unlink()
    (bundle / "car.tflite").mkdir()
    with pytest.raises(BundleError, match="car.tflite: not a regular file"):
        Predictor(bundle)


def test_the_checked_bytes_are_the_bytes_that_run(bundles, tmp_path, test_images, monkeypatch):
    """A file swapped right after its sha256 check never runs: the interpreter loads the bytes read."""
    import edge.predictor

    copy = tmp_path / "mo"
    shutil.copytree(bundles / "multioutput-float32", copy)
    pixels = Predictor(copy).load(test_images[0])
    expected = Predictor(copy).predict_pixels(pixels)
    other = (bundles / "multioutput-float16" / "model.tflite").read_bytes()  # same I/O, other weights
    real_read = edge.predictor.read_model

    def read_then_swap(folder, entry, verify=True):
        data = real_read(folder, entry, verify)
        (folder / entry["name"]).write_bytes(other)  # the attacker's moment
        return data

    monkeypatch.setattr(edge.predictor, "read_model", read_then_swap)
    np.testing.assert_array_equal(Predictor(copy).predict_pixels(pixels), expected)
    swapped = Predictor(copy, verify=False).predict_pixels(pixels)  # what loading the path again would run
    assert not np.array_equal(swapped, expected)


def test_model_io_must_match_the_manifest(bundle, bundles):
    rewrite(bundle, set_field("input.height", 40))
    expected = r"aeroplane.tflite: input \[1, 32, 32, 3\] uint8, the manifest says \[N, 40, 32, 3\]"
    with pytest.raises(BundleError, match=expected):
        Predictor(bundle)
    rewrite(bundle, set_field("input.height", 32))
    twenty = (bundles / "multioutput-int8" / "model.tflite").read_bytes()  # 20 outputs where 1 is claimed
    (bundle / "car.tflite").write_bytes(twenty)
    rewrite(bundle, lambda m: m["files"][1].update(bytes=len(twenty), sha256=hashlib.sha256(twenty).hexdigest()))
    with pytest.raises(BundleError, match="car.tflite: 20 output columns, the manifest names 1 classes for it"):
        Predictor(bundle)
