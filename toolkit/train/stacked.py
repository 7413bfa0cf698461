"""Per-class models trained side by side (--stack N): an independent or shared run trains up to N
classes' models as the branches of one Keras model, so one decode and one augmentation of each batch
(and, for shared heads, one pass of the frozen trunk) feed them all.

The branches share no weights and each has its own loss; Adam updates every weight from its own
gradient, so a branch learns what it would learn alone on the same batches. Each keeps its own best
epoch and early stopping, and is saved as the same per-class model file as when classes train one by
one. When branches stop, they are saved and the stack goes on without them (the same layers, and
Adam's step count and moments carried over): a stopped class costs no more compute.

    RUN/checkpoints/_stack-DIGEST/last-EPOCH.keras             the stacked model after the last epoch
    RUN/checkpoints/_stack-DIGEST/best-EPOCH-UNIT.weights.h5   a branch's best epoch so far
    RUN/checkpoints/_stack-DIGEST/state.json                   its units, their states and files, written last
"""

from __future__ import annotations

import logging
import shutil
import time

import keras

from toolkit.config import TrainConfig
from toolkit.data.arrays import SplitArrays
from toolkit.models import HEAD_LAYERS, build_cnn_head, cnn_trunk
from toolkit.predict import predict_batches
from toolkit.run import Run
from toolkit.train.checkpoint import StackCheckpoint, UnitState, interrupted_stacks
from toolkit.train.fit import fit_unit
from toolkit.train.loop import (
    EpochProgress,
    ModelFactory,
    Unit,
    batches,
    optimizer,
    save_unit,
    score_probs,
    unit_loss,
)

log = logging.getLogger("mledge.train")


def plan(run: Run, cfg: TrainConfig, units: list[Unit]) -> list[list[Unit]]:
    """The units to train, in groups: first each interrupted stack whose units are all asked for
    (resume continues it, and saves those it had not saved yet), then the other pending units in
    order, --stack at a time, among units that can share a model (the run's settings, as many
    epochs). A unit with settings of its own (classes retrain) is a group alone."""
    asked = {u.name: u for u in units}
    groups = []
    for names in interrupted_stacks(run).values():
        if all(n in asked for n in names) and not all(run.is_done(n) for n in names):
            groups.append([asked.pop(n) for n in names])
    alike: dict[object, list[Unit]] = {}
    for unit in asked.values():
        if run.is_done(unit.name):
            print(f"{unit.title}: already trained, skipped")
        else:
            alike.setdefault(unit.epochs if unit.cfg is cfg else unit.name, []).append(unit)
    for same in alike.values():
        groups += [same[k : k + cfg.stack] for k in range(0, len(same), cfg.stack)]
    return groups


def fit_units(run: Run, cfg: TrainConfig, units: list[Unit], models: ModelFactory, train: SplitArrays,
              val: SplitArrays | None, strategy, trunk: keras.Model | None = None) -> None:
    """Train a run's per-class units, stacked by its --stack (one by one with 1, or under multiworker).
    ``trunk``: the frozen CNN a shared run's heads read, run once for the whole stack."""
    if cfg.stack <= 1 or cfg.strategy == "multiworker":
        for unit in units:
            fit_unit(run, unit, models, train, val, strategy)
        return
    for group in plan(run, cfg, units):
        if len(group) == 1:
            fit_unit(run, group[0], models, train, val, strategy)
        else:
            fit_stack(run, group, models, train, val, strategy, trunk)


def stack_model(units: list[Unit], models: ModelFactory, train: SplitArrays, trunk: keras.Model | None) -> keras.Model:
    """One input, one output per unit, named as the unit's model (a branch is model.get_layer(name))."""
    pixels = keras.Input(train.images.shape[1:], name="pixels")
    if trunk is None:
        outputs = [models.build(unit)(pixels) for unit in units]
    else:
        shared = cnn_trunk(trunk)
        shared.trainable = False
        features = shared(pixels)
        outputs = [build_cnn_head(u.cfg.model, features.shape[-1], u.outputs, u.model_name)(features) for u in units]
    return keras.Model(pixels, outputs, name="stack")


def stack_batches(units: list[Unit], train: SplitArrays, seed: int):
    """The run's batches once, each unit's label (and teacher) columns split off for its branch."""
    import tensorflow as tf

    c = train.labels.shape[1]
    taught = train.views is not None and train.views.taught
    cols = [u.columns + ([c + k for k in u.columns] if taught else []) for u in units]

    def split(x, y, m):
        return x, tuple(tf.gather(y, k, axis=1) for k in cols), tuple(tf.gather(m, k, axis=1) for k in cols)

    return batches(units[0].cfg, train, seed, None).map(split, num_parallel_calls=tf.data.AUTOTUNE)


class StackEpochEnd(keras.callbacks.Callback):
    """After each epoch: every branch is scored on val and steps its own state; training stops when
    one of them has stopped (fit_stack then goes on without it)."""

    def __init__(self, units: list[Unit], states: dict[str, UnitState], ckpt: StackCheckpoint,
                 val: SplitArrays | None, losses: list, group: list[str]):
        super().__init__()
        self.units, self.states, self.ckpt, self.val, self.losses = units, states, ckpt, val, losses
        self.group = group
        self.t0 = time.time()
        self.scorer = None

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.val is not None and self.scorer is None:
            self.scorer = keras.Model(self.model.inputs, keras.ops.concatenate(self.model.outputs, axis=1))
        probs = predict_batches(self.scorer, self.val.images) if self.val is not None else None
        active = [(k, u) for k, u in enumerate(self.units) if not self.states[u.name].done(u.epochs)]
        seconds = (time.time() - self.t0) / max(len(active), 1)
        improved = {}
        for k, unit in active:
            score, val_loss = (None, None) if probs is None else score_probs(unit, self.losses[k], probs[:, [k]],
                                                                              self.val)
            loss = float(logs.get(f"{unit.model_name}_loss", float("nan")))
            if self.states[unit.name].end_epoch(loss, val_loss, score, seconds, unit.cfg.patience, unit.name):
                improved[unit.name] = self.model.get_layer(unit.model_name)
        self.model.stop_training = any(self.states[u.name].done(u.epochs) for u in self.units)  # narrow, or end
        self.ckpt.save(self.model, self.states, improved, self.group)


def fit_stack(run: Run, units: list[Unit], models: ModelFactory, train: SplitArrays, val: SplitArrays | None,
              strategy, trunk: keras.Model | None) -> None:
    """Train ``units`` (same settings, as many epochs) as one stacked model, or continue them; save
    each branch's best epoch as its own model file as soon as the branch stops."""
    names = [u.name for u in units]
    ckpt = StackCheckpoint.of(run, names)
    losses = [unit_loss(u, train) for u in units]
    with strategy.scope():
        if ckpt.exists():
            model, states = ckpt.load()
            group = ckpt.group()
            print(f"{len(units)} classes stacked ({', '.join(names)}): resuming after epoch "
                  f"{max(s.epoch for s in states.values())}")
        else:
            model, states, group = stack_model(units, models, train, trunk), {n: UnitState() for n in names}, names
            model.compile(optimizer=optimizer(units[0].cfg, len(train.ids)), loss=losses)
            print(f"{len(units)} classes stacked ({', '.join(names)}): training")
    log.info("stack of %d: %s", len(units), ", ".join(names))
    while True:
        stopped = [u for u in units if states[u.name].done(u.epochs)]
        for unit in stopped:
            if run.is_done(unit.name):  # saved before an interruption
                print(f"{unit.title}: already trained, skipped")
                continue
            branch = model.get_layer(unit.model_name)
            branch.load_weights(ckpt.best(unit.name))
            whole = models.finish(unit, branch if trunk is None else on_trunk(unit, branch, models))
            save_unit(run, unit, whole, states[unit.name], train, stacked_with=group)
        if len(stopped) == len(units):
            break
        if stopped:
            with strategy.scope():
                model, units, losses, ckpt = narrow(run, model, units, states, losses, ckpt, group, len(train.ids))
        epoch = max(states[u.name].epoch for u in units)
        model.fit(stack_batches(units, train, units[0].cfg.seed + epoch), epochs=units[0].epochs, initial_epoch=epoch,
                  shuffle=False, verbose=2,
                  callbacks=[EpochProgress(f"stack of {len(units)}", train.total, units[0].cfg.batch),
                             StackEpochEnd(units, {u.name: states[u.name] for u in units}, ckpt, val, losses, group)])
    shutil.rmtree(ckpt.folder, ignore_errors=True)


def narrow(run: Run, model: keras.Model, units: list[Unit], states: dict[str, UnitState], losses: list,
           ckpt: StackCheckpoint, group: list[str], images: int):
    """The stack without its stopped branches: the same layers (weights, dropout seeds) under a new
    optimizer that carries Adam's step count and moments over, so the others go on as they would
    have. Its checkpoint replaces the old one (their best epochs' files are handed over)."""
    keep = [k for k, u in enumerate(units) if not states[u.name].done(u.epochs)]
    kept, losses = [units[k] for k in keep], [losses[k] for k in keep]
    narrowed = keras.Model(model.inputs, [model.outputs[k] for k in keep], name="stack")
    narrowed.compile(optimizer=optimizer(kept[0].cfg, images), loss=losses)
    carry_optimizer(model.optimizer, narrowed.optimizer, narrowed.trainable_variables)
    new = StackCheckpoint.of(run, [u.name for u in kept])
    new.save(narrowed, {u.name: states[u.name] for u in kept}, {}, group,
             inherited={u.name: ckpt.best(u.name) for u in kept})
    shutil.rmtree(ckpt.folder, ignore_errors=True)
    print(f"{', '.join(u.name for u in units if u not in kept)} stopped; the stack goes on with "
          f"{', '.join(u.name for u in kept)}")
    return narrowed, kept, losses, new


def carry_optimizer(old, new, variables: list) -> None:
    """Build ``new`` (Adam or AdamW, maybe under a float16 loss scale) for ``variables``, a subset of
    ``old``'s, with ``old``'s step count (the cosine schedule's position), loss scale and moments."""
    new.build(variables)
    for name in ("dynamic_scale", "step_counter"):  # LossScaleOptimizer's own state
        if hasattr(old, name):
            getattr(new, name).assign(getattr(old, name))
    old, new = getattr(old, "inner_optimizer", old), getattr(new, "inner_optimizer", new)
    new.iterations.assign(old.iterations)
    for slots in ("_momentums", "_velocities", "_velocity_hats"):
        if getattr(old, slots, None):
            for v in variables:
                getattr(new, slots)[new._get_variable_index(v)].assign(getattr(old, slots)[old._get_variable_index(v)])


def on_trunk(unit: Unit, head: keras.Model, models: ModelFactory) -> keras.Model:
    """A shared run's head put back on the frozen trunk: the whole per-class CNN."""
    whole = models.build(unit)
    for name in HEAD_LAYERS:
        whole.get_layer(name).set_weights(head.get_layer(name).get_weights())
    return whole

