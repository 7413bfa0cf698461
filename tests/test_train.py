"""Training: every architecture writes a complete RUN; shared really shares a frozen trunk; a killed
run resumes from its last finished epoch and never retrains a finished class."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mledge.cli import main
from tests.helpers import TINY, tiny_cli_args
from toolkit.errors import UserError
from toolkit.models import TRUNK_LAYERS
from toolkit.predict import predict_run
from toolkit.run import Run
from toolkit.train.init_run import load_init

RUN_FILES = ("config.json", "history.csv", "thresholds.json", "metrics.json", "train.log")


def check_complete(path: Path, units: int, classes: int = 20) -> Run:
    run = Run(path)
    for name in RUN_FILES:
        assert (path / name).is_file(), name
    cfg = run.require_complete()
    assert len(list(run.models_dir.glob("*.keras"))) == units
    metrics = json.loads((path / "metrics.json").read_text())
    assert 0 <= metrics["mAP_area"] <= 1 and 0 <= metrics["mAP_voc07"] <= 1
    assert len(json.loads((path / "thresholds.json").read_text())["thresholds"]) == len(cfg.classes) == classes
    assert not (path / "checkpoints").exists()  # finished units leave no checkpoints behind
    return run


def test_multioutput_one_model_twenty_outputs(trained):
    run = check_complete(trained("multioutput"), units=1)
    (model,) = run.load_models()
    assert model.output_shape == (None, 20)
    header = (run.path / "history.csv").read_text().splitlines()[0]
    assert header == "unit,loss_kind,epoch,loss,val_loss,val_map,seconds"


def test_shared_trunk_identical_frozen_heads_trainable(trained):
    run = check_complete(trained("shared"), units=20)
    models = run.load_models()
    assert len(models) == 20 and all(m.output_shape == (None, 1) for m in models)
    for name in TRUNK_LAYERS:
        reference = models[0].get_layer(name).get_weights()
        for m in models:
            assert not m.get_layer(name).trainable
            for a, b in zip(reference, m.get_layer(name).get_weights()):
                np.testing.assert_array_equal(a, b)
    for m in models:
        assert m.get_layer("dense").trainable and m.get_layer("logits").trainable
    heads = [m.get_layer("logits").get_weights()[0] for m in models]
    assert not np.array_equal(heads[1], heads[2])  # each class trained its own head
    # predict_run runs the one trunk once for all heads: the same scores as the 20 models one by one
    pixels = np.random.default_rng(0).integers(0, 256, (5, *models[0].input_shape[1:]), dtype=np.uint8)
    one_by_one = np.concatenate([np.asarray(m(pixels.astype(np.float32))) for m in models], axis=1)
    np.testing.assert_allclose(predict_run(run, pixels, models), one_by_one, atol=1e-5)


def test_shared_multitask_trunk(trained):
    path = trained("shared", trunk="multitask", classes=["aeroplane", "car", "person"])
    run = check_complete(path, units=4, classes=3)  # 3 heads + the trunk trained on all (3) labels
    trunk = Run(path).load_models()[0]
    import keras

    source = keras.models.load_model(run.model_path("_trunk"), compile=False)
    expected = source.get_layer("conv2b").get_weights()[0]
    np.testing.assert_array_equal(expected, trunk.get_layer("conv2b").get_weights()[0])


def test_shared_trunk_from_a_multioutput_run(trained, tmp_path):
    source = trained("multioutput")
    path = trained("shared", trunk=str(source), classes=["aeroplane", "car", "person"])
    run = check_complete(path, units=4, classes=3)  # 3 heads + the adopted trunk
    origin = run.record("_trunk")["adopted_from"]
    data = (source / "models" / "model.keras").read_bytes()
    assert origin["sha256"] == hashlib.sha256(data).hexdigest() and origin["path"] == str(source.resolve())
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["trunk_from"] == origin  # and its training time is the source's, not this run's:
    assert metrics["train_seconds"] == round(sum(run.record(c)["seconds"] for c in run.units()), 2)
    multi = Run(source).load_models()[0]
    for model in run.load_models():
        for name in TRUNK_LAYERS:
            assert not model.get_layer(name).trainable
            for a, b in zip(multi.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
                np.testing.assert_array_equal(a, b)
    # a trunk that does not fit, or from a run of another architecture, is refused before any work
    for other, message in ((trained("shared"), "a finished multioutput run of the study's CNN"),
                           (trained("multioutput", model=replace(TINY, conv1=5)), "widths 5,8")):
        args = tiny_cli_args(Path(Run(source).config().root), "shared", tmp_path / "refused", "--trunk", str(other))
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("arch", ["independent", "multioutput"])
def test_models_start_from_a_multioutput_run(trained, tmp_path, arch):
    source = trained("multioutput")
    classes = ["person", "aeroplane", "car"]  # another order than the source's: columns go by name
    path = trained(arch, init=str(source), classes=classes, lr=0.0)  # lr 0: the trained models are the start
    origin = json.loads((path / "init.json").read_text())
    data = (source / "models" / "model.keras").read_bytes()
    assert origin["sha256"] == hashlib.sha256(data).hexdigest() and origin["path"] == str(source.resolve())
    assert json.loads((path / "metrics.json").read_text())["init_from"] == origin
    pixels = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    theirs = Run(source).load_models()[0].predict(pixels, verbose=0)
    columns = [Run(source).config().classes.index(c) for c in classes]
    np.testing.assert_allclose(predict_run(Run(path), pixels), theirs[:, columns], rtol=1e-5, atol=1e-6)
    # a source that does not fit, or --init on a shared run, is refused before any work
    root = Path(Run(source).config().root)
    for run_arch, other, message in (
            (arch, trained("independent"), "a finished multioutput run of the study's CNN"),
            (arch, trained("multioutput", model=replace(TINY, dense=12)), "widths 4,8,12"),
            ("shared", source, "a shared run takes a finished run's conv layers with --trunk RUN")):
        result = CliRunner().invoke(main, tiny_cli_args(root, run_arch, tmp_path / "refused", "--init", str(other)))
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (tmp_path / "refused").exists()
    # a run whose source's model changed since its first models started from it is not continued
    moved = tmp_path / "moved"
    shutil.copytree(path, moved)
    (moved / "init.json").write_text(json.dumps({**origin, "sha256": "0" * 64}))
    with pytest.raises(UserError, match="changed since this run's first models started from it"):
        load_init(Run(moved), Run(moved).config())


def _train_process(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen([sys.executable, "-m", "mledge", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, cwd=Path(__file__).parents[1])


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, "training ended before it could be interrupted"
        assert time.time() < deadline, "training never reached the point to interrupt"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _state_epoch(path: Path) -> int:
    try:
        return json.loads(path.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def test_killed_multioutput_run_resumes_from_last_epoch(synth_root, tmp_path):
    out = tmp_path / "run"
    args = tiny_cli_args(synth_root, "multioutput", out)
    args[args.index("--epochs") + 1] = "60"
    proc = _train_process(args)
    state = out / "checkpoints" / "model" / "state.json"
    _kill_when(proc, lambda: _state_epoch(state) >= 2)
    done = _state_epoch(state)
    assert done < 60 and not Run(out).is_done("model")

    result = CliRunner().invoke(main, ["train", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    assert f"resuming after epoch {done}" in result.output
    record = Run(out).record("model")
    assert [h["epoch"] for h in record["history"]] == list(range(1, 61))
    check_complete(out, units=1)


def test_killed_independent_run_keeps_finished_classes(synth_root, tmp_path):
    out = tmp_path / "run"
    proc = _train_process(tiny_cli_args(synth_root, "independent", out))
    models = out / "models"
    _kill_when(proc, lambda: (models / "bicycle.json").is_file())
    finished = {p.stem: p.stat().st_mtime_ns for p in models.glob("*.keras") if (models / f"{p.stem}.json").is_file()}
    assert {"aeroplane", "bicycle"} <= set(finished) and len(finished) < 20

    result = CliRunner().invoke(main, ["train", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    assert "class 1/20 aeroplane (own CNN): already trained, skipped" in result.output
    for name, mtime in finished.items():
        assert (models / f"{name}.keras").stat().st_mtime_ns == mtime, f"{name} was trained again"
    run = check_complete(out, units=20)
    assert all(m.output_shape == (None, 1) for m in run.load_models())


def test_existing_run_needs_force(trained, synth_root):
    path = trained("multioutput")
    result = CliRunner().invoke(main, tiny_cli_args(synth_root, "multioutput", path))
    assert result.exit_code == 2 and "holds an earlier run (use --force" in result.output


def test_train_cli_errors(tmp_path, synth_root):
    runner = CliRunner()
    result = runner.invoke(main, ["train", str(tmp_path / "missing"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "dataset root does not exist" in result.output
    assert not (tmp_path / "r").exists()
    result = runner.invoke(main, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "config.json: missing" in result.output
    result = runner.invoke(main, tiny_cli_args(synth_root, "multioutput", tmp_path / "w", "--widths", "4,8"))
    assert result.exit_code == 2 and "--widths must be three integers" in result.output


@pytest.mark.parametrize("loss", ["weighted", "focal", "asl"])
def test_other_losses_train(synth_root, tmp_path, loss):
    result = CliRunner().invoke(main, tiny_cli_args(synth_root, "multioutput", tmp_path / loss, "--loss", loss))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / loss / "config.json").read_text())["loss"] == loss


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_mirrored_strategy_on_two_logical_cpus(synth_root, tmp_path, ema):
    """MirroredStrategy over two logical CPU devices (what a 2-GPU machine would give), also with
    --ema, whose average is swapped into mirrored variables."""
    code = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from toolkit import train
from tests.helpers import tiny_config
metrics = train.start(tiny_config({str(synth_root)!r}, "multioutput", strategy="mirrored", ema={ema}),
                        {str(tmp_path / "m")!r})
print("replicas", tf.distribute.MirroredStrategy().num_replicas_in_sync, "mAP", metrics["mAP_area"])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "replicas 2" in proc.stdout
    check_complete(tmp_path / "m", units=1)
