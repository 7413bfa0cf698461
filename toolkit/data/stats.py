"""The study's dataset statistics: images per class, objects, labels, label-count histogram, imbalance."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from edge.text_table import format_rows
from toolkit.data.dataset import Split
from toolkit.data.voc import count_objects


@dataclass
class SplitStats:
    split: str
    classes: list[str]
    images_per_class: list[int]  # images holding a non-difficult instance
    difficult_per_class: list[int]  # images where the class is difficult only
    objects_per_class: list[int] | None  # None without Annotations/
    total_labels: int
    unique_images: int
    images_without_labels: int
    labels_histogram: dict[int, int]  # number of labels on an image -> images

    @property
    def imbalance_ratio(self) -> float:
        positive = [n for n in self.images_per_class if n > 0]
        return max(positive) / min(positive) if positive else float("nan")

    def rows(self) -> list[dict]:
        rows = []
        for k, name in enumerate(self.classes):
            row = {"class": name, "images": self.images_per_class[k], "difficult_only": self.difficult_per_class[k]}
            if self.objects_per_class is not None:
                row["objects"] = self.objects_per_class[k]
            rows.append(row)
        return rows

    def to_dict(self) -> dict:
        return {
            "split": self.split,
            "classes": self.rows(),
            "total_labels": self.total_labels,
            "unique_images": self.unique_images,
            "images_without_labels": self.images_without_labels,
            "images_by_label_count": {str(k): v for k, v in self.labels_histogram.items()},
            "imbalance_ratio": round(self.imbalance_ratio, 2),
        }


def compute_stats(data: Split) -> SplitStats:
    y = data.labels.to_numpy()
    per_image = y.sum(axis=1)
    objects = count_objects(data.root, data.ids, data.classes) if data.format == "voc" else None
    counts = np.bincount(per_image, minlength=1)
    return SplitStats(
        split=data.split,
        classes=data.classes,
        images_per_class=[int(v) for v in y.sum(axis=0)],
        difficult_per_class=[int(v) for v in data.difficult.to_numpy().sum(axis=0)],
        objects_per_class=None if objects is None else [int(v) for v in objects],
        total_labels=int(y.sum()),
        unique_images=len(data.ids),
        images_without_labels=int((per_image == 0).sum()),
        labels_histogram={k: int(v) for k, v in enumerate(counts) if k > 0 and v > 0},
    )


def format_stats(stats: SplitStats, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(stats.to_dict(), indent=2)
    if fmt == "csv":
        return format_rows(stats.rows(), "csv")
    hist = ", ".join(f"{k}: {v}" for k, v in stats.labels_histogram.items())
    out = [f"split: {stats.split}", format_rows(stats.rows()), "",
           f"total labels        {stats.total_labels}",
           f"unique images       {stats.unique_images}"]
    if stats.images_without_labels:
        out.append(f"images w/o labels   {stats.images_without_labels}")
    out.append(f"images by #labels   {hist}")
    out.append(f"imbalance ratio     {stats.imbalance_ratio:.1f} (most / least frequent class)")
    return "\n".join(out)
