"""``mledge data``: synthesize, inspect and fetch datasets."""

from __future__ import annotations

from pathlib import Path

import click

from mledge.params import SECONDS, SEED, OutputFolder, dataset_options


@click.group()
def data() -> None:
    """Datasets (VOC, CSV or COCO layout): synthesize, inspect, convert, split, fetch."""


@data.command("synth")
@click.argument("out", type=OutputFolder())
@click.option("--images", default=1000, show_default=True, type=click.IntRange(10, 1_000_000),
              help="Number of images to draw.")
@click.option("--size", default=128, show_default=True, type=click.IntRange(16, 4096),
              help="Side of the square images in pixels.")
@click.option("--seed", default=0, show_default=True, type=SEED,
              help="Random seed: the same seed gives the same files.")
@click.option("--format", "layout", type=click.Choice(["voc", "csv", "coco"]), default="voc", show_default=True,
              help="The layout to write: the same photos and labels in each (csv and coco: see data convert).")
@click.option("--force", is_flag=True,
              help="Replace OUT if it holds an earlier dataset of mledge's (never a folder holding other files).")
def data_synth(out: str, images: int, size: int, seed: int, layout: str, force: bool) -> None:
    """Write a synthetic VOC 2007-like dataset (train/val/test, 20 classes) to OUT."""
    import shutil
    import tempfile

    from toolkit.data.convert import convert
    from toolkit.data.synth import make_synthetic_voc
    from toolkit.outputs import check_output_folder

    check_output_folder(out, "dataset", force)  # before any image is drawn
    if layout == "voc":
        written = make_synthetic_voc(out, images=images, size=size, seed=seed, force=force)
    else:
        parent = Path(out).absolute().parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".synth-", dir=parent))
        try:
            convert(make_synthetic_voc(tmp / "voc", images=images, size=size, seed=seed), out, layout, force=force)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # the hard-linked photos keep their data
        written = Path(out)
    click.echo(f"wrote {images} images to {written} ({layout})")


@data.command("convert")
@click.argument("source", type=click.Path(exists=True))
@click.argument("dest", type=OutputFolder())
@click.option("--to", type=click.Choice(["csv", "coco"]), required=True, help="The layout to write.")
@click.option("--force", is_flag=True,
              help="Replace DEST if it holds an earlier dataset of mledge's (never a folder holding other files).")
def data_convert(source: str, dest: str, to: str, force: bool) -> None:
    """Every split of the dataset SOURCE (VOC, CSV or COCO) written to DEST in another layout.

    Photos are hard-linked where the disk allows (no second copy), else copied. Unknown labels
    (VOC's difficult, a CSV's -1) stay unknown: -1 in CSV, a crowd annotation in COCO.
    """
    from toolkit.data.convert import convert

    splits = convert(source, dest, to, force=force)
    sizes = ", ".join(f"{name} {len(part.paths)}" for name, part in splits.items())
    click.echo(f"wrote {dest} ({to}): {sizes} images, {len(next(iter(splits.values())).classes)} classes")


@data.command("split")
@click.argument("data_root", metavar="DATA", type=click.Path(exists=True))
@click.option("--out", required=True, type=OutputFolder(), help="The new dataset (train and val splits).")
@click.option("--split", "source_split", default="train", show_default=True,
              help="The split of DATA to divide (e.g. train, or all when a tool wrote only one).")
@click.option("--val-fraction", default=0.2, show_default=True, type=click.FloatRange(0, 1, min_open=True,
              max_open=True), help="Share of the images for val, in (0, 1).")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Random seed: the same seed, the same split.")
@click.option("--to", type=click.Choice(["csv", "coco"]), default="csv", show_default=True, help="The layout to write.")
@click.option("--force", is_flag=True,
              help="Replace --out if it holds an earlier dataset of mledge's (never a folder holding other files).")
def data_split(data_root, out, source_split, val_fraction, seed, to, force):
    """A train/val split of DATA by iterative stratification (Sechidis et al. 2011): each class's
    positives are divided in the proportion asked, rare classes first."""
    import numpy as np

    from edge.text_table import format_rows
    from toolkit.data.convert import Labelled, read_dataset, write_dataset
    from toolkit.data.split import iterative_stratification
    from toolkit.outputs import check_output_folder

    check_output_folder(out, "dataset", force, (Path(data_root),))  # before the photos are read
    part = read_dataset(data_root, [source_split])[source_split]
    subset = iterative_stratification(part.raw == 1, [1 - val_fraction, val_fraction], seed)
    splits = {name: Labelled([p for p, s in zip(part.paths, subset) if s == k], part.raw[subset == k], part.classes)
              for k, name in enumerate(("train", "val"))}
    write_dataset(splits, out, to, force, (Path(data_root),))
    rows = [{"class": c, "train": int((splits["train"].raw[:, k] == 1).sum()),
             "val": int((splits["val"].raw[:, k] == 1).sum()),
             "val_share": round(float(np.mean(subset[part.raw[:, k] == 1] == 1)), 3) if (part.raw[:, k] == 1).any()
             else None} for k, c in enumerate(part.classes)]
    click.echo(format_rows(rows))
    click.echo(f"wrote {out} ({to}): train {len(splits['train'].paths)}, val {len(splits['val'].paths)} images")


@data.command("stats")
@click.argument("root", type=click.Path())
@click.option("--split", default="trainval", show_default=True, help="Split name (train, val, trainval, test).")
@dataset_options("--data-format")
@click.option("--labels", type=click.Choice(["imagesets", "annotations"]), default="imagesets",
              show_default=True, help="VOC's label source: ImageSets/Main class files or Annotations/*.xml.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output format.")
def data_stats(root: str, split: str, data_format: str, classes_file: str | None, labels: str, fmt: str) -> None:
    """The study's statistics table for one split of the dataset at ROOT (VOC, CSV or COCO)."""
    from toolkit.data.dataset import load_split
    from toolkit.data.stats import compute_stats, format_stats

    data = load_split(root, split, fmt=data_format, classes_file=classes_file, labels=labels)
    click.echo(format_stats(compute_stats(data), fmt))


@data.command("fetch")
@click.argument("name", type=click.Choice(["voc2007"]))
@click.option("--dest", default="data/voc2007", show_default=True, type=OutputFolder(),
              help="Folder for the archives and the unpacked VOCdevkit.")
@click.option("--timeout", default=30.0, show_default=True, type=SECONDS, help="Seconds to wait for the server.")
@click.option("--mirror", help="Base URL holding the two archives (default: the VOC server).")
def data_fetch(name: str, dest: str, timeout: float, mirror: str | None) -> None:
    """Download the official VOC 2007 archives (md5 verified) and unpack them into DEST."""
    from toolkit.data.fetch import MIRROR, fetch_voc2007

    click.echo(f"VOC 2007 ready at {fetch_voc2007(dest, mirror=mirror or MIRROR, timeout=timeout)}")

