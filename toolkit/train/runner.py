"""A training run from start to end: create or join the RUN folder, train its units, and once every
unit is done write the run's thresholds, metrics and history."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import keras
import numpy as np

from toolkit.atomic import DiskFull, write_atomic, write_json
from toolkit.config import TrainConfig
from toolkit.data.arrays import SplitArrays, load_arrays
from toolkit.data.store import Store
from toolkit.errors import UserError
from toolkit.metrics import best_f1_thresholds, summarize
from toolkit.outputs import check_joinable, check_output_folder, drop_set_aside, mark, set_aside
from toolkit.predict import load_run_split, predict_run
from toolkit.run import TRUNK, Run
from toolkit.train.ema import check_ema
from toolkit.train.final import final_outputs
from toolkit.train.init_run import check_init_run
from toolkit.train.multiworker import is_chief, worker_cache, worker_shard
from toolkit.train.precision import POLICIES
from toolkit.train.teacher import check_distill, drop_cache, with_teacher
from toolkit.train.trunk_run import check_trunk_run
from toolkit.train.units import check_model, train_units

log = logging.getLogger("mledge.train")


def load_training_data(cfg: TrainConfig, cache: Path) -> tuple[SplitArrays, SplitArrays | None]:
    """The train and val splits, decoded into ``cache`` (memory-mapped; reused while the photos are the
    same), a final run: both as one training set, and no val; a class without a positive training
    image is warned about. A cluster worker (--strategy multiworker) takes its own shard of the
    training photos (of both splits in a final run); every worker scores the whole val split."""
    store = Store(worker_cache(cache, cfg))
    kwargs = {"difficult": cfg.difficult, "on_bad_image": cfg.on_bad_image, "store": store}
    shard = worker_shard() if cfg.strategy == "multiworker" else None
    train, val = (load_arrays(load_run_split(cfg, split), cfg.model.pixels, **kwargs,
                              shard=shard if split == cfg.split or cfg.final else None)
                  for split in (cfg.split, cfg.val_split))
    if cfg.final:
        train, val = train.concat(val, store), None
    empty = [c for c, n in zip(cfg.classes, (train.labels * train.mask).sum(axis=0)) if n == 0]
    if empty:
        message = f"split {cfg.split!r} has no positive image of {', '.join(empty)}: its AP is undefined"
        print(f"warning: {message}", file=sys.stderr)  # not logged: no train.log yet, and Python would print it too
    return train, val


def init_run(cfg: TrainConfig, out: str | Path, force: bool = False,
             join: bool = False) -> tuple[Run, SplitArrays, SplitArrays]:
    """Create RUN and its config.json, written once: concurrent processes (a job array, the workers
    of a cluster) that ``join`` find it and check that their settings are the same."""
    run = Run(Path(out))
    check_model(cfg)
    if cfg.model.pretrained:  # before any work: the weights are imported once, by hand
        from toolkit.backbones.weights import require_weights

        require_weights(cfg.model.backbone)
    if join:  # a job array's or cluster's process: the folder is this run's or new, never the user's
        check_joinable(run.path, run_inputs(cfg))
    replacing = not join and check_output_folder(run.path, "run", force, run_inputs(cfg))
    check_trunk_run(cfg)
    check_init_run(cfg)
    check_ema(cfg)
    if join:  # claimed before the photos are decoded into its cache, so that the other processes join it
        run.path.mkdir(parents=True, exist_ok=True)
        mark(run.path, "run")
    # The photos are decoded (and validated) before the run is written: into its cache when it is
    # joined, else beside it, moved in once the run folder is made.
    cache = run.cache_dir if join else run.path.parent / f".{run.path.name}.cache"
    try:
        train, val = load_training_data(cfg, cache)
    except BaseException:
        if not join:
            shutil.rmtree(cache, ignore_errors=True)
        raise
    if cfg.distill:
        check_distill(cfg)
    if replacing:
        kept = set_aside(run.path)
        print(f"{run.path}: the earlier run is kept in {kept} until this one is finished")
    run.models_dir.mkdir(parents=True, exist_ok=True)
    if not join:
        mark(run.path, "run")
        shutil.rmtree(run.cache_dir, ignore_errors=True)  # a cut-short earlier try's: this one is newer
        os.replace(cache, run.cache_dir)  # the memory maps of train and val follow their files
    tmp = run.path / f".config.{os.getpid()}.json"
    tmp.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    try:
        os.link(tmp, run.config_path)  # atomic and exclusive: exactly one process creates it
    except FileExistsError:
        if run.config().to_dict() != cfg.to_dict():
            raise UserError(f"{run.config_path}: this run was created with other settings; use the same options "
                            f"(or mledge train --resume {run.path} --classes ...)") from None
    finally:
        tmp.unlink(missing_ok=True)
    return run, train, val


def start(cfg: TrainConfig, out: str | Path, force: bool = False, only: list[str] | None = None,
          stage: str = "all") -> dict | None:
    """Train into ``out``. With ``only``/``stage`` (or multi-worker training) the process joins an
    existing RUN of the same settings; returns metrics once every model of the run is trained."""
    join = bool(only) or stage != "all" or cfg.strategy == "multiworker"
    run, train, val = init_run(cfg, out, force=force, join=join)
    return train_and_finalize(run, cfg, train, val, only, stage)


def resume(path: str | Path, only: list[str] | None = None, stage: str = "all") -> dict | None:
    run = Run(Path(path))
    cfg = run.config()
    train, val = load_training_data(cfg, run.cache_dir)
    return train_and_finalize(run, cfg, train, val, only, stage)


def train_and_finalize(run: Run, cfg: TrainConfig, train: SplitArrays, val: SplitArrays | None,
                       only: list[str] | None = None, stage: str = "all") -> dict | None:
    """Train what is asked; the metrics once the whole run is done (None before, or on a worker)."""
    try:
        return _train_and_finalize(run, cfg, train, val, only, stage)
    except DiskFull as err:  # every finished epoch is kept: say how to go on
        raise DiskFull(f"{err}; then: mledge train --resume {run.path}") from None


def _train_and_finalize(run: Run, cfg: TrainConfig, train: SplitArrays, val: SplitArrays | None,
                        only: list[str] | None, stage: str) -> dict | None:
    if is_chief():
        _log_to(run)
    keras.utils.set_random_seed(cfg.seed)
    if cfg.distill and run.pending(cfg, only):  # before the precision policy: the teacher scores in float32
        train = with_teacher(run, cfg, train)
    if val is None:
        log.info("final %s run on %s/%s+%s (%d images), epochs of %s, %s", cfg.arch, cfg.root, cfg.split,
                 cfg.val_split, train.total, cfg.final.from_run, cfg.precision)
    else:
        log.info("training %s on %s/%s (%d images), val %s (%d images), %s", cfg.arch, cfg.root, cfg.split,
                 train.total, cfg.val_split, len(val.ids), cfg.precision)
    keras.mixed_precision.set_global_policy(POLICIES[cfg.precision])
    try:
        scores = train_units(run, cfg, train, val, _strategy(cfg), only, stage)
    finally:  # what runs next in this process (finalize, an export) computes in float32
        keras.mixed_precision.set_global_policy("float32")
    if not is_chief() or run.pending(cfg):
        return None
    return finalize(run, cfg, val, train.total, scores)


def _records(run: Run, cfg: TrainConfig) -> list[dict]:
    return [run.record(u) for u in ([TRUNK] if run.is_done(TRUNK) else []) + run.units(cfg)]


def _summary(cfg: TrainConfig, records: list[dict]) -> dict:
    adopted = [r["adopted_from"] for r in records if "adopted_from" in r]  # --trunk RUN: trained and timed there
    seconds = sum(r["seconds"] for r in records if "adopted_from" not in r)
    return {"arch": cfg.arch, "classes": cfg.classes, "train_seconds": round(seconds, 2),
            "epochs": {r["unit"]: r["epochs"] for r in records},
            "params": int(sum(r["params"] for r in records if r["unit"] != TRUNK)),
            **({"trunk_from": adopted[0]} if adopted else {})}


def finalize(run: Run, cfg: TrainConfig, val: SplitArrays | None, images: int,
             scores: np.ndarray | None = None) -> dict:
    """thresholds.json, metrics.json and history.csv: thresholds chosen and the run scored on val, or
    for a final run (no val) its val run's thresholds and what it was trained on. ``scores``: the
    val scores when training computed them (heads on cached maps), else the full models run."""
    thresholds, metrics = final_outputs(cfg, images) if val is None else _score_on_val(run, cfg, val, scores)
    write_json(run.path / "thresholds.json", thresholds)
    records = _records(run, cfg)
    metrics.update(_summary(cfg, records))
    if cfg.distill:
        metrics["teacher"] = {**json.loads((run.path / "teacher.json").read_text()), "weight": cfg.distill.weight,
                              "temperature": cfg.distill.temperature, "unlabeled": cfg.distill.unlabeled}
    if cfg.init:
        metrics["init_from"] = json.loads((run.path / "init.json").read_text())
    write_json(run.path / "metrics.json", metrics)
    _write_history(run, records)
    if cfg.distill:
        drop_cache(run, cfg)
    shutil.rmtree(run.cache_dir, ignore_errors=True)  # the decoded photos and maps are only for training
    with contextlib.suppress(OSError):  # empty once every unit is done; a stack of other --classes stays
        (run.path / "checkpoints").rmdir()
    drop_set_aside(run.path)  # the run this one replaced (--force), kept until now
    return metrics


def run_inputs(cfg: TrainConfig) -> tuple[str, ...]:
    """What a run reads: its --out may overlap none of them."""
    paths = (cfg.root, cfg.trunk if cfg.trunk not in ("first-class", "multitask") else None, cfg.init,
             cfg.distill.teacher if cfg.distill else None, cfg.final.from_run if cfg.final else None,
             *cfg.class_roots.values())
    return tuple(p for p in paths if p)


def _score_on_val(run: Run, cfg: TrainConfig, val: SplitArrays, scores: np.ndarray | None) -> tuple[dict, dict]:
    """(thresholds.json: best F1 per class on val, the metrics at them); writes the val scores behind them."""
    scores = predict_run(run, val.images) if scores is None else scores
    valid = val.mask > 0
    thresholds = best_f1_thresholds(val.labels, scores, valid)
    buffer = io.BytesIO()  # the val scores behind the metrics: PR curves in mledge report
    np.savez_compressed(buffer, scores=scores, labels=val.labels, valid=valid)
    write_atomic(run.path / "val_scores.npz", buffer.getvalue())
    chosen = {"classes": cfg.classes, "thresholds": [float(t) for t in thresholds],
              "chosen_on": cfg.val_split, "rule": "per-class threshold maximising F1 on the val split"}
    return chosen, {**summarize(val.labels, scores, valid, thresholds), "split": cfg.val_split}


def _write_history(run: Run, records: list[dict]) -> None:
    """history.csv: one row per unit and epoch (val columns empty in a final run)."""
    def number(value) -> str:
        return "" if value is None else f"{value:.6f}"

    lines = ["unit,loss_kind,epoch,loss,val_loss,val_map,seconds"]
    for r in records:
        kind = r["settings"]["loss"]
        lines += [f"{r['unit']},{kind},{h['epoch']},{number(h['loss'])},{number(h['val_loss'])},"
                  f"{number(h['val_map'])},{h['seconds']}" for h in r["history"]]
    write_atomic(run.path / "history.csv", "\n".join(lines) + "\n")


class _LogFile(logging.FileHandler):
    """train.log: a line that cannot be written (a full disk) is dropped, not printed with a traceback;
    the checkpoint written next says that the disk is full."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def _log_to(run: Run) -> None:
    handler = _LogFile(run.path / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("mledge")
    root.handlers = [h for h in root.handlers if not isinstance(h, logging.FileHandler)] + [handler]
    root.setLevel(logging.INFO)


def _strategy(cfg: TrainConfig):
    import tensorflow as tf

    if cfg.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if cfg.strategy == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise UserError("--strategy multiworker needs TF_CONFIG (the cluster and this task) in the environment")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if cfg.strategy != "default":
        raise UserError(f"--strategy must be default, mirrored or multiworker, not {cfg.strategy!r}")
    return tf.distribute.get_strategy()
