"""The one door a unit is trained through: skipped when finished, else trained in this process
(train/loop.py) or across a TF_CONFIG cluster (train/multiworker.py, --strategy multiworker)."""

from __future__ import annotations

import logging

from toolkit.data.arrays import SplitArrays
from toolkit.run import Run
from toolkit.train.loop import ModelFactory, Unit, fit_in_process
from toolkit.train.multiworker import fit_unit_multiworker

log = logging.getLogger("mledge.train")


def fit_unit(run: Run, unit: Unit, models: ModelFactory, train: SplitArrays, val: SplitArrays | None,
             strategy) -> None:
    """Train one model file to completion (or continue it); skip it when already finished."""
    if run.is_done(unit.name):
        log.info("%s: already trained, skipped", unit.name)
        print(f"{unit.title}: already trained, skipped")
        return
    fit = fit_unit_multiworker if unit.cfg.strategy == "multiworker" else fit_in_process
    fit(run, unit, models, train, val, strategy)
