"""Labels from a CSV table: ``DATA/<split>.csv``, or one CSV file with a ``split`` column.

An image column (a path relative to the CSV's folder) and either a labels column (class names
separated by spaces, commas or semicolons; empty: no label) or one column per class holding 1 / 0,
with -1 or blank meaning "unknown" (masked out of the loss and the metrics, as VOC's difficult).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from edge.label_files import DatasetError

IMAGE_COLUMNS = ("image", "filename", "file_name", "file", "path", "image_path")
LABEL_COLUMNS = ("labels", "label", "tags")
VALUES = {"1": 1, "1.0": 1, "0": -1, "0.0": -1, "-1": 0, "-1.0": 0, "": 0}  # CSV value -> VOC's {1, -1, 0}


def _read(path: Path) -> tuple[list[str], list[dict]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = [h.strip() for h in (reader.fieldnames or [])]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"{path}: cannot read this CSV ({err})") from None
    if not header:
        raise DatasetError(f"{path}: empty CSV (no header)")
    return header, [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in rows]


def _columns(path: Path, header: list[str]) -> tuple[str, str | None, list[str]]:
    """(image column, labels column or None, one-hot class columns)."""
    lower = {h.lower(): h for h in header}
    image = next((lower[c] for c in IMAGE_COLUMNS if c in lower), None)
    if image is None:
        raise DatasetError(f"{path}: no image column (one of {', '.join(IMAGE_COLUMNS)})")
    labels = next((lower[c] for c in LABEL_COLUMNS if c in lower), None)
    onehot = [h for h in header if h not in (image, labels) and h.lower() != "split"]
    if labels is None and not onehot:
        raise DatasetError(f"{path}: no labels column ({', '.join(LABEL_COLUMNS)}) and no class columns")
    return image, labels, ([] if labels else onehot)


def split_names(text: str) -> list[str]:
    return [name for name in re.split(r"[\s,;]+", text) if name]


def csv_file(root: Path, split: str) -> tuple[Path, bool]:
    """(the CSV file, whether it is one file for all splits with a split column)."""
    if root.is_file():
        return root, True
    path = root / f"{split}.csv"
    if not path.is_file():
        found = sorted(p.stem for p in root.glob("*.csv"))
        raise DatasetError(f"{path}: no CSV for split {split!r} (splits here: {', '.join(found) or 'none'})")
    return path, False


def csv_split_values(path: Path) -> set[str]:
    """The splits one CSV file holds in its split column."""
    header, rows = _read(path)
    key = next((h for h in header if h.lower() == "split"), None)
    if key is None:
        raise DatasetError(f"{path}: one CSV for every split needs a 'split' column")
    return {row[key] for row in rows if row[key]}


def csv_classes(root: Path) -> list[str]:
    """The classes of a CSV dataset: its one-hot header's order, or the sorted names of its labels
    column over every split."""
    files = [root] if root.is_file() else sorted(root.glob("*.csv"))
    names: set[str] = set()
    for path in files:
        header, rows = _read(path)
        image, labels, onehot = _columns(path, header)
        if not labels:
            return onehot
        for row in rows:
            names.update(split_names(row[labels]))
    return sorted(names)


def read_csv_split(root: Path, split: str, classes: list[str]) -> tuple[list[str], np.ndarray, list[str]]:
    """(image paths relative to the CSV's folder, labels in {1, -1, 0} (N, C), where each row is)."""
    path, one_file = csv_file(root, split)
    header, rows = _read(path)
    image, labels, onehot = _columns(path, header)
    if one_file:
        if "split" not in {h.lower() for h in header}:
            raise DatasetError(f"{path}: one CSV for every split needs a 'split' column")
        split_key = next(h for h in header if h.lower() == "split")
        numbered = [(n, row) for n, row in enumerate(rows, 2) if row[split_key] == split]
    else:
        numbered = list(enumerate(rows, 2))  # row 1 is the header
    if not labels:
        missing = [c for c in classes if c not in onehot]
        if missing:
            raise DatasetError(f"{path}: no column for class {missing[0]!r}")
    index = {c: k for k, c in enumerate(classes)}
    seen: dict[str, tuple[int, np.ndarray]] = {}
    for n, row in numbered:
        name = row[image]
        if not name:
            raise DatasetError(f"{path}:{n}: empty image name")
        if labels is not None:
            raw = np.full(len(classes), -1, np.int8)
            for label in split_names(row[labels]):
                if label not in index:
                    raise DatasetError(f"{path}:{n}: label {label!r} is not a class of this run "
                                       f"({', '.join(classes[:8])}{', ...' if len(classes) > 8 else ''})")
                raw[index[label]] = 1
        else:
            bad = next((c for c in classes if row[c] not in VALUES), None)
            if bad is not None:
                raise DatasetError(f"{path}:{n}: column {bad!r}: {row[bad]!r} is not 1, 0, -1 or blank")
            raw = np.array([VALUES[row[c]] for c in classes], np.int8)
        if name in seen:
            first, before = seen[name]
            if not np.array_equal(before, raw):
                raise DatasetError(f"{path}:{n}: {name} is listed again with other labels (first at row {first})")
            continue
        seen[name] = (n, raw)
    if not seen:
        raise DatasetError(f"{path}: split {split!r} is empty")
    return list(seen), np.stack([raw for _, raw in seen.values()]), [f"{path}:{n}" for n, _ in seen.values()]
