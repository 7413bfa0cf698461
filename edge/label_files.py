"""VOC ``ImageSets/Main/<class>_<split>.txt`` files in plain Python: the edge bench reads labels with
this, and the training side builds its DataFrames on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
