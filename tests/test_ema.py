"""--ema: val scores the moving average of the weights and the run keeps it, while the raw weights
train on and are what --resume continues from."""

from __future__ import annotations

import json

import keras
import numpy as np
from click.testing import CliRunner

from mledge.cli import main
from tests.helpers import tiny_cli_args, tiny_config
from tests.test_train import check_complete
from toolkit.models import build_cnn
from toolkit.run import Run
from toolkit.train.checkpoint import Checkpoint, UnitState
from toolkit.train.ema import averaged_weights
from toolkit.train.loop import optimizer


def trained_model(root, ema: float) -> tuple[keras.Model, list[np.ndarray]]:
    """A tiny CNN trained 16 steps on random pixels; returns it and its weights before the steps.
    (Steps, not fit: at its end fit overwrites the weights with the average.)"""
    cfg = tiny_config(root, "multioutput", ema=ema, lr=1e-2)
    model = build_cnn(cfg.model, 3, "model")
    start = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=optimizer(cfg, 64), loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (64, 32, 32, 3)).astype("float32")
    y = (rng.uniform(size=(64, 3)) < 0.3).astype("float32")
    for step in range(16):
        batch = slice(step % 8 * 8, step % 8 * 8 + 8)
        model.train_on_batch(x[batch], y[batch])
    return model, start


def distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(sum(np.abs(x - y).sum() for x, y in zip(a, b, strict=True)))


def test_the_average_is_scored_and_kept_and_the_raw_weights_resume(synth_root, tmp_path):
    model, start = trained_model(synth_root, ema=0.9)
    raw = model.get_weights()
    state = UnitState()
    assert state.end_epoch(0.5, 0.5, 0.1, 1.0, patience=0)
    ckpt = Checkpoint(tmp_path / "ckpt")
    with averaged_weights(model):
        averaged = model.get_weights()
        ckpt.save_best(model, state)
    ckpt.save_last(model, state)

    assert distance(model.get_weights(), raw) == 0  # the raw weights are back
    # the average trails the raw weights: closer to where training started, but it moved
    assert 0 < distance(averaged, start) < distance(raw, start)
    kept = build_cnn(tiny_config(synth_root, "multioutput").model, 3, "model")
    kept.load_weights(ckpt.best)
    assert distance(kept.get_weights(), averaged) == 0  # the best epoch keeps the average
    resumed, _ = ckpt.load()
    assert distance(resumed.get_weights(), raw) == 0  # resume trains on from the raw weights ...
    with averaged_weights(resumed):  # ... and the average goes on from where it was
        assert distance(resumed.get_weights(), averaged) == 0


def test_without_ema_nothing_is_swapped(synth_root):
    model, _ = trained_model(synth_root, ema=0.0)
    raw = model.get_weights()
    with averaged_weights(model):
        assert distance(model.get_weights(), raw) == 0


def test_a_run_with_ema_records_it_and_scores_its_kept_model(synth_root, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, tiny_cli_args(synth_root, "multioutput", out, "--ema", "0.9", "--epochs", "2"))
    assert result.exit_code == 0, result.output
    run = check_complete(out, units=1)
    assert run.config().ema == 0.9 and run.record("model")["settings"]["ema"] == 0.9
    # metrics.json scores the saved model on val: the weights val scored during training (the average)
    metrics = json.loads((out / "metrics.json").read_text())
    assert abs(metrics["mAP_area"] - Run(out).record("model")["val_map"]) < 0.02


def test_ema_is_refused_where_it_would_not_be_scored(synth_root, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, tiny_cli_args(synth_root, "independent", tmp_path / "a", "--ema", "0.9"))
    assert result.exit_code == 2 and "--ema: an independent run averages its models one at a time: add --stack 1" \
        in result.output, result.output
    result = runner.invoke(main, tiny_cli_args(synth_root, "multioutput", tmp_path / "b", "--ema", "1"))
    assert result.exit_code == 2 and "--ema" in result.output, result.output
