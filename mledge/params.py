"""Parameter types and ranges every command shares: click checks them before any work starts, and
--help shows each range."""

from __future__ import annotations

import os
from pathlib import Path

import click

EPOCHS = click.IntRange(1, 100_000)
PATIENCE = click.IntRange(0, 100_000)
BATCH = click.IntRange(1, 65_536)
IMAGE_SIZE = click.IntRange(1, 4096)  # and at least the architecture's minimum (toolkit.models.min_input_size)
LEARNING_RATE = click.FloatRange(0, 10, min_open=True)
WEIGHT_DECAY = click.FloatRange(0, 1)
FRACTION = click.FloatRange(0, 1)
THRESHOLD = click.FloatRange(0, 1)
SEED = click.IntRange(0, 2**32 - 1)
THREADS = click.IntRange(1, 256)
COUNT = click.IntRange(1, 10_000_000)
SECONDS = click.FloatRange(0, 3600, min_open=True)


LAYOUTS = click.Choice(["auto", "voc", "csv", "coco"])


def dataset_options(*format_names: str):
    """--data-format (or the names given) and --classes-file: how a command reads a dataset."""
    layout = click.option(*format_names, "data_format", type=LAYOUTS, default="auto", show_default=True,
                          help="The dataset's layout: voc (ImageSets/Main), csv (DATA/<split>.csv or one CSV with a "
                          "split column), coco (annotations/instances_<split>.json or <split>/_annotations.coco.json);"
                          " auto detects it.")
    classes = click.option("--classes-file", type=click.Path(exists=True, dir_okay=False),
                           help="The classes and their order, one name a line (default: the dataset's own order).")
    return lambda command: layout(classes(command))


class OutputFolder(click.Path):
    """A folder the command will create or fill: refused before any work when a part of it is a
    regular file or the nearest existing folder cannot be written."""

    def __init__(self):
        super().__init__(file_okay=False)

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        path = Path(value).absolute()
        existing = next(p for p in (path, *path.parents) if p.exists() or p == p.parent)
        if not existing.is_dir():
            self.fail(f"{value}: {existing} is a file, not a folder", param, ctx)
        if not os.access(existing, os.W_OK | os.X_OK):
            self.fail(f"{value}: {existing} is not writable", param, ctx)
        return value


class TrunkSource(click.ParamType):
    """--trunk: first-class, multitask, or the folder of a finished run whose trunk is taken."""

    name = "trunk"

    def get_metavar(self, param, ctx=None) -> str:
        return "[first-class|multitask|RUN]"

    def convert(self, value, param, ctx):
        if value in ("first-class", "multitask"):
            return value
        if not Path(value).is_dir():
            self.fail(f"{value!r} is not first-class, multitask or a run folder", param, ctx)
        return str(Path(value).resolve())


def int_list(value: str, allowed: click.IntRange = THREADS) -> list[int]:
    """"1,2,4" -> [1, 2, 4], each within ``allowed``."""
    try:
        values = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected integers like 1,2,4, not {value!r}") from None
    if not values:
        raise click.BadParameter(f"expected integers like 1,2,4, not {value!r}")
    for v in values:
        allowed.convert(v, None, None)
    return values

LOSS_CHOICES = ("bce", "weighted", "focal", "asl")  # = toolkit.losses.LOSSES, which imports Keras
