"""One split of a dataset in any layout (VOC, CSV, COCO) as label tables: what stats, training,
evaluation and export read. The files are parsed by edge/datasets.py, which the edge bench uses
too, so both sides see the same labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.datasets import FORMATS, detect_format, read_classes, read_split
from toolkit.data.voc import LABEL_SOURCES, read_annotations
from toolkit.errors import UserError

DIFFICULT_MODES = ("ignore", "positive", "negative")


@dataclass
class Split:
    """``labels``: a DataFrame (index: image id, one 0/1 column per class, the run's order);
    ``difficult``: booleans of the same shape, True where the label is unknown (VOC's "difficult",
    a CSV's -1 or blank), left out of the loss by default and always out of the metrics."""

    root: Path
    split: str
    format: str
    labels: pd.DataFrame  # noqa: F821
    difficult: pd.DataFrame  # noqa: F821
    paths: list[Path]
    where: list[str]  # where each image's labels are written: for messages

    @property
    def classes(self) -> list[str]:
        return list(self.labels.columns)

    @property
    def ids(self) -> list[str]:
        """A new list each call (O(N)): take it once outside a loop."""
        return self.labels.index.tolist()

    def subset(self, rows) -> Split:
        """The images at these positions (calibration decodes only the photos it uses)."""
        rows = list(rows)
        return Split(self.root, self.split, self.format, self.labels.iloc[rows], self.difficult.iloc[rows],
                     [self.paths[k] for k in rows], [self.where[k] for k in rows])

    def targets(self, difficult: str = "ignore") -> tuple[np.ndarray, np.ndarray]:
        """Float labels and a 0/1 loss mask for training, by how unknown entries are treated."""
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


def load_split(root: str | Path, split: str, *, fmt: str = "auto", labels: str = "imagesets",
               classes: list[str] | None = None, classes_file: str | None = None,
               check_images: bool = True) -> Split:
    """Read one split; ``classes`` default to the dataset's own (or --classes-file's) in order."""
    import pandas as pd

    if labels not in LABEL_SOURCES:
        raise UserError(f"--labels must be one of {', '.join(LABEL_SOURCES)}, not {labels!r}")
    fmt = detect_format(root) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    classes = list(classes) if classes else read_classes(root, fmt, split, classes_file)
    data = read_split(root, split, classes, fmt)
    raw = data.raw
    if labels == "annotations":
        if fmt != "voc" or not (data.root / "Annotations").is_dir():
            raise UserError(f"{data.root / 'Annotations'}: --labels annotations needs this folder (VOC only)")
        raw = read_annotations(data.root, data.ids, classes)
    if check_images:
        for path, where in zip(data.paths, data.where):
            if not path.is_file():
                raise UserError(f"{path}: image listed in split {split!r} is missing ({where})")
    index = pd.Index(data.ids, name="image_id")
    return Split(
        root=data.root, split=split, format=fmt,
        labels=pd.DataFrame((raw == 1).astype(np.int8), index=index, columns=classes),
        difficult=pd.DataFrame(raw == 0, index=index, columns=classes),
        paths=data.paths, where=data.where,
    )
