"""``--ema DECAY``: an exponential moving average of the weights (Polyak averaging), kept by the
optimizer after every step; val scores it and the run keeps it.

A small CNN trained on few photos wanders: its val mAP moves from one epoch to the next, and the
best epoch is partly luck. The average of the last few hundred steps barely moves (bench-distill's
fresh-views row: 0.05 points of val mAP from epoch to epoch against 0.34 without), so the kept epoch
owes little to luck. The raw weights keep training (and are what --resume continues from); the
averaged ones are swapped in only to score and to keep the best epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras

from toolkit.config import TrainConfig
from toolkit.errors import UserError


def averaging_optimizer(model: keras.Model):
    """The model's optimizer when it keeps a moving average (``use_ema``), else None."""
    opt = getattr(model, "optimizer", None)
    opt = getattr(opt, "inner_optimizer", opt)  # a float16 run's LossScaleOptimizer wraps it
    return opt if getattr(opt, "use_ema", False) else None


@contextmanager
def averaged_weights(model: keras.Model) -> Iterator[None]:
    """Inside, the model holds its optimizer's moving averages (nothing changes without --ema); the
    raw weights come back on exit. Before the first step there is no average yet: the raw weights."""
    opt = averaging_optimizer(model)
    averages = getattr(opt, "_model_variables_moving_average", None) if opt else None
    if not averages:
        yield
        return
    pairs = list(zip(opt._trainable_variables, averages, strict=True))
    raw = [keras.ops.convert_to_numpy(var) for var, _ in pairs]
    for var, average in pairs:
        var.assign(average)
    try:
        yield
    finally:
        for (var, _), value in zip(pairs, raw, strict=True):
            var.assign(value)


def check_ema(cfg: TrainConfig) -> None:
    """Refuse, before any work, the trainings that score without swapping the average in."""
    if not cfg.ema:
        return
    if cfg.strategy == "multiworker":
        raise UserError("--ema: not with --strategy multiworker (its loop scores the raw weights)")
    if cfg.arch != "multioutput" and cfg.stack > 1:
        raise UserError(f"--ema: an {cfg.arch} run averages its models one at a time: add --stack 1")
