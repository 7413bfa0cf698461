"""Our bundles' files in MediaPipe Tasks, as an Android, iOS, web or Raspberry Pi app runs them:
``vision.ImageClassifier`` reads the files' standard TFLite metadata (labels, normalization, the
sigmoid score calibration) and must give our class names and our runtime's probabilities.

Runs in its own environment (mediapipe, the edge extra, no TensorFlow): ``make test-mediapipe``.
The photos are given at the model's input size, so MediaPipe's own resizing does not enter.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge import Predictor

mp = pytest.importorskip("mediapipe")
from mediapipe.tasks.python import BaseOptions, vision  # noqa: E402

TOLERANCE = {"float32": 1e-3, "float16": 1e-3, "int8": 0.01, "int8-float-last": 0.01}
SINGLE = ["multioutput-float32", "multioutput-float16", "multioutput-int8", "multioutput-int8-float-last",
          "shared-int8-fused"]


def mediapipe_scores(model, pixels: np.ndarray) -> list[dict[str, float]]:
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(model)), max_results=-1)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        results = [classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(p)))
                   for p in pixels]
    return [{c.category_name: c.score for c in r.classifications[0].categories} for r in results]


@pytest.mark.parametrize("name", SINGLE)
def test_image_classifier_gives_our_names_and_probabilities(bundles, test_images, name):
    predictor = Predictor(bundles / name)
    pixels = np.stack([predictor.load(p) for p in test_images[:12]])
    ours = predictor.predict_pixels(pixels)
    theirs = mediapipe_scores(bundles / name / predictor.manifest["files"][0]["name"], pixels)
    for row, scores in zip(ours, theirs):
        assert sorted(scores) == sorted(predictor.classes)
        got = np.array([scores[c] for c in predictor.classes])
        np.testing.assert_allclose(got, row, atol=TOLERANCE[predictor.manifest["quantization"]])


def test_each_file_of_an_ensemble_names_its_class(bundles, test_images):
    predictor = Predictor(bundles / "independent-int8")
    pixels = np.stack([predictor.load(p) for p in test_images[:6]])
    ours = predictor.predict_pixels(pixels)
    for k, entry in enumerate(predictor.manifest["files"]):
        theirs = mediapipe_scores(bundles / "independent-int8" / entry["name"], pixels)
        assert all(list(scores) == [predictor.classes[k]] for scores in theirs)
        np.testing.assert_allclose([s[predictor.classes[k]] for s in theirs], ours[:, k], atol=TOLERANCE["int8"])
