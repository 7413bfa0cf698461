"""Read a dataset in PASCAL VOC layout into a label table and a mask of "difficult" entries.

The VOC devkit's classification labels live in ``ImageSets/Main/<class>_<split>.txt`` as
``<id> <1|-1|0>``; 0 means the class appears only as "difficult" and is ignored in evaluation.
``Annotations/<id>.xml`` hold the same information per object and can be the source instead.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.label_files import DatasetError, read_imagesets, resolve_root
from toolkit.errors import UserError

__all__ = ["DatasetError", "VOCSplit", "load_split", "read_imagesets", "resolve_root"]

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip

log = logging.getLogger("mledge.data")

DIFFICULT_MODES = ("ignore", "positive", "negative")
LABEL_SOURCES = ("imagesets", "annotations")


@dataclass
class VOCSplit:
    """One split: ``labels`` is a DataFrame (index: image id, one 0/1 column per class, VOC order);
    ``difficult`` is a boolean DataFrame of the same shape, True where the label is 0 ("difficult only")."""

    root: Path  # the VOC2007-level folder
    split: str
    labels: pd.DataFrame  # noqa: F821
    difficult: pd.DataFrame  # noqa: F821

    @property
    def classes(self) -> list[str]:
        return list(self.labels.columns)

    @property
    def ids(self) -> list[str]:
        return list(self.labels.index)

    def image_path(self, image_id: str) -> Path:
        return self.root / "JPEGImages" / f"{image_id}.jpg"

    def image_paths(self) -> list[Path]:
        return [self.image_path(i) for i in self.ids]

    def targets(self, difficult: str = "ignore") -> tuple[np.ndarray, np.ndarray]:
        """Float labels and a 0/1 loss mask for training, by how difficult entries are treated."""
        if difficult not in DIFFICULT_MODES:
            raise UserError(f"--difficult must be one of {', '.join(DIFFICULT_MODES)}, not {difficult!r}")
        y = self.labels.to_numpy(np.float32).copy()
        hard = self.difficult.to_numpy(bool)
        mask = np.ones_like(y)
        if difficult == "ignore":
            mask[hard] = 0.0
        elif difficult == "positive":
            y[hard] = 1.0
        return y, mask


def discover_classes(root: Path, split: str) -> list[str]:
    """The classes of a split. A VOC dataset (any of VOC's class names) has VOC's 20, in order, and a
    missing label file is an error, never a quietly smaller class list; other files beside them are
    not classes until ``mledge classes add`` makes them one. Any other dataset: its files' classes, sorted."""
    main = root / "ImageSets" / "Main"
    found = sorted(p.name[: -len(f"_{split}.txt")] for p in main.glob(f"*_{split}.txt"))
    if not found:
        raise UserError(f"{main}: no <class>_{split}.txt files for split {split!r}")
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


def parse_annotation(path: Path) -> list[tuple[str, bool, tuple[int, int, int, int]]]:
    """Objects of one VOC XML file as (class name, difficult, (xmin, ymin, xmax, ymax))."""
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as err:
        raise UserError(f"{path}: unreadable annotation ({err})") from None
    objects = []
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        box = obj.find("bndbox")
        coords = tuple(int(float(box.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax")) if box else (0,) * 4
        objects.append((name, difficult, coords))
    return objects


def read_annotations(root: Path, ids: list[str], classes: list[str]) -> np.ndarray:
    """The same {1, -1, 0} matrix from Annotations/*.xml: 1 if any non-difficult object of the class,
    0 if only difficult ones, -1 if none (the devkit's rule)."""
    index = {c: k for k, c in enumerate(classes)}
    out = np.full((len(ids), len(classes)), -1, dtype=np.int8)
    for row, image_id in enumerate(ids):
        path = root / "Annotations" / f"{image_id}.xml"
        if not path.is_file():
            raise UserError(f"{path}: annotation file is missing")
        for name, difficult, _ in parse_annotation(path):
            k = index.get(name)
            if k is None:
                continue
            if not difficult:
                out[row, k] = 1
            elif out[row, k] == -1:
                out[row, k] = 0
    return out


def count_objects(root: Path, ids: list[str], classes: list[str]) -> np.ndarray | None:
    """Objects per class over the split's images, or None when the dataset has no Annotations/."""
    if not (root / "Annotations").is_dir():
        return None
    index = {c: k for k, c in enumerate(classes)}
    counts = np.zeros(len(classes), dtype=np.int64)
    for image_id in ids:
        for name, _, _ in parse_annotation(root / "Annotations" / f"{image_id}.xml"):
            if name in index:
                counts[index[name]] += 1
    return counts


def load_split(
    root: str | Path,
    split: str,
    *,
    labels: str = "imagesets",
    classes: list[str] | None = None,
    check_images: bool = True,
) -> VOCSplit:
    """Read one split. ``classes`` defaults to those the split's label files name (VOC's 20 first)."""
    import pandas as pd

    if labels not in LABEL_SOURCES:
        raise UserError(f"--labels must be one of {', '.join(LABEL_SOURCES)}, not {labels!r}")
    root = resolve_root(root)
    classes = list(classes) if classes else discover_classes(root, split)
    ids, raw = read_imagesets(root, split, classes)
    if labels == "annotations":
        if not (root / "Annotations").is_dir():
            raise UserError(f"{root / 'Annotations'}: --labels annotations needs this folder")
        raw = read_annotations(root, ids, classes)
    if check_images:
        for image_id in ids:
            path = root / "JPEGImages" / f"{image_id}.jpg"
            if not path.is_file():
                raise UserError(f"{path}: image listed in split {split!r} is missing")
    index = pd.Index(ids, name="image_id")
    return VOCSplit(
        root=root,
        split=split,
        labels=pd.DataFrame((raw == 1).astype(np.int8), index=index, columns=classes),
        difficult=pd.DataFrame(raw == 0, index=index, columns=classes),
    )
