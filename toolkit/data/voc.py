"""What only PASCAL VOC has: ``Annotations/<id>.xml``, per object, as the label source instead of
``ImageSets/Main`` (``--labels annotations``) and for object counts. The label files themselves are
read by edge/label_files.py, like every layout (toolkit/data/dataset.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from edge.label_files import VOC_CLASSES, DatasetError, resolve_root
from toolkit.errors import UserError

__all__ = ["VOC_CLASSES", "DatasetError", "count_objects", "read_annotations", "resolve_root"]

LABEL_SOURCES = ("imagesets", "annotations")


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
