"""One unit's progress and its checkpoint folder: what resume reads and every epoch writes.

    RUN/checkpoints/UNIT/last.keras         the model after the last finished epoch (with its optimizer)
    RUN/checkpoints/UNIT/best.weights.h5    the weights of the best epoch so far
    RUN/checkpoints/UNIT/state.json         UnitState, written last: an epoch counts once all three exist
"""

from __future__ import annotations

import json
import logging
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

    def end_epoch(self, loss: float, val_loss: float, score: float, seconds: float, patience: int) -> bool:
        """Record the epoch just finished; returns whether it is the best so far."""
        self.epoch += 1
        self.seconds += seconds
        self.history.append({"epoch": self.epoch, "loss": loss, "val_loss": val_loss, "val_map": score,
                             "seconds": round(seconds, 2)})
        log.info("epoch %d: loss %.4f val_loss %.4f val mAP %.4f (%.1fs)", self.epoch, loss, val_loss, score, seconds)
        if score > self.best:
            self.best, self.best_epoch, self.wait = score, self.epoch, 0
            return True
        self.wait += 1
        self.stopped = bool(patience) and self.wait >= patience
        return False

    def done(self, epochs: int) -> bool:
        return self.stopped or self.epoch >= epochs


@dataclass
class Checkpoint:
    folder: Path

    @property
    def last(self) -> Path:
        return self.folder / "last.keras"

    @property
    def best(self) -> Path:
        return self.folder / "best.weights.h5"

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    def exists(self) -> bool:
        return self.state_path.is_file() and self.last.is_file()

    def load(self):
        """(model, state) after the last finished epoch."""
        import keras

        import toolkit.losses  # noqa: F401  registers the loss for deserialisation

        return keras.models.load_model(self.last), UnitState(**json.loads(self.state_path.read_text()))

    def save(self, model, state: UnitState, improved: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if improved:
            tmp = self.folder / ".best.tmp.weights.h5"
            model.save_weights(tmp)
            tmp.replace(self.best)
        save_model_atomic(model, self.last)
        write_json(self.state_path, asdict(state))  # written last: the epoch counts once both exist
