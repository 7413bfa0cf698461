"""Data-parallel training of one unit over a TF_CONFIG cluster (MultiWorkerMirroredStrategy), with a
training step of our own: Keras 3's fit fails under this strategy (keras-team/keras#20585)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from toolkit.config import TrainConfig
from toolkit.data.arrays import SplitArrays
from toolkit.progress import Progress
from toolkit.run import Run
from toolkit.train.checkpoint import Checkpoint
from toolkit.train.loop import ModelFactory, Unit, finish_unit, open_unit, training_batches, val_score


def is_chief() -> bool:
    """In a TF_CONFIG cluster: the chief, or worker 0 when there is no chief. Alone: True."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return int(task.get("index", 0)) == 0


def worker_shard() -> tuple[int, int]:
    """(this task's place, the number of tasks) in TF_CONFIG's cluster, the chief first: which shard
    of the training photos it decodes, caches and trains on. Alone: (0, 1)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster, task = config.get("cluster", {}), config.get("task", {})
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if task.get("type") == "chief":
        return 0, max(chiefs + workers, 1)
    return chiefs + int(task.get("index", 0)), max(chiefs + workers, 1)


def worker_cache(folder: Path, cfg: TrainConfig) -> Path:
    """Where this process keeps its decoded photos and maps: a cluster worker in a folder of its own
    (RUN/cache/worker-1-of-2), as each holds its own shard and is its files' only writer."""
    if cfg.strategy != "multiworker":
        return folder
    index, count = worker_shard()
    return folder / f"worker-{index}-of-{count}"


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def distributed_step(model, strategy, global_batch: int):
    """One optimizer step on the next global batch; returns the summed loss. ``--batch`` is the global
    batch: each replica's masked loss is averaged over it, so the replicas' gradients sum correctly."""
    import tensorflow as tf

    loss_fn, optimizer = model.loss, model.optimizer

    @tf.function
    def train_step(iterator):
        def step(x, y, m):
            with tf.GradientTape() as tape:
                probs = model(x, training=True)
                per_example = tf.reduce_sum(loss_fn.call(y, probs) * m, axis=1) / float(y.shape[1])
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
                # float16: Keras wrapped the optimizer in a LossScaleOptimizer, whose apply unscales the
                # gradients, so they must come from the scaled loss (scale_loss is 1x otherwise)
                scaled = optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(step, args=next(iterator)), axis=None)

    return train_step


def distributed_batches(unit: Unit, train: SplitArrays, epoch: int, strategy):
    """The global batches, endless. A worker with its own shard of the photos (train.shard) makes its
    replicas' batches from it alone: --batch / replicas photos each; a whole split is cut up by tf.data."""
    import tensorflow as tf

    if train.shard is None:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        data = training_batches(unit, train, epoch).repeat().with_options(options)
        return strategy.experimental_distribute_dataset(data)
    per_replica = max(1, unit.cfg.batch // strategy.num_replicas_in_sync)
    local = dataclasses.replace(unit, cfg=dataclasses.replace(unit.cfg, batch=per_replica))

    def shard_batches(_context: tf.distribute.InputContext):
        return training_batches(local, train, epoch).repeat()  # the worker's replicas take its batches in turn

    options = tf.distribute.InputOptions(experimental_replication_mode=tf.distribute.InputReplicationMode.PER_WORKER)
    return strategy.distribute_datasets_from_function(shard_batches, options)


def fit_unit_multiworker(run: Run, unit: Unit, models: ModelFactory, train: SplitArrays, val: SplitArrays | None,
                         strategy) -> None:
    """Every worker evaluates val on its own (identical) replica, so early stopping agrees without
    talking; only the chief writes checkpoints and the RUN. A restarted cluster continues from the
    chief's last checkpoint."""
    chief = is_chief()
    ckpt = Checkpoint(run.checkpoint_dir(unit.name))
    cfg = unit.cfg
    with strategy.scope():
        model, state = open_unit(unit, models, ckpt, train)
    if not state.epoch:
        print(f"{unit.title}: training on {strategy.num_replicas_in_sync} replicas")
    steps = -(-train.total // cfg.batch)
    iterator = iter(distributed_batches(unit, train, state.epoch, strategy))
    train_step = distributed_step(model, strategy, cfg.batch)
    while not state.done(unit.epochs):
        t0, loss = time.time(), 0.0
        progress = Progress(f"{unit.title} epoch {state.epoch + 1}/{unit.epochs}", train.total)
        for step in range(steps):
            loss += float(train_step(iterator)) / steps
            progress.update(min(train.total, (step + 1) * cfg.batch) - progress.done)
        progress.close()
        score, val_loss = val_score(model, unit, val)
        improved = state.end_epoch(loss, val_loss, score, time.time() - t0, cfg.patience)
        val_text = "" if score is None else f" val mAP {score:.4f}"
        print(f"{unit.title}: epoch {state.epoch}/{unit.epochs} loss {loss:.4f}{val_text}", flush=True)
        if chief:
            ckpt.save(model, state, improved)
    print(f"{unit.title}: final weights sha256 {weights_digest(model)}", flush=True)
    if chief:
        finish_unit(run, unit, models, model, ckpt, state, train)
