"""The model users ship: ``mledge train --final VAL_RUN --out RUN`` retrains the val run's settings on
its train and val splits together, each unit for the epochs the val run chose (its best epoch, on the
same learning-rate schedule), and keeps the val run's thresholds. No split is left to select on or to
score: the final run claims no val mAP, and its metrics.json says what it was trained on and which
run chose its epochs and thresholds."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from toolkit.config import Final, TrainConfig
from toolkit.errors import UserError
from toolkit.run import TRUNK, Run


def final_config(val_run: str | Path) -> TrainConfig:
    """The val run's settings with the epochs each of its units kept; refused for a run that is not
    finished or is final itself."""
    run = Run(Path(val_run))
    cfg = run.require_complete()
    if cfg.final:
        raise UserError(f"{run.path}: already a final run; give the val run it came from ({cfg.final.from_run})")
    metrics_path = run.path / "metrics.json"
    if not metrics_path.is_file():
        raise UserError(f"{metrics_path}: missing (the run was not finalized); run: mledge train --resume {run.path}")
    units = ([TRUNK] if run.is_done(TRUNK) else []) + run.units(cfg)
    epochs = {unit: int(run.record(unit)["best_epoch"]) for unit in units}
    metrics = json.loads(metrics_path.read_text())
    final = Final(str(run.path.resolve()), epochs, metrics["mAP_area"], metrics["mAP_voc07"])
    return replace(cfg, final=final)


def final_outputs(cfg: TrainConfig, images: int) -> tuple[dict, dict]:
    """(thresholds.json, the metrics.json entries) of a final run: the val run's thresholds, and what
    it was trained on instead of scores."""
    final = cfg.final
    chosen = json.loads((Path(final.from_run) / "thresholds.json").read_text())
    if chosen["classes"] != cfg.classes:
        raise UserError(f"{final.from_run}/thresholds.json: its classes differ from the run's")
    thresholds = {**chosen, "chosen_on": f"{chosen['chosen_on']} of {final.from_run}",
                  "rule": f"the val run's: {chosen['rule']}"}
    metrics = {
        "final": True, "trained_on": [cfg.split, cfg.val_split], "train_images": images,
        "thresholds": chosen["thresholds"],
        "note": "trained on the val split too: no held-out mAP; the val run's is what was measured",
        "from_run": final.from_run, "from_run_mAP_area": final.from_run_mAP_area,
        "from_run_mAP_voc07": final.from_run_mAP_voc07,
    }
    return thresholds, metrics
