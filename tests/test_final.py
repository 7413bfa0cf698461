"""--final: the val run's settings retrained on train + val for the epochs the val run kept, with its
thresholds; the final run claims no val mAP, and what would score it on data it saw says so."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mledge.cli import main
from tests.helpers import tiny_config
from toolkit import train
from toolkit.run import Run

CLASSES = ["aeroplane", "bicycle", "bird"]


@pytest.fixture(scope="module")
def val_run(tmp_path_factory, synth_root):
    out = tmp_path_factory.mktemp("val-run")
    train.start(tiny_config(synth_root, "independent", classes=CLASSES, epochs=3, lr=3e-3, schedule="cosine"), out)
    return out


@pytest.fixture(scope="module")
def final_run(tmp_path_factory, val_run):
    out = tmp_path_factory.mktemp("final") / "run"
    result = CliRunner().invoke(main, ["train", "--final", str(val_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "final model, trained on train + val (90 images)" in result.output and "no held-out mAP" in result.output
    return out


def test_final_run_trains_each_model_for_its_kept_epochs_on_train_and_val(val_run, final_run):
    source, final = Run(val_run), Run(final_run)
    cfg = final.require_complete()
    assert cfg.final.from_run == str(val_run.resolve())
    for unit in CLASSES:
        kept = source.record(unit)["best_epoch"]
        record = final.record(unit)
        assert record["epochs"] == record["best_epoch"] == kept == cfg.final.epochs[unit]
        assert record["train_images"] == 90 and record["val_map"] is None
        assert [h["val_map"] for h in record["history"]] == [None] * kept
        ours, theirs = (r.load_models()[CLASSES.index(unit)] for r in (final, source))
        assert not np.allclose(ours.get_layer("logits").get_weights()[0], theirs.get_layer("logits").get_weights()[0])
    metrics = json.loads((final_run / "metrics.json").read_text())
    assert metrics["final"] and metrics["trained_on"] == ["train", "val"] and "mAP_area" not in metrics
    assert metrics["from_run_mAP_area"] == json.loads((val_run / "metrics.json").read_text())["mAP_area"]
    chosen = json.loads((val_run / "thresholds.json").read_text())["thresholds"]
    assert json.loads((final_run / "thresholds.json").read_text())["thresholds"] == chosen == metrics["thresholds"]
    rows = (final_run / "history.csv").read_text().splitlines()[1:]
    assert len(rows) == sum(cfg.final.epochs.values()) and all(",,," in row for row in rows)  # no val columns


def test_final_run_is_not_scored_on_what_it_saw(final_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", str(final_run)])
    assert result.exit_code == 2 and "trained on train and val" in result.output
    result = runner.invoke(main, ["evaluate", str(final_run), "--split", "test", "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.output)["split"] == "test"
    result = runner.invoke(main, ["compare", str(final_run), "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.output)[0]["mAP_area"] is None
    result = runner.invoke(main, ["report", str(final_run), "--out", str(tmp_path / "report.html")])
    assert result.exit_code == 2 and "a final run (trained on val too)" in result.output
    result = runner.invoke(main, ["export", str(final_run), "--out", str(tmp_path / "bundle")])
    assert result.exit_code == 0 and "the drop is the quantization's" in result.output
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["evaluation"]["seen_in_training"] and manifest["thresholds"] == json.loads(
        (final_run / "thresholds.json").read_text())["thresholds"]


def test_final_refuses_in_one_line(val_run, final_run, synth_root, tmp_path):
    runner = CliRunner()
    cases = [
        (["train", "--final", str(final_run), "--out", str(tmp_path / "a")], "already a final run"),
        (["train", str(synth_root), "--final", str(val_run), "--out", str(tmp_path / "b")], "takes no ROOT"),
        (["train", "--final", str(tmp_path), "--out", str(tmp_path / "c")], "config.json: missing"),
        (["classes", "retrain", str(final_run), "bird", "--epochs", "2"], "takes its epochs from its val run"),
    ]
    for args, message in cases:
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and message in result.output and len(result.output.splitlines()) == 1, args
    assert not any((tmp_path / name).exists() for name in "abc")
