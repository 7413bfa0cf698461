"""Evaluate finished runs (VOC metrics, thresholds, plots) and compare runs the way the study does."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge.text_table import format_rows
from toolkit.errors import UserError
from toolkit.metrics import summarize
from toolkit.predict import load_run_split, run_scorer, run_thresholds, score_split
from toolkit.run import Run

__all__ = ["compare_runs", "evaluate_run", "format_report", "format_rows", "keras_latency_ms"]


def evaluate_run(run_path: str, root: str | None, split: str, threshold: float | None = None,
                 plots: str | None = None) -> dict:
    run = Run(Path(run_path))
    cfg = run.require_complete()
    if cfg.final and not root and split in (cfg.split, cfg.val_split):
        raise UserError(f"{run.path}: a final run was trained on {cfg.split} and {cfg.val_split}; evaluate it on "
                        f"another split (--split) or dataset (ROOT), or evaluate its val run {cfg.final.from_run}")
    data = load_run_split(replace(cfg, root=root, format="auto") if root else cfg, split)
    scored = score_split(data, cfg.model.img_size, {"run": run_scorer(run)}, on_bad_image=cfg.on_bad_image)
    labels, valid = scored.labels, scored.mask > 0  # difficult entries left out, as the devkit does
    scores = scored.scores["run"]
    thresholds = np.full(len(cfg.classes), threshold) if threshold is not None else run_thresholds(run, cfg.classes)
    report = summarize(labels, scores, valid, thresholds)
    report.update({"run": str(run.path), "arch": cfg.arch, "split": split, "classes": cfg.classes,
                   "threshold_source": "--threshold" if threshold is not None else "thresholds.json"})
    if plots:
        from toolkit.plots import write_plots

        write_plots(Path(plots), cfg.classes, labels, scores, valid, report)
    return report


def format_report(report: dict) -> str:
    at = report["at_thresholds"]
    pc = at["per_class"]
    rows = [{
        "class": c,
        "AP_area": None if report["AP_area"][k] is None else round(100 * report["AP_area"][k], 2),
        "AP_voc07": None if report["AP_voc07"][k] is None else round(100 * report["AP_voc07"][k], 2),
        "thr": round(report["thresholds"][k], 3),
        "P": round(100 * pc["precision"][k], 1), "R": round(100 * pc["recall"][k], 1),
        "F1": round(100 * pc["f1"][k], 1), "actual": pc["actual_ones"][k], "predicted": pc["predicted_ones"][k],
        "matched": pc["matched_ones"][k],
        "acc_of_ones": round(100 * pc["matched_ones"][k] / max(pc["actual_ones"][k], 1), 1),
    } for k, c in enumerate(report["classes"])]
    half = report["at_0.5"]
    return "\n".join([
        f"{report['run']} on split {report['split']} ({report['images']} images; difficult labels ignored)",
        format_rows(rows),
        f"mAP (area under PR curve)      {100 * report['mAP_area']:.2f}",
        f"mAP (VOC 2007 11-point)        {100 * report['mAP_voc07']:.2f}",
        f"at per-class thresholds ({report['threshold_source']}): CP {100 * at['CP']:.1f}  CR {100 * at['CR']:.1f}  "
        f"CF1 {100 * at['CF1']:.1f}  OP {100 * at['OP']:.1f}  OR {100 * at['OR']:.1f}  OF1 {100 * at['OF1']:.1f}  "
        f"hamming {at['hamming_loss']:.4f}  subset acc {100 * at['subset_accuracy']:.1f}",
        f"at 0.5 (the study's):          CF1 {100 * half['CF1']:.1f}  OF1 {100 * half['OF1']:.1f}  "
        f"mean label accuracy {100 * half['mean_label_accuracy']:.1f} (the study's 'accuracy')",
    ])


def keras_latency_ms(models: list, img_size: int, runs: int = 20) -> float:
    """Median wall time of one image through every model of the run (batch 1, after warm-up)."""
    x = np.random.default_rng(0).integers(0, 256, (1, img_size, img_size, 3)).astype(np.float32)
    for m in models:
        m(x, training=False)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for m in models:
            m(x, training=False)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def _val_scores(metrics: dict) -> dict:
    """A run's val figures for the table; a final run (trained on val) has none to show."""
    if metrics.get("final"):
        return {"mAP_area": None, "mAP_voc07": None, "CF1": None, "OF1": None}
    at = metrics["at_thresholds"]
    return {"mAP_area": round(100 * metrics["mAP_area"], 2), "mAP_voc07": round(100 * metrics["mAP_voc07"], 2),
            "CF1": round(100 * at["CF1"], 2), "OF1": round(100 * at["OF1"], 2)}


def compare_runs(paths: tuple[str, ...]) -> list[dict]:
    rows = []
    for path in paths:
        run = Run(Path(path))
        cfg = run.require_complete()
        metrics_path = run.path / "metrics.json"
        if not metrics_path.is_file():
            raise UserError(f"{metrics_path}: missing; run: mledge train --resume {run.path}")
        metrics = json.loads(metrics_path.read_text())
        models = run.load_models(cfg)
        files = [run.model_path(u) for u in run.units(cfg)]
        rows.append({
            "run": run.path.name, "arch": cfg.arch, "models": len(models),
            "params": int(sum(m.count_params() for m in models)),
            "keras_MB": round(sum(f.stat().st_size for f in files) / 1e6, 2),
            "train_s": metrics["train_seconds"], **_val_scores(metrics),
            "keras_ms_per_image": round(keras_latency_ms(models, cfg.model.img_size), 2),
        })
    return rows
