"""The toolkit from Python, for notebooks: train with a recipe, evaluate, export, load a bundle.

    from mledge import api

    metrics = api.train("photos", "runs/mine", recipe="edge-fast")
    api.evaluate("runs/mine")                         # val by default
    manifest = api.export("runs/mine", "bundles/mine")  # the recipe's quantization
    for result in api.load("bundles/mine").predict(["photo.jpg"]):
        print(result.labels)

Keyword options are `mledge train`'s, in Python spelling (``epochs=5``, ``img_size=64``,
``no_augment=True``): they override the recipe's and are recorded in RUN/recipe.json. Mistakes raise
``toolkit.errors.UserError`` with the same one-line message the command line prints.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.errors import UserError


def _options(options: dict) -> list[str]:
    from mledge.train_commands import as_args
    from mledge.train_commands import train as train_command

    known = {p.name: p for p in train_command.params}
    args = []
    for name, value in options.items():
        param = known.get(name)
        if param is None or not param.opts[0].startswith("--"):
            raise UserError(f"train has no option {name!r} (see mledge train --help)")
        args += as_args(param, value)
    return args


def train(data: str | Path, out: str | Path, recipe: str = "study", *, arch: str | None = None,
          force: bool = False, **options) -> dict:
    """Every stage of ``recipe`` on the dataset ``data`` into the RUN folder ``out``; its metrics."""
    from mledge import recipe_run
    from mledge.train_commands import train as train_command

    return recipe_run.start(recipe, str(data), str(out), arch, _options(options), force, train_command)


def resume(run: str | Path) -> dict:
    from mledge import recipe_run

    return recipe_run.run_stages(Path(run))


def evaluate(run: str | Path, split: str = "val", data: str | Path | None = None) -> dict:
    """Per-class AP and mAP of a finished RUN on ``split`` (of its own dataset, or of ``data``)."""
    from toolkit.evaluate import evaluate_run

    return evaluate_run(str(run), str(data) if data else None, split)


def export(run: str | Path, out: str | Path, quant: str | None = None, force: bool = False,
           flip_average: bool | None = None) -> dict:
    """A bundle of RUN in ``quant`` (default: its recipe's, calibrated as the recipe says); the manifest,
    with its check against Keras. ``flip_average``: the device averages each photo with its mirror
    (default: as the recipe says; no for a run without one)."""
    from export.convert import ExportOptions, export_run
    from mledge.recipe_run import recipe_export

    quant, calib_images, flip_average = recipe_export(run).fill(quant, None, flip_average)
    return export_run(run, out, ExportOptions(quant=quant, calib_images=calib_images, force=force,
                                              flip_average=flip_average))


def load(bundle: str | Path, threads: int | None = None):
    """The bundle's Predictor (edge runtime: no TensorFlow needed to run it)."""
    from edge import Predictor

    return Predictor(bundle, num_threads=threads)
