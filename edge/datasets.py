"""Labelled images in any of three layouts, read the same way by training and by the edge bench (no
pandas, no TensorFlow): PASCAL VOC, CSV tables and COCO exports. Each gives a split as image paths
and a label matrix in VOC's values: 1 positive, -1 negative, 0 unknown ("difficult"), left out of
the loss and the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.label_coco import coco_classes, coco_files, read_coco_split
from edge.label_csv import csv_classes, csv_split_values, read_csv_split
from edge.label_files import VOC_CLASSES, DatasetError, discover_classes, read_imagesets, resolve_root

FORMATS = ("voc", "csv", "coco")


@dataclass
class LabelledSplit:
    format: str
    root: Path  # the dataset's root as this format sees it (the VOC2007 folder, the CSV's folder, ...)
    split: str
    classes: list[str]
    ids: list[str]  # VOC: image ids; CSV and COCO: image names as the labels give them
    paths: list[Path]
    raw: np.ndarray  # (N, C) int8 in {1, -1, 0}
    where: list[str]  # where each image's labels are (file and row, or annotation file and image id)


def detect_format(data: str | Path) -> str:
    data = Path(data)
    if not data.exists():
        raise DatasetError(f"{data}: dataset root does not exist")
    if data.is_file():
        if data.suffix.lower() == ".csv":
            return "csv"
        raise DatasetError(f"{data}: a dataset is a folder (VOC, COCO, CSV per split) or one .csv file")
    if (data / "ImageSets" / "Main").is_dir() or (data / "VOC2007" / "ImageSets" / "Main").is_dir():
        return "voc"
    if coco_files(data):
        return "coco"
    if any(data.glob("*.csv")):
        return "csv"
    raise DatasetError(f"{data}: not a dataset: no VOC ImageSets/Main, no COCO annotations, no <split>.csv")


def dataset_root(data: str | Path, fmt: str) -> Path:
    data = Path(data)
    if fmt == "voc":
        return resolve_root(data)
    if not data.exists():
        raise DatasetError(f"{data}: dataset root does not exist")
    return data


def read_classes(data: str | Path, fmt: str, split: str, classes_file: str | None = None) -> list[str]:
    """The dataset's classes in order: --classes-file's lines, else the format's own order."""
    if classes_file:
        path = Path(classes_file)
        if not path.is_file():
            raise DatasetError(f"{path}: classes file does not exist")
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not names or len(set(names)) != len(names):
            raise DatasetError(f"{path}: needs one class name a line, each once")
        return names
    root = dataset_root(data, fmt)
    if fmt == "voc":
        return discover_classes(root, split)
    return csv_classes(root) if fmt == "csv" else coco_classes(root)


def list_splits(data: str | Path, fmt: str = "auto") -> list[str]:
    """The splits a dataset has, sorted."""
    fmt = detect_format(data) if fmt == "auto" else fmt
    root = dataset_root(data, fmt)
    if fmt == "voc":
        first = read_classes(root, fmt, "trainval" if any((root / "ImageSets" / "Main").glob("*_trainval.txt"))
                             else "train")[0]
        return sorted(p.stem[len(first) + 1:] for p in (root / "ImageSets" / "Main").glob(f"{first}_*.txt"))
    if fmt == "coco":
        return sorted(coco_files(root))
    if root.is_file():
        return sorted(csv_split_values(root))
    return sorted(p.stem for p in root.glob("*.csv"))


def _inside(root: Path, name: str, where: str) -> Path:
    path = (root / name).resolve()
    if Path(name).is_absolute() or not path.is_relative_to(root.resolve()):
        raise DatasetError(f"{where}: image {name!r} points outside the dataset folder {root}")
    return path


def read_split(data: str | Path, split: str, classes: list[str], fmt: str = "auto") -> LabelledSplit:
    """One split with the given classes, in that order."""
    fmt = detect_format(data) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise DatasetError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    root = dataset_root(data, fmt)
    if fmt == "voc":
        ids, raw = read_imagesets(root, split, classes)
        paths = [root / "JPEGImages" / f"{i}.jpg" for i in ids]
        main = root / "ImageSets" / "Main"
        where = [f"{main / (classes[0] + '_' + split + '.txt')}: {i}" for i in ids]
    elif fmt == "csv":
        ids, raw, where = read_csv_split(root, split, classes)
        folder = root.parent if root.is_file() else root
        paths = [_inside(folder, name, at) for name, at in zip(ids, where)]
    else:
        ids, raw, where, folder = read_coco_split(root, split, classes)
        paths = [_inside(folder, name, at) for name, at in zip(ids, where)]
    return LabelledSplit(fmt, root, split, list(classes), ids, paths, raw, where)


__all__ = ["FORMATS", "VOC_CLASSES", "DatasetError", "LabelledSplit", "detect_format", "list_splits", "read_classes",
           "read_split"]
