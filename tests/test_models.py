"""The study's CNN and the three architectures."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.models import ARCHITECTURES, TRUNK_LAYERS, CNNConfig, build_cnn, copy_trunk, fuse, logits_model

TINY = CNNConfig(img_size=32, conv1=4, conv2=8, dense=16)


def test_study_cnn_at_100_has_17_4_million_parameters():
    assert build_cnn(CNNConfig(), 20).count_params() == 17_410_612  # not the study's "25 MB"


def test_layers_follow_the_study():
    model = build_cnn(TINY, 20)
    conv = [layer for layer in model.layers if layer.name.startswith("conv")]
    assert [(c.filters, c.padding) for c in conv] == [(4, "same"), (4, "valid"), (8, "same"), (8, "valid")]
    assert [layer.rate for layer in model.layers if "drop" in layer.name] == [0.25, 0.25, 0.5]
    assert model.output_shape == (None, 20)
    assert model.get_layer("probs").dtype_policy.name == "float32"


def test_registry_names_three_architectures():
    assert list(ARCHITECTURES) == ["independent", "shared", "multioutput"]


def test_copy_trunk_freezes_and_copies():
    a, b = build_cnn(TINY, 1, "a"), build_cnn(TINY, 1, "b")
    copy_trunk(a, b)
    for name in TRUNK_LAYERS:
        assert not b.get_layer(name).trainable
        for wa, wb in zip(a.get_layer(name).get_weights(), b.get_layer(name).get_weights()):
            np.testing.assert_array_equal(wa, wb)
    assert b.get_layer("dense").trainable and b.get_layer("logits").trainable


def test_copy_trunk_refuses_other_widths_naming_the_layer():
    wider = build_cnn(CNNConfig(img_size=32, conv1=4, conv2=16, dense=16), 1, "wider")
    b = build_cnn(TINY, 1, "b")
    before = b.get_weights()
    with pytest.raises(ValueError, match="layer conv2a "):
        copy_trunk(wider, b)
    for w, was in zip(b.get_weights(), before):  # nothing copied, nothing frozen
        np.testing.assert_array_equal(w, was)
    assert all(b.get_layer(name).trainable for name in TRUNK_LAYERS)


def test_fused_graph_predicts_like_the_ensemble():
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype(np.float32)
    for shared in (False, True):
        models = [build_cnn(TINY, 1, f"m{k}") for k in range(3)]
        if shared:
            for m in models[1:]:
                copy_trunk(models[0], m)
        expected = np.concatenate([np.asarray(logits_model(m)(x)) for m in models], axis=1)
        np.testing.assert_allclose(np.asarray(fuse(models, TINY, shared_trunk=shared)(x)), expected, atol=1e-5)
