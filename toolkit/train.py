"""Training for the three architectures, with per-epoch checkpoints, early stopping on val mAP and
resume. Each model file is a "unit" (the multioutput model, or one class's CNN): a finished unit is
never trained again, an unfinished one continues from its last finished epoch."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from edge.predictor import sigmoid
from toolkit.atomic import save_model_atomic, write_atomic, write_json
from toolkit.config import TrainConfig
from toolkit.data.pipeline import SplitArrays, load_arrays, make_dataset
from toolkit.data.voc import load_split
from toolkit.errors import UserError
from toolkit.metrics import best_f1_thresholds, mean_ap, summarize
from toolkit.models import (
    ARCHITECTURES,
    BACKBONE_LAYER,
    assemble,
    build_head,
    build_model,
    copy_trunk,
    pretrained_prefix,
)
from toolkit.run import MULTI, TRUNK, Run

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
    if cfg.strategy == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise UserError("--strategy multiworker needs TF_CONFIG (the cluster and this task) in the environment")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if cfg.strategy != "default":
        raise UserError(f"--strategy must be default, mirrored or multiworker, not {cfg.strategy!r}")
    return tf.distribute.get_strategy()


def _predict(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """Inference in batches through one traced graph (several times faster than eager calls on a CPU)."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, *images.shape[1:]], tf.float32)
    forward = tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False)
    out = [np.asarray(forward(images[i : i + batch].astype(np.float32)), dtype=np.float32)
           for i in range(0, len(images), batch)]
    return np.concatenate(out)


def _val_score(model, val: SplitArrays, columns) -> tuple[float, float]:
    """(score, val loss): mAP over the unit's columns, or -loss for a class without val positives."""
    labels, mask = val.labels, val.mask
    if columns is not None:
        labels, mask = labels[:, columns], mask[:, columns]
    probs = np.clip(_predict(model, val.images), 1e-7, 1 - 1e-7)
    val_loss = float(-((labels * np.log(probs) + (1 - labels) * np.log(1 - probs)) * mask).sum() / max(mask.sum(), 1))
    score = mean_ap(labels, probs, mask > 0)
    return (score if np.isfinite(score) else -val_loss), val_loss


def _end_epoch(state: dict, epoch: int, loss: float, score: float, val_loss: float, seconds: float,
               patience: int) -> tuple[bool, bool]:
    """Update the unit's state after an epoch; returns (improved, stop)."""
    state["history"].append({"epoch": epoch + 1, "loss": loss, "val_loss": val_loss, "val_map": score,
                             "seconds": round(seconds, 2)})
    state["epoch"], state["seconds"] = epoch + 1, state["seconds"] + seconds
    log.info("epoch %d: loss %.4f val_loss %.4f val mAP %.4f (%.1fs)", epoch + 1, loss, val_loss, score, seconds)
    if score > state["best"]:
        state["best"], state["best_epoch"], state["wait"] = score, epoch + 1, 0
        return True, False
    state["wait"] += 1
    stop = bool(patience) and state["wait"] >= patience
    state["stopped"] = stop
    return False, stop


def _save_epoch(model, ckpt: Path, state: dict, improved: bool) -> None:
    if improved:
        tmp = ckpt / ".best.tmp.weights.h5"
        model.save_weights(tmp)
        tmp.replace(ckpt / "best.weights.h5")
    save_model_atomic(model, ckpt / "last.keras")
    write_json(ckpt / "state.json", state)  # written last: the epoch counts once both exist


class _EpochEnd(keras.callbacks.Callback):
    """After each epoch: val score, checkpoint (last + best), state file, early stopping."""

    def __init__(self, ckpt: Path, state: dict, val: SplitArrays, columns, patience: int):
        super().__init__()
        self.ckpt, self.state, self.val, self.columns, self.patience = ckpt, state, val, columns, patience
        self.t0 = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        score, val_loss = _val_score(self.model, self.val, self.columns)
        loss = float((logs or {}).get("loss", float("nan")))
        improved, stop = _end_epoch(self.state, epoch, loss, score, val_loss, time.time() - self.t0, self.patience)
        self.model.stop_training = stop
        _save_epoch(self.model, self.ckpt, self.state, improved)


def _optimizer(cfg: TrainConfig, images: int):
    """Adam (the study's), or AdamW with --weight-decay; --schedule cosine decays the rate to 0."""
    lr = cfg.lr
    if cfg.schedule == "cosine":
        steps = cfg.epochs * -(-images // cfg.batch)
        lr = keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=steps)
    elif cfg.schedule != "constant":
        raise UserError(f"--schedule must be constant or cosine, not {cfg.schedule!r}")
    if cfg.weight_decay > 0:
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay)
    return keras.optimizers.Adam(lr)


def _training_data(train: SplitArrays, cfg: TrainConfig, seed: int, columns):
    """Shuffled, augmented batches; heads that train on a cached pretrained trunk see no pixels to augment."""
    augment = None if cfg.model.cached_trunk else cfg.augment
    return make_dataset(train, cfg.batch, training=True, seed=seed, augment=augment, columns=columns)


def fit_unit(run: Run, unit: str, title: str, build, columns: list[int] | None, cfg: TrainConfig,
             train: SplitArrays, val: SplitArrays, strategy, seed: int, after=None) -> None:
    """Train one model file to completion (or continue it); skip it when already finished."""
    from toolkit.losses import make_loss

    if run.is_done(unit):
        log.info("%s: already trained, skipped", unit)
        print(f"{title}: already trained, skipped")
        return
    if cfg.strategy == "multiworker":
        return fit_unit_multiworker(run, unit, title, build, columns, cfg, train, val, strategy, seed, after)
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
        data = _training_data(train, cfg, seed + state["epoch"], columns)
        model.fit(data, epochs=cfg.epochs, initial_epoch=state["epoch"], shuffle=False,
                  verbose=1 if sys.stdout.isatty() else 2,
                  callbacks=[_EpochEnd(ckpt, state, val, columns, cfg.patience)])
    _finish_unit(run, unit, model, ckpt, state, columns, cfg, train, after)


def _finish_unit(run: Run, unit: str, model, ckpt: Path, state: dict, columns, cfg: TrainConfig,
                 train: SplitArrays, after=None) -> None:
    """Best epoch's weights -> models/UNIT.keras, then its record (which marks it finished)."""
    model.load_weights(ckpt / "best.weights.h5")
    if after is not None:
        model = after(model) or model  # may return the model to keep (a probe's head -> the full model)
    save_model_atomic(model, run.model_path(unit))
    write_json(run.record_path(unit), {
        "unit": unit, "columns": columns, "epochs": state["epoch"], "best_epoch": state["best_epoch"],
        "val_map": state["best"], "seconds": round(state["seconds"], 2), "train_images": len(train.ids),
        "params": int(model.count_params()), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "settings": {"epochs": cfg.epochs, "lr": cfg.lr, "loss": cfg.loss, "batch": cfg.batch,
                     "patience": cfg.patience, "weight_decay": cfg.weight_decay, "schedule": cfg.schedule,
                     "img_size": cfg.model.img_size},
        "history": state["history"],
    })
    shutil.rmtree(ckpt, ignore_errors=True)
    log.info("%s: done, best epoch %d val %.4f", unit, state["best_epoch"], state["best"])


def is_chief() -> bool:
    """In a TF_CONFIG cluster: the chief, or worker 0 when there is no chief. Alone: True."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return int(task.get("index", 0)) == 0


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def fit_unit_multiworker(run: Run, unit: str, title: str, build, columns, cfg: TrainConfig, train: SplitArrays,
                         val: SplitArrays, strategy, seed: int, after=None) -> None:
    """One unit under MultiWorkerMirroredStrategy with a training step of our own: Keras 3's fit fails
    under this strategy (keras-team/keras#20585). --batch is the global batch. Every worker evaluates
    val on its own (identical) replica, so early stopping agrees without talking; only the chief writes
    checkpoints and the RUN. A restarted cluster continues from the chief's last checkpoint."""
    import tensorflow as tf

    from toolkit.losses import make_loss

    chief = is_chief()
    ckpt = run.checkpoint_dir(unit)
    state_path = ckpt / "state.json"
    labels = train.labels if columns is None else train.labels[:, columns]
    mask = train.mask if columns is None else train.mask[:, columns]
    with strategy.scope():
        if state_path.is_file() and (ckpt / "last.keras").is_file():
            state = json.loads(state_path.read_text())
            model = keras.models.load_model(ckpt / "last.keras")
            print(f"{title}: resuming after epoch {state['epoch']}")
        else:
            state = {"epoch": 0, "best": -1.0, "best_epoch": 0, "wait": 0, "seconds": 0.0, "history": []}
            model = build()
            model.compile(optimizer=_optimizer(cfg, len(train.ids)), loss=make_loss(cfg.loss, labels, mask))
            print(f"{title}: training on {strategy.num_replicas_in_sync} replicas")
    loss_fn, optimizer = model.loss, model.optimizer
    steps = -(-len(train.ids) // cfg.batch)
    data = _training_data(train, cfg, seed + state["epoch"], columns).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    iterator = iter(strategy.experimental_distribute_dataset(data.with_options(options)))
    classes = float(labels.shape[1])

    @tf.function
    def train_step(iterator):
        def step(x, y, m):
            with tf.GradientTape() as tape:
                probs = model(x, training=True)
                per_example = tf.reduce_sum(loss_fn.call(y, probs) * m, axis=1) / classes
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=cfg.batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(step, args=next(iterator)), axis=None)

    if chief:
        ckpt.mkdir(parents=True, exist_ok=True)
    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.time()
        loss = sum(float(train_step(iterator)) for _ in range(steps)) / steps
        score, val_loss = _val_score(model, val, columns)
        improved, stop = _end_epoch(state, epoch, loss, score, val_loss, time.time() - t0, cfg.patience)
        print(f"{title}: epoch {epoch + 1}/{cfg.epochs} loss {loss:.4f} val mAP {score:.4f}", flush=True)
        if chief:
            _save_epoch(model, ckpt, state, improved)
        if stop:
            break
    print(f"{title}: final weights sha256 {weights_digest(model)}", flush=True)
    if chief:
        _finish_unit(run, unit, model, ckpt, state, columns, cfg, train, after)


def _freeze_trunk(model, cfg: TrainConfig) -> None:
    for name in cfg.model.trunk_layers:
        model.get_layer(name).trainable = False


def _train_units(run: Run, cfg: TrainConfig, train: SplitArrays, val: SplitArrays,
                 only: list[str] | None = None, stage: str = "all") -> None:
    """Train the run's units, or only the classes in ``only``; ``stage`` trunk|heads splits shared
    training so a job array can train the trunk once and the heads in parallel."""
    strategy = _strategy(cfg)
    n = len(cfg.classes)
    if cfg.arch == "shared" and cfg.model.pretrained and (cfg.model.finetune_blocks or not cfg.model.freeze_backbone):
        raise UserError("shared keeps one frozen pretrained trunk for every class; to fine-tune the backbone use "
                        "--arch multioutput (or independent)")
    if cfg.model.cached_trunk:  # a frozen pretrained start runs once; every head trains on its output
        train, val, build, after = _cached_trunk(cfg, train, val)
    else:
        after = None

        def build(outputs: int, name: str, model_cfg=cfg.model):
            return build_model(model_cfg, outputs, name)

    if cfg.arch == "multioutput":
        if only or stage != "all":
            raise UserError("--classes and --stage apply to independent and shared runs")
        fit_unit(run, MULTI, "multioutput", lambda: build(n, "multioutput"), None, cfg, train, val, strategy,
                 cfg.seed, after=after and (lambda head: after(head, n, "multioutput")))
        return
    if cfg.arch not in ARCHITECTURES:
        raise UserError(f"--arch must be one of {', '.join(ARCHITECTURES)}, not {cfg.arch!r}")
    unknown = sorted(set(only or []) - set(cfg.classes))
    if unknown:
        raise UserError(f"--classes: {', '.join(unknown)} not in this run (classes: {', '.join(cfg.classes)})")
    if stage not in ("all", "trunk", "heads") or (stage != "all" and cfg.arch != "shared"):
        raise UserError("--stage trunk|heads applies to shared runs only")
    heads_from = 0
    trunk = None
    if cfg.arch == "shared" and not cfg.model.pretrained:  # a pretrained trunk is shared as it comes
        if cfg.trunk not in ("first-class", "multitask"):
            raise UserError(f"--trunk must be first-class or multitask, not {cfg.trunk!r}")
        first = cfg.classes[0]
        first_cfg = cfg.for_class(first)
        trunk_unit = TRUNK if cfg.trunk == "multitask" else first
        heads_from = 0 if cfg.trunk == "multitask" else 1
        if stage == "trunk" or (stage == "all" and (not only or trunk_unit in only)):
            if cfg.trunk == "multitask":
                fit_unit(run, TRUNK, "shared trunk (all labels)", lambda: build(n, "trunk"), None,
                         cfg, train, val, strategy, cfg.seed)
            else:
                fit_unit(run, first, f"class 1/{n} {first} (trunk + head)",
                         lambda: build(1, first, first_cfg.model), [0], first_cfg, train, val, strategy, cfg.seed,
                         after=lambda model: _freeze_trunk(model, cfg))
        if stage == "trunk":
            return
        if not run.is_done(trunk_unit):
            raise UserError(f"{run.path}: the shared trunk ({trunk_unit}) is not trained yet; "
                            f"train it first: mledge train --resume {run.path} --stage trunk")
        trunk = keras.models.load_model(run.model_path(trunk_unit), compile=False)
    for k in range(heads_from, n):
        name = cfg.classes[k]
        if only and name not in only:
            continue

        unit_cfg = cfg.for_class(name)

        def build_class(name=name, model_cfg=unit_cfg.model):
            model = build(1, name, model_cfg)
            if trunk is not None:
                copy_trunk(trunk, model, freeze=True, names=cfg.model.trunk_layers)
            return model

        kind = "head on frozen trunk" if cfg.arch == "shared" else "own CNN"
        if cfg.model.cached_trunk:
            kind = "head on the frozen pretrained trunk"
        fit_unit(run, name, f"class {k + 1}/{n} {name} ({kind})", build_class, [k], unit_cfg, train, val, strategy,
                 unit_cfg.seed + k, after=after and (lambda head, name=name: after(head, 1, name)))


def _cached_trunk(cfg: TrainConfig, train: SplitArrays, val: SplitArrays):
    """The frozen start of a pretrained backbone runs once per image; the heads (with the last blocks
    when fine-tuning) train on its cached output, and each trained head is put back on the backbone
    as a full model to save. Pixel augmentation is lost; a fine-tuned tail flips the activation maps."""
    prefix, backbone = pretrained_prefix(cfg.model)
    t0 = time.time()

    def cached(arrays: SplitArrays) -> SplitArrays:
        return SplitArrays(arrays.ids, _predict(prefix, arrays.images, batch=32), arrays.labels, arrays.mask)

    train_f, val_f = cached(train), cached(val)
    blocks = cfg.model.finetune_blocks
    what = f"activations before the last {blocks} blocks" if blocks else "features"
    log.info("%s of %d images in %.1fs", what, len(train.ids) + len(val.ids), time.time() - t0)
    print(f"pretrained {cfg.model.backbone} {what} of {len(train.ids) + len(val.ids)} images in "
          f"{time.time() - t0:.1f}s")

    def build(outputs: int, name: str, model_cfg=cfg.model):  # every head reads the run's cache
        return build_head(cfg.model, train_f.images.shape[1:], outputs, name, source=backbone)

    return train_f, val_f, build, lambda head, outputs, name: assemble(head, cfg.model, outputs, name)


def predict_run(run: Run, images: np.ndarray, models: list | None = None) -> np.ndarray:
    """Sigmoid scores (N, C) of a finished run on uint8 images."""
    models = models if models is not None else run.load_models()
    cfg = run.config()
    if cfg.arch == "shared" and cfg.model.pretrained:  # one frozen trunk for all: run it once, then each head
        features = _predict(models[0].get_layer(BACKBONE_LAYER), images)
        kernel, bias = (np.concatenate(w, axis=-1) for w in zip(*(m.get_layer("logits").get_weights() for m in models)))
        return sigmoid(features @ kernel + bias).astype(np.float32)
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
    return (load_arrays(train_split, cfg.model.pixels, **kwargs),
            load_arrays(val_split, cfg.model.pixels, **kwargs))


def _configure_keras(cfg: TrainConfig) -> None:
    keras.utils.set_random_seed(cfg.seed)
    keras.mixed_precision.set_global_policy("mixed_float16" if cfg.mixed_precision else "float32")


def init_run(cfg: TrainConfig, out: str | Path, force: bool = False, join: bool = False):
    """Create RUN and its config.json, written once: concurrent processes (a job array, the workers
    of a cluster) that ``join`` find it and check that their settings are the same."""
    run = Run(Path(out))
    if run.path.exists() and any(run.path.iterdir()) and not join:
        if not force:
            raise UserError(f"{run.path}: run folder exists (use --resume to continue it, --force to replace it)")
        shutil.rmtree(run.path)
    train, val = load_training_data(cfg)  # validates the data before anything is written
    run.models_dir.mkdir(parents=True, exist_ok=True)
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
    return _train_and_finalize(run, cfg, train, val, only, stage)


def resume(path: str | Path, only: list[str] | None = None, stage: str = "all") -> dict | None:
    run = Run(Path(path))
    cfg = run.config()
    train, val = load_training_data(cfg)
    return _train_and_finalize(run, cfg, train, val, only, stage)


def _train_and_finalize(run: Run, cfg: TrainConfig, train: SplitArrays, val: SplitArrays,
                        only: list[str] | None = None, stage: str = "all") -> dict | None:
    if is_chief():
        _setup_logging(run)
    _configure_keras(cfg)
    log.info("training %s on %s/%s (%d images), val %s (%d images)", cfg.arch, cfg.root, cfg.split,
             len(train.ids), cfg.val_split, len(val.ids))
    _train_units(run, cfg, train, val, only, stage)
    if not is_chief() or not all(run.is_done(u) for u in run.units(cfg)):
        return None
    return finalize(run, cfg, val)


def train_parallel(cfg: TrainConfig, out: str | Path, jobs: int, force: bool = False) -> dict:
    """--jobs N: N processes train disjoint sets of classes into one RUN (shared: the trunk first).
    One GPU per process when there are several; on CPU the cores are split between them."""
    import subprocess
    import sys

    if cfg.arch == "multioutput":
        raise UserError("--jobs applies to independent and shared runs (multioutput is one model)")
    run, _, _ = init_run(cfg, out, force=force)
    command = [sys.executable, "-m", "toolkit.cli", "train", "--resume", str(run.path)]
    logs = run.path / "jobs"
    logs.mkdir(exist_ok=True)

    def launch(args: list[str], k: int, gpus: list[str]) -> subprocess.Popen:
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[k % len(gpus)]
        else:
            env["TF_NUM_INTRAOP_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
            env["TF_NUM_INTEROP_THREADS"] = "1"
        out_file = open(logs / f"job-{k}.log", "w")  # noqa: SIM115  closed when the process is waited for
        proc = subprocess.Popen([*command, *args], stdout=out_file, stderr=subprocess.STDOUT, env=env)
        proc.log = out_file
        return proc

    def wait(procs: list) -> None:
        failed = []
        for proc in procs:
            if proc.wait() != 0:
                failed.append(f"{proc.log.name} (exit {proc.returncode})")
            proc.log.close()
        if failed:
            raise UserError(f"{run.path}: {len(failed)} job(s) failed, see {', '.join(failed)}; "
                            f"finished classes are kept (continue with --resume)")

    gpus = _visible_gpus()
    classes = list(cfg.classes)
    if cfg.arch == "shared":
        print("trunk: 1 job")
        wait([launch(["--stage", "trunk"], 0, gpus)])
        if cfg.trunk == "first-class":
            classes = classes[1:]
    groups = [classes[k::jobs] for k in range(jobs) if classes[k::jobs]]
    print(f"{len(classes)} classes in {len(groups)} parallel jobs (logs in {logs})")
    wait([launch(["--classes", ",".join(group), *(["--stage", "heads"] if cfg.arch == "shared" else [])], k, gpus)
          for k, group in enumerate(groups)])
    return resume(run.path)


def _visible_gpus() -> list[str]:
    """GPU indices from nvidia-smi, without starting TensorFlow in the parent process."""
    import subprocess

    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return [g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(k) for k, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
