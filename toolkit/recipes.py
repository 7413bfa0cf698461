"""Recipes: the best the toolkit knows, by one word (``mledge train DATA --recipe NAME``).

A recipe is one or more stages, each the options of an ``mledge train`` (or the quantization of an
``mledge export`` of the stage before it), and the quantization its model ships in. Its figures
(val mAP, bundle bytes, ms a photo, training time, the machine) are never written here: they are
read from the records ``make bench-recipes`` commits to benchmarks/results/bench_recipes.jsonl.

In a stage's options, ``{stage:NAME}`` is the folder of an earlier stage of the same run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import UserError

RECORDS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "bench_recipes.jsonl"


DEFAULT_CALIBRATION = 300  # photos an int8 export calibrates on
# An EfficientNet-Lite at 320 to 448 px calibrated on 100 photos scores as on 300 or 1,000, in half the
# time (make bench-pipeline PIPELINE_CALIBRATION=100,1000; docs/benchmarks.md).
PRETRAINED_CALIBRATION = 100


@dataclass(frozen=True)
class Stage:
    name: str
    train: tuple[str, ...] = ()  # mledge train options
    export: str | None = None  # or: the quantization of a bundle of the stage before (a teacher, say)


@dataclass(frozen=True)
class Recipe:
    name: str
    version: int  # raised whenever a stage's options change: a run records the version it followed
    purpose: str
    stages: tuple[Stage, ...]
    quant: str  # what `mledge export RUN` uses without --quant
    archs: tuple[str, ...] = ("multioutput",)  # --arch values it combines with (the first is its own)
    weights: tuple[str, ...] = ()  # pretrained backbones it needs imported
    calib_images: int = DEFAULT_CALIBRATION  # what `mledge export RUN` calibrates on without --calib-images
    flip_average: bool = False  # `mledge export RUN` builds the test-time flip in (two invocations a photo)

    @property
    def train_stages(self) -> list[Stage]:
        return [s for s in self.stages if s.export is None]

    @property
    def invocations(self) -> int:
        """Model runs a photo costs on the device."""
        return 2 if self.flip_average else 1


# bench-train's best from-scratch recipe: more updates (batch 16, 100 epochs of cosine decay), asl,
# and the augmentation a small CNN needs on a few thousand photos.
_BEST_AUGMENT = ("--zoom", "0.3", "--translate", "0.15", "--jitter", "0.2")
_FINE_TUNE = ("--finetune-blocks", "2", "--head", "csra", "--lr", "3e-4", "--schedule", "cosine", "--epochs", "20")


# edge-fast-taught's student works at edge-fast's size: the taught Lite0 at 288 and 256 px loses more
# than the teacher gives (make bench-pretrained PRETRAINED_RUNS=lite0-256-ft2-csra-distilled,...;
# the tiers table in docs/pretrained.md).
FAST_TAUGHT_SIZE = 320


def _lite(k: int, size: int, patience: int) -> tuple[str, ...]:
    return ("--arch", "multioutput", "--backbone", f"efficientnet-lite{k}", "--img-size", str(size), *_FINE_TUNE,
            "--patience", str(patience))


def _student(epochs: int, lr: str, seed: int, views: int = 64, *extra: str) -> tuple[str, ...]:
    """A distillation stage of the study's CNN taught by the int8 teacher (weight 0.7, temperature 2)."""
    return ("--arch", "multioutput", "--img-size", "100", "--epochs", str(epochs), "--patience", "0", "--lr", lr,
            "--batch", "32", "--schedule", "cosine", "--seed", str(seed), *_BEST_AUGMENT,
            "--teacher", "{stage:teacher-int8}", "--distill-weight", "0.7", "--temperature", "2",
            "--teacher-views", str(views), *extra)


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("study", 1, "the study's own recipe: its CNN at 100 px, BCE, Adam 1e-3, flips and zoom, 30 epochs",
           (Stage("train", ("--arch", "multioutput", "--img-size", "100", "--epochs", "30", "--patience", "8")),),
           "int8-float-last", archs=("multioutput", "independent", "shared")),
    Recipe("study-tips", 1, "the study's tips (its 8.5): class weights, rotation 20, shifts 0.2, zoom 0.15",
           (Stage("train", ("--arch", "multioutput", "--img-size", "100", "--epochs", "30", "--patience", "8",
                            "--loss", "weighted", "--rotate", "20", "--translate", "0.2", "--zoom", "0.15",
                            "--shear", "0")),),
           "int8-float-last", archs=("multioutput", "independent", "shared")),
    Recipe("study-best", 1, "the best from-scratch CNN: batch 16, 100 epochs of cosine decay, asl, augmentation",
           (Stage("train", ("--arch", "multioutput", "--img-size", "100", "--epochs", "100", "--patience", "20",
                            "--lr", "5e-4", "--batch", "16", "--schedule", "cosine", "--loss", "asl",
                            *_BEST_AUGMENT)),),
           "int8-float-last", archs=("multioutput", "independent", "shared")),
    Recipe("study-distilled", 1, "the study's CNN taught by EfficientNet-Lite0: 300 + 60 + 60 epochs on fresh views",
           (Stage("teacher", ("--arch", "multioutput", "--backbone", "efficientnet-lite0", "--img-size", "224",
                              "--finetune-blocks", "2", "--epochs", "15", "--patience", "6", "--lr", "3e-4",
                              "--schedule", "cosine")),
            Stage("teacher-int8", export="int8"),
            Stage("student", _student(300, "7e-4", 0)),
            Stage("fresh", _student(60, "3e-4", 1, 64, "--ema", "0.998", "--init", "{stage:student}")),
            Stage("fresh2", _student(60, "3e-4", 2, 64, "--ema", "0.998", "--init", "{stage:fresh}"))),
           "int8-float-last", weights=("efficientnet-lite0",)),
    Recipe("edge-fast", 1, "Pi 4-class boards: EfficientNet-Lite0 at 320 px, csra head, last 2 blocks tuned",
           (Stage("train", _lite(0, 320, 8)),), "int8-float-last", archs=("multioutput", "independent"),
           weights=("efficientnet-lite0",), calib_images=PRETRAINED_CALIBRATION),
    Recipe("edge-fast-taught", 1, "edge-fast's model and cost, taught by an edge-best model (asl) it trains first",
           (Stage("teacher", (*_lite(2, 448, 4), "--loss", "asl")),
            Stage("teacher-bundle", export="int8-float-last"),
            Stage("student", (*_lite(0, FAST_TAUGHT_SIZE, 8), "--teacher", "{stage:teacher-bundle}",
                              "--distill-weight", "0.7", "--temperature", "2"))),
           "int8-float-last", weights=("efficientnet-lite0", "efficientnet-lite2"),
           calib_images=PRETRAINED_CALIBRATION),
    Recipe("edge-balanced", 1, "Pi 5-class boards: EfficientNet-Lite2 at 384 px, csra head, last 2 blocks tuned",
           (Stage("train", _lite(2, 384, 4)),), "int8-float-last", archs=("multioutput", "independent"),
           weights=("efficientnet-lite2",), calib_images=PRETRAINED_CALIBRATION),
    Recipe("edge-best", 1, "the most accurate: EfficientNet-Lite2 at 448 px, csra head, last 2 blocks tuned",
           (Stage("train", _lite(2, 448, 4)),), "int8-float-last", archs=("multioutput", "independent"),
           weights=("efficientnet-lite2",), calib_images=PRETRAINED_CALIBRATION),
    Recipe("edge-best-flip", 1, "the best tier: edge-best with label smoothing and 4 cached views of each photo, "
           "each photo averaged with its mirror on the device (twice edge-best's time)",
           (Stage("train", (*_lite(2, 448, 4), "--label-smoothing", "0.1", "--cache-views", "4")),),
           "int8-float-last", archs=("multioutput", "independent"), weights=("efficientnet-lite2",),
           calib_images=PRETRAINED_CALIBRATION, flip_average=True),
)}


def get(name: str) -> Recipe:
    if name not in RECIPES:
        raise UserError(f"--recipe must be one of {', '.join(RECIPES)}, not {name!r} (see mledge recipes)")
    return RECIPES[name]


def stage_args(recipe: Recipe, stage: Stage, arch: str | None, folders: dict[str, Path]) -> list[str]:
    """The stage's train options, ``{stage:NAME}`` filled in and --arch replaced when one is asked."""
    if arch and arch not in recipe.archs:
        raise UserError(f"--recipe {recipe.name} trains {' or '.join(recipe.archs)}, not --arch {arch}")
    args = list(stage.train)
    for name, folder in folders.items():
        args = [a.replace(f"{{stage:{name}}}", str(folder)) for a in args]
    if arch and "--arch" in args:
        args[args.index("--arch") + 1] = arch
    return args


def figures(name: str) -> dict | None:
    """The latest committed bench-recipes record of the recipe: its figures and its machine."""
    if not RECORDS.is_file():
        return None
    records = [json.loads(line) for line in RECORDS.read_text().splitlines() if line.strip()]
    mine = sorted((r for r in records if r["row"] == name), key=lambda r: r["date"])
    return mine[-1] if mine else None
