"""``mledge data``: synthesize, inspect and fetch datasets."""

from __future__ import annotations

import click

from mledge.params import SECONDS, SEED, OutputFolder


@click.group()
def data() -> None:
    """Datasets in PASCAL VOC layout: synthesize, inspect, fetch."""


@data.command("synth")
@click.argument("out", type=OutputFolder())
@click.option("--images", default=1000, show_default=True, type=click.IntRange(10, 1_000_000),
              help="Number of images to draw.")
@click.option("--size", default=128, show_default=True, type=click.IntRange(16, 4096),
              help="Side of the square images in pixels.")
@click.option("--seed", default=0, show_default=True, type=SEED,
              help="Random seed: the same seed gives the same files.")
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
@click.option("--dest", default="data/voc2007", show_default=True, type=OutputFolder(),
              help="Folder for the archives and the unpacked VOCdevkit.")
@click.option("--timeout", default=30.0, show_default=True, type=SECONDS, help="Seconds to wait for the server.")
@click.option("--mirror", help="Base URL holding the two archives (default: the VOC server).")
def data_fetch(name: str, dest: str, timeout: float, mirror: str | None) -> None:
    """Download the official VOC 2007 archives (md5 verified) and unpack them into DEST."""
    from toolkit.data.fetch import MIRROR, fetch_voc2007

    click.echo(f"VOC 2007 ready at {fetch_voc2007(dest, mirror=mirror or MIRROR, timeout=timeout)}")

