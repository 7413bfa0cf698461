"""Recipes: every one resolves to options `mledge train` accepts; a two-stage recipe runs every stage
from one command, resumes after a SIGKILL in its second stage, and records recipe and overrides;
export without --quant takes the recipe's mode; the Python example runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mledge import recipe_run
from mledge.cli import main
from mledge.train_commands import train as train_command
from toolkit.recipes import RECIPES, Recipe, Stage

REPO = Path(__file__).parents[1]
TINY = ["--img-size", "32", "--widths", "4,8,16", "--epochs", "3"]
TWO_STAGES = Recipe("two-stages", 1, "a test: the study's CNN, then tuned from it",
                    (Stage("first", ("--arch", "multioutput", "--img-size", "100", "--epochs", "30")),
                     Stage("second", ("--arch", "multioutput", "--init", "{stage:first}", "--lr", "1e-4",
                                      "--patience", "0"))), "int8-float-last")


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_resolves_to_valid_training_options(name, synth_root, tmp_path):
    recipe = RECIPES[name]
    steps = recipe_run.plan(recipe, synth_root, tmp_path / "run", None, [])
    recipe_run.check_stages(steps, tmp_path / "run", train_command)
    assert [s["name"] for s in steps["stages"]] == [s.name for s in recipe.stages]
    for stage in steps["stages"]:
        assert "export" in stage or not any("{stage:" in a for a in stage["train"])
    for arch in ("independent", "shared", "multioutput"):
        if arch in recipe.archs:
            steps = recipe_run.plan(recipe, synth_root, tmp_path / "run", arch, [])
            recipe_run.check_stages(steps, tmp_path / "run", train_command)


def test_recipes_table_and_show():
    runner = CliRunner()
    table = runner.invoke(main, ["recipes"])
    assert table.exit_code == 0 and all(name in table.output for name in RECIPES)
    shown = runner.invoke(main, ["recipes", "show", "study-distilled"])
    assert shown.exit_code == 0 and "--teacher RUN/stages/teacher-int8" in shown.output
    assert "mledge weights import efficientnet-lite0" in shown.output


def test_a_recipe_refuses_what_it_cannot_do(synth_root, tmp_path):
    runner = CliRunner()
    args = ["train", str(synth_root), "--recipe", "study", "--out", str(tmp_path / "r")]
    result = runner.invoke(main, [*args, "--arch", "independent", "--epochs", "0"])
    assert result.exit_code == 2 and "--epochs" in result.output and "Traceback" not in result.output
    result = runner.invoke(main, ["train", str(synth_root), "--recipe", "edge-fast", "--arch", "shared", "--out",
                                  str(tmp_path / "r")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, "the run ended before the second stage checkpointed"
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.2)


def test_two_stages_run_resume_after_a_kill_and_export_in_the_recipes_mode(synth_root, tmp_path):
    run = tmp_path / "run"
    steps = recipe_run.plan(TWO_STAGES, synth_root, run, None, TINY)
    run.mkdir()
    (run / recipe_run.RECIPE_FILE).write_text(json.dumps(steps))  # what `train --recipe` writes first
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen([sys.executable, "-m", "mledge", "train", "--resume", str(run)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(run / "stages" / "second" / "checkpoints" / "model" / "state.json", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first_model = run / "stages" / "first" / "models" / "model.keras"
    stamp = first_model.stat().st_mtime_ns
    assert not (run / "metrics.json").exists()

    result = CliRunner().invoke(main, ["train", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    assert "stage 1/2 first finished earlier" in result.output
    assert first_model.stat().st_mtime_ns == stamp  # the first stage was not trained again
    second = json.loads((run / "stages" / "second" / "models" / "model.json").read_text())
    assert len(second["history"]) == 3
    recorded = json.loads((run / recipe_run.RECIPE_FILE).read_text())
    assert recorded["recipe"] == "two-stages" and recorded["overrides"] == TINY
    assert json.loads((run / "config.json").read_text())["init"] == str((run / "stages" / "first").resolve())
    assert (run / "metrics.json").read_bytes() == (run / "stages" / "second" / "metrics.json").read_bytes()

    exported = CliRunner().invoke(main, ["export", str(run), "--out", str(tmp_path / "bundle")])
    assert exported.exit_code == 0, exported.output
    assert "int8-float-last (no --quant: recipe two-stages)" in exported.output
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["quantization"] == "int8-float-last" and manifest["flip_average"] is False
    # A recipe that ships the test-time flip (edge-best-flip) has it built in unless --single-view says not.
    recorded["flip_average"] = True
    (run / recipe_run.RECIPE_FILE).write_text(json.dumps(recorded))
    for extra, flip in (([], True), (["--single-view"], False)):
        out = tmp_path / f"bundle-{flip}"
        exported = CliRunner().invoke(main, ["export", str(run), "--out", str(out), "--eval-images", "8", *extra])
        assert exported.exit_code == 0, exported.output
        assert json.loads((out / "manifest.json").read_text())["flip_average"] is flip

    final = CliRunner().invoke(main, ["train", "--final", str(run), "--out", str(tmp_path / "ship")])
    assert final.exit_code == 0, final.output
    assert json.loads((tmp_path / "ship" / "metrics.json").read_text())["final"] is True


def test_a_recipe_without_its_weights_names_the_import(synth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MLEDGE_CACHE", str(tmp_path / "empty"))
    result = CliRunner().invoke(main, ["train", str(synth_root), "--recipe", "edge-fast", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "mledge weights import efficientnet-lite0" in result.output
    assert not (tmp_path / "r").exists()


def test_a_recipe_from_the_command_line_records_its_overrides(synth_root, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", str(synth_root), "--recipe", "study-tips", "--out", str(out),
                                       *TINY, "--no-augment"])
    assert result.exit_code == 0, result.output
    recorded = json.loads((out / recipe_run.RECIPE_FILE).read_text())
    assert recorded["recipe"] == "study-tips" and recorded["version"] == RECIPES["study-tips"].version
    assert sorted(recorded["overrides"]) == sorted([*TINY, "--no-augment"])
    config = json.loads((out / "config.json").read_text())
    assert config["loss"] == "weighted" and config["model"]["img_size"] == 32 and config["epochs"] == 3


def test_the_python_example_runs(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "examples" / "recipe_api.py"), str(tmp_path), "--quick"],
                            cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bundle: int8-float-last" in result.stdout and result.stdout.count("000001.jpg") == 1
