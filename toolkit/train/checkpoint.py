"""One unit's progress and its checkpoint folder: what resume reads and every epoch writes.

    RUN/checkpoints/UNIT/last-EPOCH.keras        the model after the last finished epoch (with its optimizer)
    RUN/checkpoints/UNIT/best-EPOCH.weights.h5   the weights of the best epoch so far
    RUN/checkpoints/UNIT/state.json              UnitState and the two files' names, written last
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from toolkit.atomic import save_model_atomic, write_json

log = logging.getLogger("mledge.train")


@dataclass
class UnitState:
    """Where a unit's training stands: epochs done, the best val score and when, early stopping."""

    epoch: int = 0
    best: float = -1.0
    best_epoch: int = 0
    wait: int = 0  # epochs since the best
    seconds: float = 0.0
    stopped: bool = False  # early stopping fired
    history: list[dict] = field(default_factory=list)

    def end_epoch(self, loss: float, val_loss: float | None, score: float | None, seconds: float,
                  patience: int) -> bool:
        """Record the epoch just finished; returns whether it is the best so far. A final run has no
        val split (score None): its newest epoch is the one kept."""
        self.epoch += 1
        self.seconds += seconds
        self.history.append({"epoch": self.epoch, "loss": loss, "val_loss": val_loss, "val_map": score,
                             "seconds": round(seconds, 2)})
        if score is None:
            log.info("epoch %d: loss %.4f (%.1fs)", self.epoch, loss, seconds)
            self.best_epoch = self.epoch
            return True
        log.info("epoch %d: loss %.4f val_loss %.4f val mAP %.4f (%.1fs)", self.epoch, loss, val_loss, score, seconds)
        if not self.best_epoch or score > self.best:  # the first epoch is the best so far, whatever its score
            self.best, self.best_epoch, self.wait = score, self.epoch, 0
            return True
        self.wait += 1
        self.stopped = bool(patience) and self.wait >= patience
        return False

    def done(self, epochs: int) -> bool:
        return self.stopped or self.epoch >= epochs


@dataclass
class Checkpoint:
    """Each epoch writes new files (named by epoch), then state.json naming them, then removes the
    files it no longer names: a kill at any moment leaves a state.json whose files exist and belong
    to it, and resume continues from there."""

    folder: Path

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    def exists(self) -> bool:
        return self.state_path.is_file()

    def _files(self) -> dict:
        return json.loads(self.state_path.read_text())["files"]

    @property
    def best(self) -> Path:
        return self.folder / self._files()["best"]

    def load(self):
        """(model, state) after the last finished epoch."""
        import keras

        import toolkit.losses  # noqa: F401  registers the loss for deserialisation

        data = json.loads(self.state_path.read_text())
        files = data.pop("files")
        return keras.models.load_model(self.folder / files["last"]), UnitState(**data)

    def save(self, model, state: UnitState, improved: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        files = {"last": f"last-{state.epoch:05d}.keras",
                 "best": f"best-{state.epoch:05d}.weights.h5" if improved else self._files()["best"]}
        save_model_atomic(model, self.folder / files["last"])
        if improved:
            tmp = self.folder / f".{files['best']}.tmp.weights.h5"
            model.save_weights(tmp)
            os.replace(tmp, self.folder / files["best"])
        write_json(self.state_path, {**asdict(state), "files": files})  # the switch: one rename
        for path in self.folder.iterdir():
            if path.name not in (*files.values(), self.state_path.name) and not path.name.startswith("."):
                path.unlink()
