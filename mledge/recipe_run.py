"""``mledge train DATA --recipe NAME --out RUN``: every stage of a recipe as one command.

    RUN/recipe.json       the recipe, its version, the data, the --arch asked, the overrides and each
                          stage's resolved options: what --resume follows
    RUN/stages/NAME/      each stage's own RUN (or, for an export stage, its bundle), kept
    RUN/config.json ...   the last stage's files, hard-linked: RUN is a run like any other (evaluate,
                          export, report, --final)

Each stage runs as its own ``mledge train`` process (a fresh TensorFlow, its own precision policy):
a kill loses at most the epoch in progress, and ``mledge train --resume RUN`` skips the finished
stages and resumes the one that was cut short at its last epoch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from toolkit.atomic import write_json
from toolkit.errors import UserError
from toolkit.outputs import MARKER, check_output_folder, drop_set_aside, mark, set_aside
from toolkit.progress import is_progress
from toolkit.recipes import DEFAULT_CALIBRATION, Recipe, get, stage_args

RECIPE_FILE = "recipe.json"
NOT_PROMOTED = {MARKER, RECIPE_FILE, "stages", "checkpoints", "teacher", "jobs"}


def plan(recipe: Recipe, data: Path, out: Path, arch: str | None, overrides: list[str]) -> dict:
    folders = {s.name: (out / "stages" / s.name).resolve() for s in recipe.stages}
    stages = []
    for stage in recipe.stages:
        if stage.export:
            stages.append({"name": stage.name, "export": stage.export})
        else:
            stages.append({"name": stage.name, "train": [*stage_args(recipe, stage, arch, folders), *overrides]})
    return {"recipe": recipe.name, "version": recipe.version, "purpose": recipe.purpose, "quant": recipe.quant,
            "calib_images": recipe.calib_images, "flip_average": recipe.flip_average,
            "data": str(data.resolve()), "arch": arch, "overrides": overrides, "stages": stages}


def check_stages(steps: dict, out: Path, train_command: click.Command) -> None:
    """Every train stage's options, overrides included, parsed as `mledge train` would: a bad value is
    one line before any stage starts. (An earlier stage's folder, not there yet, stands in as the data's.)"""
    later = {str((out / "stages" / stage["name"]).resolve()) for stage in steps["stages"]}
    for stage in steps["stages"]:
        if "train" in stage:
            args = [steps["data"] if a in later else a for a in stage["train"]]
            try:
                train_command.make_context("train", [steps["data"], "--out", "unused", *args])
            except click.UsageError as err:
                raise UserError(f"--recipe {steps['recipe']}, stage {stage['name']}: {err.format_message()}") from None


def start(recipe_name: str, data: str, out: str, arch: str | None, overrides: list[str], force: bool,
          train_command: click.Command) -> dict:
    from toolkit.backbones.weights import require_weights

    recipe, out_path = get(recipe_name), Path(out)
    for backbone in recipe.weights:
        require_weights(backbone)  # one line naming the import command
    steps = plan(recipe, Path(data), out_path, arch, overrides)
    check_stages(steps, out_path, train_command)
    if check_output_folder(out_path, "run", force, (data,)):
        click.echo(f"{out_path}: the earlier run is kept in {set_aside(out_path)} until this one is finished")
    out_path.mkdir(parents=True, exist_ok=True)
    mark(out_path, "run")
    write_json(out_path / RECIPE_FILE, steps)
    return run_stages(out_path)


def is_recipe_run(run: str | Path) -> bool:
    return (Path(run) / RECIPE_FILE).is_file()


@dataclass(frozen=True)
class RecipeExport:
    """What `mledge export RUN` does when not told: the run's recipe's choices, and why."""

    quant: str
    calib_images: int
    flip_average: bool
    why: str

    def fill(self, quant: str | None, calib_images: int | None, flip_average: bool | None) -> tuple[str, int, bool]:
        """The options asked, the recipe's where one was not given."""
        return (self.quant if quant is None else quant, self.calib_images if calib_images is None else calib_images,
                self.flip_average if flip_average is None else flip_average)


def recipe_export(run: str | Path) -> RecipeExport:
    if not is_recipe_run(run):
        return RecipeExport("float32", DEFAULT_CALIBRATION, False, "a run without a recipe")
    steps = json.loads((Path(run) / RECIPE_FILE).read_text())
    return RecipeExport(steps["quant"], steps.get("calib_images", DEFAULT_CALIBRATION),
                        steps.get("flip_average", False), f"recipe {steps['recipe']}")


def run_stages(out: Path) -> dict:
    """Each stage not finished yet, in order; then the last one's files become RUN's."""
    steps = json.loads((out / RECIPE_FILE).read_text())
    previous = None
    for number, stage in enumerate(steps["stages"], 1):
        folder = out / "stages" / stage["name"]
        what = f"stage {number}/{len(steps['stages'])} {stage['name']}"
        if "export" in stage:
            if not (folder / "manifest.json").is_file():
                _mledge(out, what, ["export", str(previous), "--quant", stage["export"], "--out", str(folder),
                                    "--force"])
        elif (folder / "metrics.json").is_file():
            click.echo(f"{out}: {what} finished earlier")
        elif (folder / "config.json").is_file():
            _mledge(out, what, ["train", "--resume", str(folder)])
        else:  # new, or a start killed before its config.json: the folder is this run's own
            _mledge(out, what, ["train", steps["data"], "--out", str(folder), *stage["train"], "--force"])
        previous = folder
    promote(previous, out)
    drop_set_aside(out)
    return json.loads((out / "metrics.json").read_text())


def _mledge(out: Path, what: str, args: list[str]) -> None:
    click.echo(f"{out}: {what}: mledge {' '.join(args)}", err=True)
    errors = []
    with subprocess.Popen([sys.executable, "-m", "mledge", *args], stderr=subprocess.PIPE, text=True) as proc:
        for line in proc.stderr:  # as it comes: a long stage's progress is read while it runs
            line = line.rstrip("\n")
            if line.startswith(("error:", "warning:")):
                errors.append(line)
            if line.startswith("warning:") or is_progress(line):
                click.echo(line, err=True)
    if proc.returncode != 0:
        said = next((line.removeprefix("error: ") for line in errors if line.startswith("error:")),
                    f"exit {proc.returncode}")
        raise UserError(f"{out}: {what} stopped: {said}; continue with: mledge train --resume {out}")


def promote(stage: Path, out: Path) -> None:
    """Hard-link the finished stage's files into RUN (metrics.json last: it marks RUN finished)."""
    files = sorted(p for p in stage.rglob("*") if p.is_file() and p.relative_to(stage).parts[0] not in NOT_PROMOTED)
    files.sort(key=lambda p: p.name == "metrics.json")
    for path in files:
        target = out / path.relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        os.link(path, tmp)
        os.replace(tmp, target)
