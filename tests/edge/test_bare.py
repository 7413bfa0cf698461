"""A bare .tflite (a bundle's file copied alone): its TFLite metadata makes it runnable without a
manifest, predicting what its bundle predicts; wrong or missing metadata is one line, never a traceback."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edge import BundleError, Predictor
from edge.bare import BARE
from edge.preprocess import load_image
from edge.tflite_metadata import read_metadata
from mledge.cli import main
from tests.edge.test_predictor import old_runtime_without

SINGLE = ["multioutput-float32", "multioutput-float16", "multioutput-int8", "multioutput-int8-float-last",
          "multioutput-dynamic", "shared-int8-fused"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def pixels(test_images):
    return np.stack([load_image(p, (32, 32), "bilinear") for p in test_images[:8]])


@pytest.mark.parametrize("name", SINGLE)
def test_a_file_alone_predicts_as_its_bundle(bundles, tmp_path, pixels, name):
    if old_runtime_without(name):
        pytest.skip("this runtime cannot load dynamic-range bundles (see test_predictor.test_matches_keras)")
    bundle = Predictor(bundles / name)
    alone = tmp_path / "alone.tflite"
    shutil.copy(bundles / name / bundle.manifest["files"][0]["name"], alone)
    bare = Predictor(alone)
    assert bare.bare and bare.manifest["architecture"] == BARE
    assert bare.classes == bundle.classes and bare.size == bundle.size
    assert list(bare.thresholds) == [0.5] * len(bare.classes)
    np.testing.assert_allclose(bare.predict_pixels(pixels), bundle.predict_pixels(pixels), atol=1e-6)


def test_each_file_of_an_ensemble_names_its_class(bundles, pixels):
    bundle = Predictor(bundles / "independent-int8")
    expected = bundle.predict_pixels(pixels)
    for k, entry in enumerate(bundle.manifest["files"]):
        alone = Predictor(bundles / "independent-int8" / entry["name"])
        assert alone.classes == entry["outputs"] == [bundle.classes[k]]
        np.testing.assert_allclose(alone.predict_pixels(pixels)[:, 0], expected[:, k], atol=1e-6)


def test_metadata_says_what_the_file_is(bundles):
    path = bundles / "multioutput-int8" / "model.tflite"
    meta = read_metadata(path, path.read_bytes())
    manifest = json.loads((bundles / "multioutput-int8" / "manifest.json").read_text())
    assert meta.name == "multilabel-edge multioutput, int8"
    assert meta.author == f"multilabel-edge {manifest['toolkit_version']}"
    assert re.fullmatch(r"graph sha256 [0-9a-f]{12}", meta.version)
    assert meta.input.mean == [0.0] and meta.input.std == [1.0]
    assert meta.output.calibration == ("identity", 0.0)
    assert meta.archive["labels.txt"].decode().split() == manifest["classes"]


@pytest.mark.parametrize(("name", "problem"), [
    ("a-label-short", "has 19 labels for 20 output columns"),
    ("no-normalization", "a float32 input and no normalization in its metadata"),
    ("no-metadata", "no TFLite metadata"),
])
def test_wrong_metadata_is_one_line(fixtures, test_images, name, problem):
    path = fixtures / "bare" / f"{name}.tflite"
    with pytest.raises(BundleError, match=problem):
        Predictor(path)
    result = run("edge", "predict", path, test_images[0])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert result.output.startswith(f"error: {path}: ") and problem in result.output


def test_corrupt_metadata_is_refused_or_read(bundles, tmp_path):
    """Every byte of the metadata buffer changed in turn: it is read, or refused with BundleError."""
    original = (bundles / "multioutput-int8" / "model.tflite").read_bytes()
    start = original.index(b"M001") - 4
    path = tmp_path / "model.tflite"
    refused = 0
    for at in range(start, min(start + 600, len(original))):
        content = bytearray(original)
        content[at] ^= 0xA5
        path.write_bytes(bytes(content))
        try:
            Predictor(path).predict_pixels(np.zeros((1, 32, 32, 3), np.uint8))
        except BundleError:
            refused += 1
    assert refused > 0


def test_info_predict_and_bench_take_a_bare_file(bundles, fixtures, tmp_path, test_images):
    alone = tmp_path / "model.tflite"
    shutil.copy(bundles / "multioutput-int8" / "model.tflite", alone)
    info = run("edge", "info", alone)
    assert info.exit_code == 0, info.output
    assert "no manifest to verify it against" in info.output
    assert "multilabel-edge multioutput, int8" in info.output
    assert "score calibration identity (a sigmoid)" in info.output
    assert "labels aeroplane, bicycle" in info.output
    predicted = run("edge", "predict", alone, test_images[0], "--format", "json")
    assert predicted.exit_code == 0, predicted.output
    assert len(json.loads(predicted.output[predicted.output.index("["):])[0]["probabilities"]) == 20
    bench = run("edge", "bench", bundles / "multioutput-int8", alone, "--voc", fixtures / "data", "--split", "test",
                "--limit", "8", "--runs", "3", "--warmup", "1", "--json")
    assert bench.exit_code == 0, bench.output
    rows = json.loads(bench.output[bench.output.index("["):])
    assert [r["status"] for r in rows] == ["ok", "ok"] and rows[1]["arch"] == BARE
    assert rows[0]["mAP"] == pytest.approx(rows[1]["mAP"], abs=1e-6)
