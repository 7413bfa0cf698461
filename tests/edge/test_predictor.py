"""The edge runtime against the Keras models the bundles came from, on the same test images
(decoded by the same Pillow code that training used). Tolerances: see tests/test_export.py."""

from __future__ import annotations

import json
import platform

import numpy as np
import pytest

from edge import BundleError, Predictor
from tests.edge.fixtures import TOLERANCE

CASES = {
    "multioutput-float32": "multioutput", "multioutput-float16": "multioutput", "multioutput-dynamic": "multioutput",
    "multioutput-int8": "multioutput", "multioutput-int8-float-last": "multioutput",
    "independent-float32": "independent", "independent-int8": "independent", "shared-int8-fused": "shared",
}


def old_runtime_without(name: str) -> bool:
    """tflite-runtime 2.14 (the last release) predates the op versions TF 2.21 writes for
    dynamic-range models (FULLY_CONNECTED v12): such bundles need LiteRT."""
    from edge.runtime import get_runtime

    rt = get_runtime()
    return name.endswith("dynamic") and rt.name == "tflite_runtime" and rt.version.startswith("2.14")


@pytest.mark.parametrize("name", CASES)
def test_matches_keras(bundles, test_images, reference, name):
    if old_runtime_without(name):
        with pytest.raises(BundleError, match="the interpreter cannot load this model .*older"):
            Predictor(bundles / name)
        return
    predictor = Predictor(bundles / name)
    probs = np.stack([p for p in (predictor.predict_pixels(predictor.load(path))[0] for path in test_images)])
    diff = np.abs(probs - reference[CASES[name]]).max()
    assert diff <= TOLERANCE[predictor.manifest["quantization"]], f"{name}: max |dprob| {diff}"


def test_batch_equals_single(bundles, test_images):
    predictor = Predictor(bundles / "multioutput-float32")
    assert predictor.files[0].dynamic_batch
    pixels = np.stack([predictor.load(p) for p in test_images[:7]])
    single = np.concatenate([predictor.predict_pixels(x) for x in pixels])
    np.testing.assert_allclose(predictor.predict_pixels(pixels), single, atol=1e-6)


def test_labels_follow_thresholds(bundles, test_images):
    predictor = Predictor(bundles / "independent-int8")
    result = predictor.predict(test_images[:3])
    assert [r.source for r in result] == [str(p) for p in test_images[:3]]
    for r in result:
        assert list(r.probabilities) == ["aeroplane", "car", "person"]
        assert r.labels == [c for c, t in zip(predictor.classes, predictor.thresholds) if r.probabilities[c] >= t]
    everything = predictor.predict(test_images[:1], threshold=0.0)[0]
    assert everything.labels == predictor.classes


def test_int8_feeds_raw_pixels(bundles):
    model = Predictor(bundles / "multioutput-int8").files[0]
    assert model.input["dtype"] == np.uint8
    assert tuple(model.input["quantization"]) == (1.0, 0)


@pytest.mark.skipif(platform.machine() != "aarch64", reason="compares an ARM run with the x86 host's")
@pytest.mark.parametrize("name", CASES)
def test_matches_the_x86_host(bundles, test_images, fixtures, name):
    """Same bundle, same images, same runtime: float within 1e-5 of the x86 host; int8 identical or
    within one step of its quantized logits (at most step/4 in probability: the sigmoid's slope is at
    most 1/4)."""
    from edge.runtime import get_runtime

    if old_runtime_without(name):
        pytest.skip("this runtime cannot load dynamic-range bundles (see test_matches_keras)")
    reference = fixtures / f"host_{get_runtime().name}.npz"
    if not reference.is_file():
        pytest.fail(f"{reference}: missing; make test-arm computes it on the host with the same runtime")
    host = np.load(reference)[name]
    steps = json.loads((fixtures / "int8_steps.json").read_text())
    predictor = Predictor(bundles / name)
    probs = np.stack([predictor.predict_pixels(predictor.load(path))[0] for path in test_images])
    bound = steps[name] / 4 + 1e-6 if name in steps else 1e-5
    assert np.abs(probs - host).max() <= bound
