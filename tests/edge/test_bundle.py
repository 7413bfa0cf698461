"""Bundle checks: a changed or missing file, an unknown format version, a broken manifest."""

from __future__ import annotations

import json
import shutil

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
