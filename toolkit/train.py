"""Training for the three architectures, with per-epoch checkpoints, early stopping on val mAP and
resume. Each model file is a "unit" (the multioutput model, or one class's CNN): a finished unit is
never trained again, an unfinished one continues from its last finished epoch."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from toolkit.config import TrainConfig
from toolkit.data.pipeline import SplitArrays, load_arrays, make_dataset
from toolkit.data.voc import load_split
from toolkit.errors import UserError
from toolkit.metrics import best_f1_thresholds, mean_ap, summarize
from toolkit.run import MULTI, TRUNK, Run, save_model_atomic, write_atomic, write_json

log = logging.getLogger("mledge.train")


def _setup_logging(run: Run) -> None:
    handler = logging.FileHandler(run.path / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("mledge")
    root.handlers = [h for h in root.handlers if not isinstance(h, logging.FileHandler)] + [handler]
    root.setLevel(logging.INFO)


def _strategy(cfg: TrainConfig):
    import tensorflow as tf

    if cfg.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if cfg.strategy != "default":
        raise UserError(f"--strategy must be default or mirrored, not {cfg.strategy!r}")
    return tf.distribute.get_strategy()


def _predict(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
    out = [np.asarray(model(images[i : i + batch].astype(np.float32), training=False), dtype=np.float32)
           for i in range(0, len(images), batch)]
    return np.concatenate(out)


class _EpochEnd:
    """Keras callback: val score, checkpoint (last + best), state file, early stopping."""

    def __new__(cls, *args, **kwargs):
        import keras

        class Callback(keras.callbacks.Callback):
            def __init__(self, ckpt: Path, state: dict, val: SplitArrays, columns, patience: int):
                super().__init__()
                self.ckpt, self.state, self.val, self.columns, self.patience = ckpt, state, val, columns, patience
                self.t0 = time.time()

            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.time()

            def on_epoch_end(self, epoch, logs=None):
                labels, mask = self.val.labels, self.val.mask
                if self.columns is not None:
                    labels, mask = labels[:, self.columns], mask[:, self.columns]
                probs = np.clip(_predict(self.model, self.val.images), 1e-7, 1 - 1e-7)
                val_loss = float(-((labels * np.log(probs) + (1 - labels) * np.log(1 - probs)) * mask).sum()
                                 / max(mask.sum(), 1))
                score = mean_ap(labels, probs, mask > 0)
                if not np.isfinite(score):  # no positive in val for this class: select on the loss
                    score = -val_loss
                seconds = time.time() - self.t0
                row = {"epoch": epoch + 1, "loss": float((logs or {}).get("loss", float("nan"))),
                       "val_loss": val_loss, "val_map": score, "seconds": round(seconds, 2)}
                st = self.state
                st["history"].append(row)
                st["epoch"], st["seconds"] = epoch + 1, st["seconds"] + seconds
                if score > st["best"]:
                    st["best"], st["best_epoch"], st["wait"] = score, epoch + 1, 0
                    tmp = self.ckpt / ".best.tmp.weights.h5"
                    self.model.save_weights(tmp)
                    tmp.replace(self.ckpt / "best.weights.h5")
                else:
                    st["wait"] += 1
                    if self.patience and st["wait"] >= self.patience:
                        st["stopped"] = True
                        self.model.stop_training = True
                save_model_atomic(self.model, self.ckpt / "last.keras")
                write_json(self.ckpt / "state.json", st)  # written last: the epoch counts once both exist
                log.info("epoch %d: loss %.4f val_loss %.4f val mAP %.4f (%.1fs)", epoch + 1, row["loss"],
                         val_loss, score, seconds)

        return Callback(*args, **kwargs)


def _optimizer(cfg: TrainConfig, images: int):
    """Adam (the study's), or AdamW with --weight-decay; --schedule cosine decays the rate to 0."""
    import keras

    lr = cfg.lr
    if cfg.schedule == "cosine":
        steps = cfg.epochs * -(-images // cfg.batch)
        lr = keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=steps)
    elif cfg.schedule != "constant":
        raise UserError(f"--schedule must be constant or cosine, not {cfg.schedule!r}")
    if cfg.weight_decay > 0:
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay)
    return keras.optimizers.Adam(lr)


def fit_unit(run: Run, unit: str, title: str, build, columns: list[int] | None, cfg: TrainConfig,
             train: SplitArrays, val: SplitArrays, strategy, seed: int, after=None) -> None:
    """Train one model file to completion (or continue it); skip it when already finished."""
    import keras

    from toolkit.losses import make_loss

    if run.is_done(unit):
        log.info("%s: already trained, skipped", unit)
        print(f"{title}: already trained, skipped")
        return
    ckpt = run.checkpoint_dir(unit)
    ckpt.mkdir(parents=True, exist_ok=True)
    state_path = ckpt / "state.json"
    with strategy.scope():
        if state_path.is_file() and (ckpt / "last.keras").is_file():
            state = json.loads(state_path.read_text())
            model = keras.models.load_model(ckpt / "last.keras")
            print(f"{title}: resuming after epoch {state['epoch']}")
            log.info("%s: resuming after epoch %d", unit, state["epoch"])
        else:
            state = {"epoch": 0, "best": -1.0, "best_epoch": 0, "wait": 0, "seconds": 0.0, "history": []}
            model = build()
            labels = train.labels if columns is None else train.labels[:, columns]
            mask = train.mask if columns is None else train.mask[:, columns]
            model.compile(optimizer=_optimizer(cfg, len(train.ids)), loss=make_loss(cfg.loss, labels, mask))
            print(f"{title}: training")
    if state["epoch"] < cfg.epochs and not state.get("stopped"):
        data = make_dataset(train, cfg.batch, training=True, seed=seed + state["epoch"], augment=cfg.augment,
                            columns=columns)
        model.fit(data, epochs=cfg.epochs, initial_epoch=state["epoch"], shuffle=False,
                  verbose=1 if sys.stdout.isatty() else 2,
                  callbacks=[_EpochEnd(ckpt, state, val, columns, cfg.patience)])
    model.load_weights(ckpt / "best.weights.h5")
    if after is not None:
        after(model)
    save_model_atomic(model, run.model_path(unit))
    write_json(run.record_path(unit), {
        "unit": unit, "columns": columns, "epochs": state["epoch"], "best_epoch": state["best_epoch"],
        "val_map": state["best"], "seconds": round(state["seconds"], 2), "train_images": len(train.ids),
        "params": int(model.count_params()), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "settings": {"epochs": cfg.epochs, "lr": cfg.lr, "loss": cfg.loss, "batch": cfg.batch,
                     "patience": cfg.patience, "weight_decay": cfg.weight_decay, "schedule": cfg.schedule},
        "history": state["history"],
    })
    shutil.rmtree(ckpt, ignore_errors=True)
    log.info("%s: done, best epoch %d val %.4f", unit, state["best_epoch"], state["best"])


def _freeze_trunk(model) -> None:
    from toolkit.models import TRUNK_LAYERS

    for name in TRUNK_LAYERS:
        model.get_layer(name).trainable = False


def _train_units(run: Run, cfg: TrainConfig, train: SplitArrays, val: SplitArrays) -> None:
    import keras

    from toolkit.models import build_cnn, copy_trunk

    strategy = _strategy(cfg)
    n = len(cfg.classes)
    if cfg.arch == "multioutput":
        fit_unit(run, MULTI, "multioutput", lambda: build_cnn(cfg.model, n, "multioutput"), None, cfg,
                 train, val, strategy, cfg.seed)
        return
    if cfg.arch not in ("independent", "shared"):
        raise UserError(f"--arch must be independent, shared or multioutput, not {cfg.arch!r}")
    heads_from = 0
    trunk_source = None
    if cfg.arch == "shared":
        if cfg.trunk == "multitask":
            fit_unit(run, TRUNK, "shared trunk (all labels)", lambda: build_cnn(cfg.model, n, "trunk"), None,
                     cfg, train, val, strategy, cfg.seed)
            trunk_source = run.model_path(TRUNK)
        elif cfg.trunk == "first-class":
            first = cfg.classes[0]
            fit_unit(run, first, f"class 1/{n} {first} (trunk + head)", lambda: build_cnn(cfg.model, 1, first),
                     [0], cfg.for_class(first), train, val, strategy, cfg.seed, after=_freeze_trunk)
            trunk_source, heads_from = run.model_path(first), 1
        else:
            raise UserError(f"--trunk must be first-class or multitask, not {cfg.trunk!r}")
        trunk = keras.models.load_model(trunk_source, compile=False)
    for k in range(heads_from, n):
        name = cfg.classes[k]

        def build(name=name):
            model = build_cnn(cfg.model, 1, name)
            if cfg.arch == "shared":
                copy_trunk(trunk, model, freeze=True)
            return model

        kind = "head on frozen trunk" if cfg.arch == "shared" else "own CNN"
        unit_cfg = cfg.for_class(name)
        fit_unit(run, name, f"class {k + 1}/{n} {name} ({kind})", build, [k], unit_cfg, train, val, strategy,
                 unit_cfg.seed + k)


def predict_run(run: Run, images: np.ndarray, models: list | None = None) -> np.ndarray:
    """Sigmoid scores (N, C) of a finished run on uint8 images."""
    models = models if models is not None else run.load_models()
    return np.concatenate([_predict(m, images) for m in models], axis=1)


def finalize(run: Run, cfg: TrainConfig, val: SplitArrays) -> dict:
    """Thresholds (best F1 per class on val), metrics.json, history.csv."""
    scores = predict_run(run, val.images)
    valid = val.mask > 0
    thresholds = best_f1_thresholds(val.labels, scores, valid)
    write_json(run.path / "thresholds.json", {
        "classes": cfg.classes, "thresholds": [float(t) for t in thresholds],
        "chosen_on": cfg.val_split, "rule": "per-class threshold maximising F1 on the val split",
    })
    records = [run.record(u) for u in ([TRUNK] if run.is_done(TRUNK) else []) + run.units(cfg)]
    metrics = summarize(val.labels, scores, valid, thresholds)
    metrics.update({
        "split": cfg.val_split, "arch": cfg.arch, "classes": cfg.classes,
        "train_seconds": round(sum(r["seconds"] for r in records), 2),
        "epochs": {r["unit"]: r["epochs"] for r in records},
        "params": int(sum(r["params"] for r in records if r["unit"] != TRUNK)),
    })
    write_json(run.path / "metrics.json", metrics)
    lines = ["unit,epoch,loss,val_loss,val_map,seconds"]
    for r in records:
        lines += [f"{r['unit']},{h['epoch']},{h['loss']:.6f},{h['val_loss']:.6f},{h['val_map']:.6f},{h['seconds']}"
                  for h in r["history"]]
    write_atomic(run.path / "history.csv", "\n".join(lines) + "\n")
    return metrics


def load_run_split(cfg: TrainConfig, split: str):
    """A split with the run's classes, in order; classes added from another root read their labels there."""
    if not cfg.classes:
        data = load_split(cfg.root, split, labels=cfg.labels)
        cfg.classes = data.classes
        return data
    base = [c for c in cfg.classes if c not in cfg.class_roots]
    data = load_split(cfg.root, split, labels=cfg.labels, classes=base)
    for name, root in cfg.class_roots.items():
        extra = load_split(root, split, classes=[name], check_images=False)  # images: the run's root
        if set(extra.ids) != set(data.ids):
            raise UserError(f"{root}: the image ids of {name}_{split}.txt differ from the run's split {split!r}")
        data.labels[name] = extra.labels[name].reindex(data.labels.index)
        data.difficult[name] = extra.difficult[name].reindex(data.labels.index)
    data.labels, data.difficult = data.labels[cfg.classes], data.difficult[cfg.classes]
    return data


def load_training_data(cfg: TrainConfig) -> tuple[SplitArrays, SplitArrays]:
    train_split = load_run_split(cfg, cfg.split)
    val_split = load_run_split(cfg, cfg.val_split)
    kwargs = {"difficult": cfg.difficult, "on_bad_image": cfg.on_bad_image}
    return (load_arrays(train_split, cfg.model.img_size, **kwargs),
            load_arrays(val_split, cfg.model.img_size, **kwargs))


def _configure_keras(cfg: TrainConfig) -> None:
    import keras

    keras.utils.set_random_seed(cfg.seed)
    keras.mixed_precision.set_global_policy("mixed_float16" if cfg.mixed_precision else "float32")


def start(cfg: TrainConfig, out: str | Path, force: bool = False) -> dict:
    """A new run into ``out`` (refused when it exists, unless ``force``)."""
    run = Run(Path(out))
    if run.path.exists() and any(run.path.iterdir()):
        if not force:
            raise UserError(f"{run.path}: run folder exists (use --resume to continue it, --force to replace it)")
        shutil.rmtree(run.path)
    train, val = load_training_data(cfg)  # validates the data before anything is written
    run.path.mkdir(parents=True, exist_ok=True)
    run.models_dir.mkdir(exist_ok=True)
    write_json(run.config_path, cfg.to_dict())
    return _train_and_finalize(run, cfg, train, val)


def resume(path: str | Path) -> dict:
    run = Run(Path(path))
    cfg = run.config()
    train, val = load_training_data(cfg)
    return _train_and_finalize(run, cfg, train, val)


def _train_and_finalize(run: Run, cfg: TrainConfig, train: SplitArrays, val: SplitArrays) -> dict:
    _setup_logging(run)
    _configure_keras(cfg)
    log.info("training %s on %s/%s (%d images), val %s (%d images)", cfg.arch, cfg.root, cfg.split,
             len(train.ids), cfg.val_split, len(val.ids))
    _train_units(run, cfg, train, val)
    return finalize(run, cfg, val)
