"""Labels from COCO-style exports (CVAT, Label Studio, Roboflow and the like): an image's labels are the
categories of its annotations; an image without annotations is all-negative. A category an image has
only as crowd annotations (``iscrowd: 1``, which COCO's own evaluation ignores) is unknown there,
as VOC's "difficult": that is how ``mledge data convert`` writes VOC's difficult labels.

Both layouts tools write:
    DATA/annotations/instances_<split>.json   images in DATA/images/<split>/ or DATA/<split>/
    DATA/<split>/_annotations.coco.json       images beside it (splits train / valid / test)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from edge.label_files import DatasetError

log = logging.getLogger("mledge.data")
ALIASES = {"val": "valid", "valid": "val"}  # Roboflow names its val split "valid"


def coco_files(root: Path) -> dict[str, tuple[Path, Path]]:
    """split -> (annotation file, image folder), for every split the dataset has."""
    found = {}
    for path in sorted((root / "annotations").glob("instances_*.json")):
        split = path.stem[len("instances_"):]
        images = root / "images" / split
        found[split] = (path, images if images.is_dir() else root / split)
    for path in sorted(root.glob("*/_annotations.coco.json")):
        found[path.parent.name] = (path, path.parent)
    return found


def coco_file(root: Path, split: str) -> tuple[Path, Path]:
    files = coco_files(root)
    if split not in files and ALIASES.get(split) in files:
        split = ALIASES[split]
    if split not in files:
        raise DatasetError(f"{root}: no COCO annotations for split {split!r} (splits here: "
                           f"{', '.join(files) or 'none'})")
    return files[split]


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: not a readable COCO file ({str(err)[:120]})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise DatasetError(f"{path}: not a COCO file (needs 'images' and 'categories' lists)")
    data.setdefault("annotations", [])
    return data


def _categories(path: Path, data: dict) -> dict[int, str]:
    try:
        return {int(c["id"]): str(c["name"]) for c in data["categories"]}
    except (KeyError, TypeError, ValueError):
        raise DatasetError(f"{path}: a category without an integer id and a name") from None


def coco_classes(root: Path) -> list[str]:
    """Categories that some annotation of some split uses, in category-id order. The others (some
    exporters add a supercategory row with id 0) are not classes, and a line says which."""
    names: dict[int, str] = {}
    used: set[int] = set()
    for path, _ in coco_files(root).values():
        data = _load(path)
        names.update(_categories(path, data))
        used.update(a.get("category_id") for a in data["annotations"] if isinstance(a, dict))
    left_out = [names[k] for k in sorted(names) if k not in used]
    if left_out:
        log.warning("%s: categories no annotation uses are not classes: %s", root, ", ".join(left_out))
    return [names[k] for k in sorted(names) if k in used]


def read_coco_split(root: Path, split: str, classes: list[str]) -> tuple[list[str], np.ndarray, list[str], Path]:
    """(image file names, labels in {1, -1, 0} (N, C), where each image is, the image folder)."""
    path, folder = coco_file(root, split)
    data = _load(path)
    categories = _categories(path, data)
    index = {c: k for k, c in enumerate(classes)}
    images: dict[int, str] = {}
    for k, image in enumerate(data["images"]):
        try:
            images[int(image["id"])] = str(image["file_name"])
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"{path}: images[{k}] needs an integer id and a file_name") from None
    if not images:
        raise DatasetError(f"{path}: split {split!r} is empty")
    rows = {image_id: np.full(len(classes), -1, np.int8) for image_id in images}
    for k, ann in enumerate(data["annotations"]):
        ann_id = ann.get("id", f"#{k}") if isinstance(ann, dict) else f"#{k}"
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        category = ann.get("category_id") if isinstance(ann, dict) else None
        if image_id not in rows:
            raise DatasetError(f"{path}: annotation {ann_id}: unknown image_id {image_id!r}")
        if category not in categories:
            raise DatasetError(f"{path}: annotation {ann_id}: unknown category_id {category!r}")
        name = categories[category]
        if name in index:
            row, k = rows[image_id], index[name]
            row[k] = 0 if ann.get("iscrowd") and row[k] != 1 else 1
    names = [images[i] for i in rows]
    return names, np.stack(list(rows.values())), [f"{path}: image id {i}" for i in rows], folder
