"""VOC ``ImageSets/Main/<class>_<split>.txt`` files in plain Python (edge/datasets.py reads every
layout through here and its CSV and COCO twins; training builds its DataFrames on that)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("mledge.data")

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip


class DatasetError(ValueError):
    """A dataset that cannot be read: one line naming the file and the problem."""


def resolve_root(root: str | Path) -> Path:
    """Accept ``VOCdevkit``, ``VOCdevkit/VOC2007`` or any folder holding ``ImageSets/Main``."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: dataset root does not exist")
    for candidate in (root, root / "VOC2007"):
        if (candidate / "ImageSets" / "Main").is_dir():
            return candidate
    raise DatasetError(f"{root}: not a VOC root (no ImageSets/Main here or in VOC2007/)")


def read_label_file(path: Path) -> dict[str, int]:
    if not path.is_file():
        raise DatasetError(f"{path}: class label file is missing")
    entries: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("1", "-1", "0"):
            raise DatasetError(f"{path}:{lineno}: expected '<id> <1|-1|0>', got {line.strip()!r}")
        entries[parts[0]] = int(parts[1])
    if not entries:
        raise DatasetError(f"{path}: class label file is empty")
    return entries


def read_imagesets(root: Path, split: str, classes: list[str]) -> tuple[list[str], np.ndarray]:
    """Labels in {1, -1, 0} as an (images, classes) int8 array from the per-class files."""
    main = root / "ImageSets" / "Main"
    columns = []
    ids: list[str] = []
    first_file = None
    for name in classes:
        path = main / f"{name}_{split}.txt"
        entries = read_label_file(path)
        if first_file is None:
            ids, first_file = list(entries), path
        elif set(entries) != set(ids):
            extra = sorted(set(entries) ^ set(ids))[:3]
            raise DatasetError(f"{path}: image ids differ from {first_file.name} (e.g. {', '.join(extra)})")
        columns.append([entries[i] for i in ids])
    return ids, np.array(columns, dtype=np.int8).T


def discover_classes(root: Path, split: str) -> list[str]:
    """The classes of a split. A VOC dataset (any of VOC's class names) has VOC's 20, in order, and a
    missing label file is an error, never a quietly smaller class list; other files beside them are
    not classes until ``mledge classes add`` makes them one. Any other dataset: its files' classes, sorted."""
    main = root / "ImageSets" / "Main"
    found = sorted(p.name[: -len(f"_{split}.txt")] for p in main.glob(f"*_{split}.txt"))
    if not found:
        raise DatasetError(f"{main}: no <class>_{split}.txt files for split {split!r}")
    if not set(found) & set(VOC_CLASSES):
        return found
    missing = [c for c in VOC_CLASSES if c not in found]
    if missing:
        raise DatasetError(f"{main / f'{missing[0]}_{split}.txt'}: class label file is missing (a VOC dataset has "
                           f"all 20 classes; {len(missing)} missing: {', '.join(missing)})")
    extra = [c for c in found if c not in VOC_CLASSES]
    if extra:
        log.warning("%s: %s not taken as classes (VOC's 20 are); add one with: mledge classes add RUN NAME %s",
                    main, ", ".join(f"{c}_{split}.txt" for c in extra), root)
    return list(VOC_CLASSES)
