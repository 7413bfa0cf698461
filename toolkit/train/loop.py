"""The epoch loop of one unit (one model file): build it or resume it, fit, score val after every
epoch, checkpoint, stop early, and leave the best epoch's model in RUN/models with its record."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from typing import Protocol

import keras
import numpy as np

from toolkit.atomic import save_model_atomic, write_json
from toolkit.config import TrainConfig
from toolkit.data.arrays import SplitArrays
from toolkit.data.pipeline import make_dataset, with_mixup
from toolkit.data.views import view_dataset
from toolkit.errors import UserError
from toolkit.losses import label_loss
from toolkit.metrics import mean_ap
from toolkit.predict import predict_batches
from toolkit.progress import Progress
from toolkit.run import Run
from toolkit.train.checkpoint import Checkpoint, UnitState
from toolkit.train.ema import averaged_weights
from toolkit.train.precision import with_policy

log = logging.getLogger("mledge.train")


@dataclass
class Unit:
    """One model file of a run and what it learns."""

    name: str  # its file stem in RUN/models: "model", a class name, or "_trunk"
    title: str  # how the console names it
    model_name: str  # the Keras model's name
    outputs: int
    columns: list[int] | None  # the label columns it learns; None: all of them
    cfg: TrainConfig  # the run's settings with the unit's own (classes retrain) applied
    seed: int
    freeze_trunk: bool = False  # shared, first-class trunk: the trained CNN's trunk is frozen before saving

    @property
    def epochs(self) -> int:
        """Epochs to train: the run's maximum, or in a final run the epochs its val run chose."""
        return self.cfg.final.epochs[self.name] if self.cfg.final else self.cfg.epochs

    def targets(self, arrays: SplitArrays) -> tuple[np.ndarray, np.ndarray]:
        if self.columns is None:
            return arrays.labels, arrays.mask
        return arrays.labels[:, self.columns], arrays.mask[:, self.columns]


class ModelFactory(Protocol):
    """How a run's units are made (from scratch, on a shared trunk, on a cached pretrained trunk)."""

    def build(self, unit: Unit) -> keras.Model:
        """A new, untrained model for the unit."""

    def finish(self, unit: Unit, model: keras.Model) -> keras.Model:
        """The trained model (best epoch's weights) -> the model file to save."""


def optimizer(cfg: TrainConfig, images: int):
    """Adam (the study's), or AdamW with --weight-decay; --schedule cosine decays the rate to 0; --ema
    keeps a moving average of the weights (train/ema.py)."""
    lr = cfg.lr
    if cfg.schedule == "cosine":
        steps = cfg.epochs * -(-images // cfg.batch)
        lr = keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=steps)
    elif cfg.schedule != "constant":
        raise UserError(f"--schedule must be constant or cosine, not {cfg.schedule!r}")
    ema = {"use_ema": True, "ema_momentum": cfg.ema} if cfg.ema else {}
    if cfg.weight_decay > 0:
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay, **ema)
    return keras.optimizers.Adam(lr, **ema)


def batches(cfg: TrainConfig, train: SplitArrays, seed: int, columns: list[int] | None):
    """Shuffled, augmented batches of ``columns`` (None: all); heads that train on a cached pretrained trunk
    see no pixels to augment (their augmented photos, --cache-views, are fixed views of the cache). A
    distilled run trains on the teacher's fixed views (labels, then the teacher's probabilities)."""
    if train.views is not None and train.views.taught:
        return view_dataset(train, cfg.batch, seed=seed, columns=columns, temperature=cfg.distill.temperature)
    if train.views is not None:
        ds = view_dataset(train, cfg.batch, seed=seed, columns=columns)
        return with_mixup(ds, seed, cfg.mixup) if cfg.mixup > 0 else ds
    augment = None if cfg.model.cached_trunk else cfg.augment
    return make_dataset(train, cfg.batch, training=True, seed=seed, augment=augment, columns=columns,
                        mixup=cfg.mixup)


def training_batches(unit: Unit, train: SplitArrays, epoch: int):
    return batches(unit.cfg, train, unit.seed + epoch, unit.columns)


def val_score(model, unit: Unit, val: SplitArrays | None) -> tuple[float | None, float | None]:
    """(score, val loss) of the unit's model on val; (None, None) in a final run, which trains on val."""
    if val is None:
        return None, None
    return score_probs(unit, model.loss, predict_batches(model, val.images), val)


def score_probs(unit: Unit, loss, probs: np.ndarray, val: SplitArrays) -> tuple[float, float]:
    """(score, val loss): mAP over the unit's columns, or -loss for a class without val positives.
    The val loss is the training loss's own kind (bce, asl, ...), so the two columns compare."""
    labels, mask = unit.targets(val)
    val_loss = float(label_loss(loss)(labels, probs, sample_weight=mask))
    score = mean_ap(labels, probs, mask > 0)
    return (score if np.isfinite(score) else -val_loss), val_loss


def open_unit(unit: Unit, models: ModelFactory, ckpt: Checkpoint, train: SplitArrays) -> tuple[keras.Model, UnitState]:
    """The unit's model and state: from its last checkpoint, or new and compiled. Call in the strategy's scope."""
    if ckpt.exists():
        model, state = ckpt.load()
        print(f"{unit.title}: resuming after epoch {state.epoch}")
        log.info("%s: resuming after epoch %d", unit.name, state.epoch)
        return model, state
    model = models.build(unit)
    model.compile(optimizer=optimizer(unit.cfg, train.total), loss=unit_loss(unit, train))
    return model, UnitState()


def unit_loss(unit: Unit, train: SplitArrays):
    from toolkit.losses import make_loss

    return make_loss(unit.cfg.loss, *unit.targets(train), distill=unit.cfg.distill,
                     smoothing=unit.cfg.label_smoothing)


class EpochProgress(keras.callbacks.Callback):
    """Photos/s and the time left within each epoch, every few seconds (toolkit/progress.py), on a
    terminal or in a log alike: Keras' own line (verbose=2) comes when the epoch ends, which at 100,000
    photos is many minutes away; its progress bar would tangle with these lines on a terminal."""

    def __init__(self, title: str, photos: int, batch: int, every: float = 5.0):
        super().__init__()
        self.title, self.photos, self.batch, self.every, self.progress = title, photos, batch, every, None

    def on_epoch_begin(self, epoch, logs=None):
        self.progress = Progress(f"{self.title} epoch {epoch + 1}/{self.params['epochs']}", self.photos, self.every)

    def on_train_batch_end(self, batch, logs=None):
        self.progress.update(min(self.photos, (batch + 1) * self.batch) - self.progress.done)

    def on_epoch_end(self, epoch, logs=None):
        self.progress.close()


class EpochEnd(keras.callbacks.Callback):
    """After each epoch: val score, the state, checkpoint (last + best), early stopping. With --ema the
    averaged weights are scored and kept as the best; the last checkpoint holds the raw ones."""

    def __init__(self, unit: Unit, state: UnitState, ckpt: Checkpoint, val: SplitArrays | None):
        super().__init__()
        self.unit, self.state, self.ckpt, self.val = unit, state, ckpt, val
        self.t0 = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        loss = float((logs or {}).get("loss", float("nan")))
        with averaged_weights(self.model):
            score, val_loss = val_score(self.model, self.unit, self.val)
            if self.state.end_epoch(loss, val_loss, score, time.time() - self.t0, self.unit.cfg.patience):
                self.ckpt.save_best(self.model, self.state)
        self.model.stop_training = self.state.stopped
        self.ckpt.save_last(self.model, self.state)


def fit_in_process(run: Run, unit: Unit, models: ModelFactory, train: SplitArrays, val: SplitArrays | None,
                   strategy) -> None:
    """Train one model file to completion (or continue it) with Keras' fit, on this process's devices."""
    ckpt = Checkpoint(run.checkpoint_dir(unit.name))
    with strategy.scope():
        model, state = open_unit(unit, models, ckpt, train)
    if not state.epoch:
        print(f"{unit.title}: training")
    if not state.done(unit.epochs):
        model.fit(training_batches(unit, train, state.epoch), epochs=unit.epochs, initial_epoch=state.epoch,
                  shuffle=False, verbose=2,
                  callbacks=[EpochProgress(unit.title, train.total, unit.cfg.batch), EpochEnd(unit, state, ckpt, val)])
    finish_unit(run, unit, models, model, ckpt, state, train)


def finish_unit(run: Run, unit: Unit, models: ModelFactory, model, ckpt: Checkpoint, state: UnitState,
                train: SplitArrays) -> None:
    """Best epoch's weights -> models/UNIT.keras, then its record (which marks it finished)."""
    model.load_weights(ckpt.best)
    save_unit(run, unit, models.finish(unit, model), state, train)
    shutil.rmtree(ckpt.folder, ignore_errors=True)


def save_unit(run: Run, unit: Unit, model: keras.Model, state: UnitState, train: SplitArrays, **extra) -> None:
    """The unit's finished model (float32) and its record, written last: the record marks it done."""
    model = with_policy(model)
    save_model_atomic(model, run.model_path(unit.name))
    cfg = unit.cfg
    write_json(run.record_path(unit.name), {
        "unit": unit.name, "columns": unit.columns, "epochs": state.epoch, "best_epoch": state.best_epoch,
        "val_map": None if cfg.final else state.best, "seconds": round(state.seconds, 2),
        "train_images": train.total,
        "params": int(model.count_params()), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "settings": {"epochs": cfg.epochs, "lr": cfg.lr, "loss": cfg.loss, "batch": cfg.batch,
                     "patience": cfg.patience, "weight_decay": cfg.weight_decay, "schedule": cfg.schedule,
                     "ema": cfg.ema, "label_smoothing": cfg.label_smoothing, "mixup": cfg.mixup,
                     "img_size": cfg.model.img_size},
        "history": state.history, **extra,
    })
    log.info("%s: done, kept epoch %d of %d", unit.name, state.best_epoch, state.epoch)
