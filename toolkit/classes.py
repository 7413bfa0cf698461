"""What the study says the per-class architectures are for: add a class without retraining the
others, retrain one class with its own settings, and see each class's settings, AP and threshold."""

from __future__ import annotations

import json
import time
from pathlib import Path

from toolkit.atomic import write_json
from toolkit.config import CLASS_SETTINGS
from toolkit.errors import UserError
from toolkit.models import MIN_INPUT_SIZE
from toolkit.run import TRUNK, Run
from toolkit.train.checkpoint import epochs_in_progress


def _per_class_run(path: str | Path, action: str) -> tuple[Run, object]:
    run = Run(Path(path))
    cfg = run.require_complete()
    if cfg.arch == "multioutput":
        raise UserError(f"{run.path}: a multioutput model has one output layer for all classes; {action} means "
                        f"retraining the whole model: mledge train {cfg.root} --arch multioutput --out NEW_RUN")
    if cfg.final:
        raise UserError(f"{run.path}: a final run takes its epochs from its val run; {action} there "
                        f"({cfg.final.from_run}), then: mledge train --final {cfg.final.from_run} --out NEW_RUN")
    return run, cfg


def add_class(run_path: str | Path, name: str, root: str | Path) -> dict:
    """Train only the new class (independent: a new CNN; shared: a new head on the frozen trunk);
    the other classes' model files are not touched. New classes go last."""
    from edge.datasets import dataset_root, detect_format
    from toolkit import train
    from toolkit.data.dataset import load_split

    run, cfg = _per_class_run(run_path, f"adding {name!r}")
    if name in cfg.classes:
        raise UserError(f"{run.path}: class {name!r} is already in this run (use mledge classes retrain)")
    root = dataset_root(root, detect_format(root))  # VOC: a label file; CSV: a column; COCO: a category
    for split in (cfg.split, cfg.val_split):
        load_split(root, split, classes=[name], check_images=False)  # its labels exist and parse
    cfg.classes = [*cfg.classes, name]
    if root.resolve() != dataset_root(cfg.root, detect_format(cfg.root)).resolve():
        cfg.class_roots = {**cfg.class_roots, name: str(root)}
    t0 = time.time()
    train_data, val_data = train.load_training_data(cfg, run.cache_dir)
    write_json(run.config_path, cfg.to_dict())  # the class list grows only once its labels load
    return _train_and_report(run, cfg, train_data, val_data, t0)


def retrain_class(run_path: str | Path, name: str, settings: dict) -> dict:
    """Train one class again with its own settings, recorded in config.json; only its files change."""
    from toolkit import train

    run, cfg = _per_class_run(run_path, f"retraining {name!r}")
    if name not in cfg.classes:
        raise UserError(f"{run.path}: no class {name!r} in this run (classes: {', '.join(cfg.classes)})")
    if cfg.arch == "shared" and cfg.trunk == "first-class" and name == cfg.classes[0]:
        raise UserError(f"{run.path}: {name!r} holds the shared trunk of every class; retraining it would change "
                        f"them all (train a new run, or use --trunk multitask)")
    unknown = set(settings) - set(CLASS_SETTINGS)
    if unknown:
        raise UserError(f"not a per-class setting: {', '.join(sorted(unknown))}")
    if "img_size" in settings and cfg.model.pretrained:
        raise UserError(f"{run.path}: --img-size per class applies to the study CNN; a pretrained backbone "
                        f"works at the run's size ({cfg.model.img_size})")
    if settings.get("img_size", MIN_INPUT_SIZE["study"]) < MIN_INPUT_SIZE["study"]:
        raise UserError(f"--img-size {settings['img_size']}: the study CNN needs at least "
                        f"{MIN_INPUT_SIZE['study']} pixels a side")
    cfg.class_settings = {**cfg.class_settings, name: {**cfg.class_settings.get(name, {}), **settings}}
    t0 = time.time()
    train_data, val_data = train.load_training_data(cfg, run.cache_dir)
    write_json(run.config_path, cfg.to_dict())
    for path in (run.record_path(name), run.model_path(name)):
        path.unlink(missing_ok=True)
    return _train_and_report(run, cfg, train_data, val_data, t0)


def _train_and_report(run: Run, cfg, train_data, val_data, t0: float) -> dict:
    from toolkit import train

    metrics = train.train_and_finalize(run, cfg, train_data, val_data)
    metrics["wall_seconds"] = round(time.time() - t0, 2)
    return metrics


def class_table(run_path: str | Path) -> list[dict]:
    """Each unit of a run: done or not, its settings, when it was trained, val AP and threshold."""
    run = Run(Path(run_path))
    cfg = run.config()
    thresholds, ap = {}, {}
    if (run.path / "thresholds.json").is_file():
        data = json.loads((run.path / "thresholds.json").read_text())
        thresholds = dict(zip(data["classes"], data["thresholds"]))
    if (run.path / "metrics.json").is_file():
        metrics = json.loads((run.path / "metrics.json").read_text())
        ap = dict(zip(metrics["classes"], metrics.get("AP_area", [])))  # a final run has no val AP
    units = ([TRUNK] if cfg.arch == "shared" and cfg.trunk != "first-class" else []) + run.units(cfg)
    rows = []
    in_progress = epochs_in_progress(run)
    for unit in units:
        started = in_progress.get(unit)
        if run.is_done(unit):
            record = run.record(unit)
            status, epochs, trained = "done", record["epochs"], record["finished"]
            seconds = record["seconds"]
        elif started is not None:
            status, epochs, trained, seconds = "in progress", started, None, None
        else:
            status, epochs, trained, seconds = "to do", None, None, None
        own = cfg.class_settings.get(unit, {})
        rows.append({
            "unit": unit, "status": status, "epochs": epochs, "seconds": seconds, "trained": trained,
            "val_AP": None if ap.get(unit) is None else round(100 * ap[unit], 2),
            "threshold": None if unit not in thresholds else round(thresholds[unit], 3),
            "settings": ", ".join(f"{k}={v}" for k, v in own.items()) or "run defaults",
        })
    return rows
