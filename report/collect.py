"""What a report shows, read from what runs, bundles and benches already hold: plain files, no
TensorFlow (a report can be made on a board from bench JSON and bundles)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.bundle import read_manifest
from edge.label_files import DatasetError


class ReportError(ValueError):
    """An input the report cannot use: one line naming the file."""


def _json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: missing") from None
    except (OSError, ValueError) as err:
        raise ReportError(f"{path}: not readable JSON ({str(err)[:100]})") from None


@dataclass
class Run:
    name: str
    path: Path
    config: dict
    metrics: dict
    records: list[dict]  # one per model file, in output order (the shared trunk first when there is one)
    scores: dict | None  # val scores, labels and valid mask, for PR curves (runs trained before have none)


def read_run(path: str | Path) -> Run:
    path = Path(path)
    config = _json(path / "config.json")
    if not (path / "metrics.json").is_file():
        raise ReportError(f"{path}: training is not finished (no metrics.json); run: mledge train --resume {path}")
    metrics = _json(path / "metrics.json")
    if metrics.get("final"):
        raise ReportError(f"{path}: a final run (trained on val too) has no val scores to report; "
                          f"report its val run {metrics['from_run']} and the final run's bundle")
    units = ["_trunk", *metrics["classes"]] if config["arch"] != "multioutput" else ["model"]
    records = [_json(path / "models" / f"{u}.json") for u in units if (path / "models" / f"{u}.json").is_file()]
    scores = None
    if (path / "val_scores.npz").is_file():
        with np.load(path / "val_scores.npz") as data:
            scores = {k: data[k] for k in data.files}
    return Run(path.name, path, config, metrics, records, scores)


def read_bench(path: str | Path) -> list[dict]:
    rows = _json(Path(path))
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "bundle" in r for r in rows):
        raise ReportError(f"{path}: not the output of mledge edge bench --json (a list of rows)")
    return rows


def read_bundle(path: str | Path) -> dict:
    return {**read_manifest(path), "path": str(path)}


def dataset_facts(config: dict) -> dict:
    """Label statistics and class co-occurrence of the run's training split; a reason when unreadable."""
    from edge.datasets import read_split

    try:
        data = read_split(config["root"], config["split"], config["classes"], config.get("format", "auto"))
    except (DatasetError, OSError) as err:
        return {"unavailable": str(err)}
    positive = (data.raw == 1).astype(np.int64)
    per_image = positive.sum(axis=1)
    return {"root": str(data.root), "split": data.split, "format": data.format, "images": len(data.ids),
            "classes": data.classes, "images_per_class": positive.sum(axis=0).tolist(),
            "unknown_per_class": (data.raw == 0).sum(axis=0).tolist(),
            "labels_per_image": np.bincount(per_image).tolist(),
            "cooccurrence": (positive.T @ positive).tolist()}
