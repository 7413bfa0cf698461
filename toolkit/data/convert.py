"""Write labelled splits as a CSV or COCO dataset: ``mledge data convert`` (any layout into another),
``data split`` and ``data synth --format``. Images are hard-linked where the disk allows (else
copied), so a converted dataset costs no second copy of the photos; the folder appears whole.

    csv:  DEST/<split>.csv (image, then one column per class: 1, 0, -1 unknown), DEST/images/<file>
    coco: DEST/annotations/instances_<split>.json, DEST/images/<split>/<file>; a positive label is one
          whole-image annotation, an unknown one a crowd annotation (``iscrowd: 1``)
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from toolkit.atomic import replace_dir, staging
from toolkit.errors import UserError
from toolkit.outputs import check_output_folder, mark

TARGETS = ("csv", "coco")
CSV_VALUES = {1: "1", -1: "0", 0: "-1"}  # VOC's {1, -1, 0} -> the CSV's 1 / 0 / -1 (unknown)


@dataclass
class Labelled:
    """One split to write: image files, their labels in VOC's {1, -1, 0}, and the classes."""

    paths: list[Path]
    raw: np.ndarray
    classes: list[str]


def read_dataset(data: str | Path, splits: list[str] | None = None, fmt: str = "auto") -> dict[str, Labelled]:
    """Every split of a dataset (or the ones named), with the dataset's classes."""
    from edge.datasets import detect_format, list_splits, read_classes, read_split

    fmt = detect_format(data) if fmt == "auto" else fmt
    splits = splits or list_splits(data, fmt)
    classes = read_classes(data, fmt, splits[0])
    out = {}
    for split in splits:
        part = read_split(data, split, classes, fmt)
        missing = next((p for p in part.paths if not p.is_file()), None)
        if missing is not None:
            raise UserError(f"{missing}: image of split {split!r} is missing")
        out[split] = Labelled(part.paths, part.raw, classes)
    return out


def _place(source: Path, target: Path) -> None:
    if target.exists():  # the same photo in two splits (VOC's trainval)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _names(paths: list[Path], split: str) -> list[str]:
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UserError(f"split {split!r}: two images are named {dup}; file names must be unique to convert")
    return names


def _write_csv(dest: Path, splits: dict[str, Labelled]) -> None:
    for split, part in splits.items():
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["image", *part.classes])
        for path, name, row in zip(part.paths, _names(part.paths, split), part.raw):
            _place(path, dest / "images" / name)
            writer.writerow([f"images/{name}", *(CSV_VALUES[int(v)] for v in row)])
        (dest / f"{split}.csv").write_text(buf.getvalue())


def _write_coco(dest: Path, splits: dict[str, Labelled]) -> None:
    (dest / "annotations").mkdir(parents=True, exist_ok=True)
    for split, part in splits.items():
        categories = [{"id": k + 1, "name": c, "supercategory": "none"} for k, c in enumerate(part.classes)]
        images, annotations = [], []
        for image_id, (path, name, row) in enumerate(zip(part.paths, _names(part.paths, split), part.raw), 1):
            _place(path, dest / "images" / split / name)
            with Image.open(path) as image:
                width, height = image.size
            images.append({"id": image_id, "file_name": name, "width": width, "height": height})
            for k in np.flatnonzero(row != -1):
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(k) + 1,
                                    "bbox": [0, 0, width, height], "area": width * height,
                                    "iscrowd": int(row[k] == 0)})
        coco = {"info": {"description": "written by mledge data convert"}, "images": images,
                "annotations": annotations, "categories": categories}
        (dest / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))


def write_dataset(splits: dict[str, Labelled], dest: str | Path, to: str, force: bool = False,
                  reads: tuple[Path, ...] = ()) -> Path:
    """Write the splits under ``dest`` in layout ``to``, atomically (a temporary folder renamed); only
    an earlier dataset of ours is replaced, and only with ``force``."""
    if to not in TARGETS:
        raise UserError(f"--to must be one of {', '.join(TARGETS)}, not {to!r}")
    dest = Path(dest)
    check_output_folder(dest, "dataset", force, reads)
    with staging(dest) as tmp:
        (_write_csv if to == "csv" else _write_coco)(tmp, splits)
        mark(tmp, "dataset")
        replace_dir(tmp, dest)
    return dest


def convert(source: str | Path, dest: str | Path, to: str, force: bool = False) -> dict[str, Labelled]:
    check_output_folder(dest, "dataset", force, (Path(source),))  # before the photos are read
    splits = read_dataset(source)
    write_dataset(splits, dest, to, force, (Path(source),))
    return splits
