"""The ``mledge`` command line. Heavy imports (TensorFlow, pandas) live inside the commands, so
``mledge edge ...`` runs on a board that has only numpy, Pillow and a TFLite interpreter."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from toolkit.errors import UserError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter; set 0 to see it

ARCH_CHOICES = ("independent", "shared", "multioutput")
LOSS_CHOICES = ("bce", "weighted", "focal", "asl")


class _Group(click.Group):
    """Turns user mistakes (UserError, a bundle or image error) into one line on stderr and exit 2."""

    def invoke(self, ctx):
        from edge.bundle import BundleError
        from edge.preprocess import ImageError

        try:
            return super().invoke(ctx)
        except (UserError, BundleError, ImageError) as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: finished epochs and models are kept (continue with --resume)", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="multilabel-edge")
def main() -> None:
    """multilabel-edge: multi-label image classification from Keras training to the edge.

    Train the study's three architectures (20 independent CNNs, a shared trunk with 20 heads, one
    multi-output CNN) on a VOC-layout dataset, export them to TFLite bundles in four quantizations,
    and compare them side by side on the device that will run them.
    """


# ---------------------------------------------------------------- data


@main.group()
def data() -> None:
    """Datasets in PASCAL VOC layout: synthesize, inspect, fetch."""


@data.command("synth")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--images", default=1000, show_default=True, help="Number of images to draw.")
@click.option("--size", default=128, show_default=True, help="Side of the square images in pixels.")
@click.option("--seed", default=0, show_default=True, help="Random seed: the same seed gives the same files.")
@click.option("--force", is_flag=True, help="Replace OUT if it already holds files.")
def data_synth(out: str, images: int, size: int, seed: int, force: bool) -> None:
    """Write a synthetic VOC 2007-like dataset (train/val/test, Annotations, 20 classes) to OUT."""
    from toolkit.data.synth import make_synthetic_voc

    voc = make_synthetic_voc(out, images=images, size=size, seed=seed, force=force)
    click.echo(f"wrote {images} images to {voc}")


@data.command("stats")
@click.argument("root", type=click.Path())
@click.option("--split", default="trainval", show_default=True, help="Split name (train, val, trainval, test).")
@click.option("--labels", type=click.Choice(["imagesets", "annotations"]), default="imagesets",
              show_default=True, help="Label source: ImageSets/Main class files or Annotations/*.xml.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output format.")
def data_stats(root: str, split: str, labels: str, fmt: str) -> None:
    """The study's statistics table for one split of the dataset at ROOT (VOCdevkit or VOC2007)."""
    from toolkit.data.stats import compute_stats, format_stats
    from toolkit.data.voc import load_split

    click.echo(format_stats(compute_stats(load_split(root, split, labels=labels)), fmt))


@data.command("fetch")
@click.argument("name", type=click.Choice(["voc2007"]))
@click.option("--dest", default="data/voc2007", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the archives and the unpacked VOCdevkit.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the server.")
def data_fetch(name: str, dest: str, timeout: float) -> None:
    """Download the official VOC 2007 archives (md5 verified) and unpack them into DEST."""
    from toolkit.data.fetch import fetch_voc2007

    click.echo(f"VOC 2007 ready at {fetch_voc2007(dest, timeout=timeout)}")


# ---------------------------------------------------------------- train / evaluate / compare


@main.command()
@click.argument("root", required=False, type=click.Path())
@click.option("--arch", type=click.Choice(ARCH_CHOICES), default="multioutput", show_default=True,
              help="independent: 20 CNNs; shared: frozen shared trunk + 20 heads; multioutput: one CNN.")
@click.option("--out", type=click.Path(file_okay=False), help="RUN folder to create (models, logs, metrics).")
@click.option("--resume", "resume_run", type=click.Path(file_okay=False),
              help="Continue the interrupted RUN from its last finished epoch; finished models are kept.")
@click.option("--force", is_flag=True, help="Replace --out if it already holds a run.")
@click.option("--split", default="train", show_default=True, help="Training split.")
@click.option("--val-split", default="val", show_default=True,
              help="Split for checkpoint selection, early stopping and per-class thresholds.")
@click.option("--labels", type=click.Choice(["imagesets", "annotations"]), default="imagesets", show_default=True,
              help="Label source.")
@click.option("--difficult", type=click.Choice(["ignore", "positive", "negative"]), default="ignore",
              show_default=True, help="Difficult-only labels: masked out of the loss, or taken as 1 or 0.")
@click.option("--on-bad-image", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="An unreadable image stops loading, or is skipped with a warning.")
@click.option("--epochs", default=30, show_default=True, help="Maximum epochs (per model).")
@click.option("--patience", default=5, show_default=True, help="Stop after this many epochs without a "
              "better val mAP (0: never stop early); the best epoch is kept.")
@click.option("--img-size", default=100, show_default=True, help="Input side in pixels.")
@click.option("--widths", default="32,64,512", show_default=True,
              help="Conv block 1, conv block 2 and dense widths (small ones for tests).")
@click.option("--batch", default=32, show_default=True, help="Batch size.")
@click.option("--lr", default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--loss", type=click.Choice(LOSS_CHOICES), default="bce", show_default=True,
              help="bce (the study's), weighted (per-class positive weights), focal, asl (asymmetric).")
@click.option("--no-augment", is_flag=True, help="Turn off flip/zoom/shear augmentation.")
@click.option("--zoom", default=0.2, show_default=True, help="Random zoom range (the study's 0.2).")
@click.option("--shear", default=0.2, show_default=True, help="Random shear in degrees (the study's 0.2).")
@click.option("--trunk", type=click.Choice(["first-class", "multitask"]), default="first-class", show_default=True,
              help="shared only: the trunk of the first class's CNN (the study), or one trained on all labels.")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option("--mixed-precision", is_flag=True, help="float16 compute on a GPU (weights stay float32).")
@click.option("--strategy", type=click.Choice(["default", "mirrored"]), default="default", show_default=True,
              help="mirrored: tf.distribute.MirroredStrategy over this machine's GPUs.")
def train(root, arch, out, resume_run, force, split, val_split, labels, difficult, on_bad_image, epochs, patience,
          img_size, widths, batch, lr, loss, no_augment, zoom, shear, trunk, seed, mixed_precision, strategy):
    """Train an architecture on the dataset at ROOT into the RUN folder --out."""
    from toolkit import train as training
    from toolkit.config import TrainConfig
    from toolkit.data.pipeline import Augment
    from toolkit.models import CNNConfig

    if resume_run:
        metrics = training.resume(resume_run)
        out = resume_run
    else:
        if not root or not out:
            raise UserError("train needs ROOT and --out (or --resume RUN)")
        try:
            c1, c2, d = (int(v) for v in widths.split(","))
        except ValueError:
            raise UserError(f"--widths must be three integers like 32,64,512, not {widths!r}") from None
        cfg = TrainConfig(
            root=str(Path(root).resolve()), arch=arch, split=split, val_split=val_split, labels=labels,
            difficult=difficult, on_bad_image=on_bad_image, model=CNNConfig(img_size, c1, c2, d),
            augment=Augment(flip=not no_augment, zoom=0.0 if no_augment else zoom,
                            shear_degrees=0.0 if no_augment else shear),
            epochs=epochs, batch=batch, lr=lr, loss=loss, seed=seed, patience=patience, trunk=trunk,
            mixed_precision=mixed_precision, strategy=strategy,
        )
        metrics = training.start(cfg, out, force=force)
    click.echo(f"{out}: val mAP {100 * metrics['mAP_area']:.2f} (area) / {100 * metrics['mAP_voc07']:.2f} (VOC07 "
               f"11-point), CF1 {100 * metrics['at_thresholds']['CF1']:.2f}, OF1 "
               f"{100 * metrics['at_thresholds']['OF1']:.2f} at per-class thresholds")


@main.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.argument("root", required=False, type=click.Path())
@click.option("--split", default="val", show_default=True, help="Split to evaluate on.")
@click.option("--threshold", type=float, help="One threshold for every class instead of RUN/thresholds.json.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format.")
@click.option("--plots", type=click.Path(file_okay=False), help="Write PR curves and an AP bar chart (PNG) here.")
def evaluate(run, root, split, threshold, fmt, plots):
    """Evaluate a finished RUN on a split of ROOT (default: the run's own dataset)."""
    from toolkit.evaluate import evaluate_run, format_report

    report = evaluate_run(run, root, split, threshold, plots=plots)
    click.echo(json.dumps(report, indent=2) if fmt == "json" else format_report(report))


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="Output format.")
def compare(runs, fmt):
    """The study's comparison table for several RUNs: models, parameters, bytes, time, mAP, F1, latency."""
    from toolkit.evaluate import compare_runs, format_rows

    rows = compare_runs(runs)
    click.echo(json.dumps(rows, indent=2) if fmt == "json" else format_rows(rows, fmt))
