"""One unit's progress and its checkpoint folder: what resume reads and every epoch writes.

    RUN/checkpoints/UNIT/last-EPOCH.keras        the model after the last finished epoch (with its optimizer)
    RUN/checkpoints/UNIT/best-EPOCH.weights.h5   the weights of the best epoch so far
    RUN/checkpoints/UNIT/state.json              UnitState and the two files' names, written last
    RUN/checkpoints/_stack-DIGEST/              the same for classes trained side by side (StackCheckpoint)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from toolkit.atomic import save_model_atomic, save_weights_atomic, write_json

log = logging.getLogger("mledge.train")
STACK_PREFIX = "_stack-"  # the checkpoint folder of classes trained side by side (train/stacked.py)


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
                  patience: int, unit: str = "") -> bool:
        """Record the epoch just finished; returns whether it is the best so far. A final run has no
        val split (score None): its newest epoch is the one kept. ``unit`` names it in the log (stacks)."""
        self.epoch += 1
        self.seconds += seconds
        self.history.append({"epoch": self.epoch, "loss": loss, "val_loss": val_loss, "val_map": score,
                             "seconds": round(seconds, 2)})
        who = f"{unit} " if unit else ""
        if score is None:
            log.info("%sepoch %d: loss %.4f (%.1fs)", who, self.epoch, loss, seconds)
            self.best_epoch = self.epoch
            return True
        log.info("%sepoch %d: loss %.4f val_loss %.4f val mAP %.4f (%.1fs)", who, self.epoch, loss, val_loss, score,
                 seconds)
        if not self.best_epoch or score > self.best:  # the first epoch is the best so far, whatever its score
            self.best, self.best_epoch, self.wait = score, self.epoch, 0
            return True
        self.wait += 1
        self.stopped = bool(patience) and self.wait >= patience
        return False

    def done(self, epochs: int) -> bool:
        return self.stopped or self.epoch >= epochs


@dataclass
class StateFolder:
    """A checkpoint folder and its state.json, the file that says which of the others count."""

    folder: Path

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    def exists(self) -> bool:
        return self.state_path.is_file()

    def data(self) -> dict:
        return json.loads(self.state_path.read_text())


@dataclass
class Checkpoint(StateFolder):
    """Each epoch writes new files (named by epoch), then state.json naming them, then removes the
    files it no longer names: a kill at any moment leaves a state.json whose files exist and belong
    to it, and resume continues from there."""

    def _files(self) -> dict:
        return self.data()["files"]

    @property
    def best(self) -> Path:
        return self.folder / self._files()["best"]

    def load(self):
        """(model, state) after the last finished epoch."""
        import keras

        import toolkit.losses  # noqa: F401  registers the loss for deserialisation

        data = self.data()
        files = data.pop("files")
        return keras.models.load_model(self.folder / files["last"]), UnitState(**data)

    def save(self, model, state: UnitState, improved: bool) -> None:
        if improved:
            self.save_best(model, state)
        self.save_last(model, state)

    def save_best(self, model, state: UnitState) -> None:
        """The weights of the epoch just finished, the best so far; counted once save_last names them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        save_weights_atomic(model, self.folder / best_name(state))

    def save_last(self, model, state: UnitState) -> None:
        """The model and optimizer after the epoch, then state.json naming it and the best epoch's weights."""
        self.folder.mkdir(parents=True, exist_ok=True)
        files = {"last": f"last-{state.epoch:05d}.keras", "best": best_name(state)}
        save_model_atomic(model, self.folder / files["last"])
        write_json(self.state_path, {**asdict(state), "files": files})  # the switch: one rename
        sweep(self.folder, {*files.values(), self.state_path.name})


def best_name(state: UnitState) -> str:
    return f"best-{state.best_epoch:05d}.weights.h5"


def sweep(folder: Path, keep: set[str]) -> None:
    """Remove what the state no longer names (hidden temporary files are another writer's)."""
    for path in folder.iterdir():
        if path.name not in keep and not path.name.startswith("."):
            path.unlink()


@dataclass
class StackCheckpoint(StateFolder):
    """Like Checkpoint (new files each epoch, then state.json naming them, then the old ones go), for
    a stacked model and the states of its branches."""

    @classmethod
    def of(cls, run, names: list[str]) -> StackCheckpoint:
        digest = hashlib.sha1(",".join(names).encode()).hexdigest()[:12]
        return cls(run.path / "checkpoints" / f"{STACK_PREFIX}{digest}")

    def best(self, name: str) -> Path:
        return self.folder / self.data()["files"]["best"][name]

    def load(self):
        """(stacked model, {unit: state}) after the last finished epoch."""
        import keras

        import toolkit.losses  # noqa: F401  registers the losses for deserialisation

        data = self.data()
        model = keras.models.load_model(self.folder / data["files"]["last"])
        return model, {name: UnitState(**state) for name, state in data["states"].items()}

    def group(self) -> list[str]:
        """The classes the stack started with (it may since have left out those that stopped)."""
        data = self.data()
        return data.get("group", data["units"])

    def save(self, model, states: dict[str, UnitState], improved: dict, group: list[str],
             inherited: dict[str, Path] | None = None) -> None:
        """The stacked model, the best weights of the branches in ``improved`` (unit -> branch) or, for a
        stack narrowed from another, ``inherited`` from that stack's folder (unit -> file), the states."""
        self.folder.mkdir(parents=True, exist_ok=True)
        epoch = max(s.epoch for s in states.values())
        best = self.data()["files"]["best"] if self.exists() else {}
        last = f"last-{epoch:05d}.keras"
        save_model_atomic(model, self.folder / last)
        for name, path in (inherited or {}).items():
            best[name] = path.name
            if not (self.folder / path.name).exists():
                os.link(path, self.folder / path.name)  # same folder tree: a second name, not a copy
        for name, branch in improved.items():
            best[name] = f"best-{epoch:05d}-{name}.weights.h5"
            save_weights_atomic(branch, self.folder / best[name])
        files = {"last": last, "best": best}
        write_json(self.state_path, {"units": list(states), "group": group,
                                     "states": {n: asdict(s) for n, s in states.items()}, "files": files})
        sweep(self.folder, {last, *best.values(), self.state_path.name})


def _states(run, pattern: str = "*") -> list[StateFolder]:
    """The checkpoint folders of ``run`` matching ``pattern`` that hold a state.json."""
    folders = (StateFolder(f) for f in sorted((run.path / "checkpoints").glob(pattern)))
    return [state for state in folders if state.exists()]


def interrupted_stacks(run) -> dict[Path, list[str]]:
    """Stack checkpoint folders of ``run`` -> the units each trains."""
    return {state.folder: state.data()["units"] for state in _states(run, f"{STACK_PREFIX}*")}


def epochs_in_progress(run) -> dict[str, int]:
    """Units with a checkpoint, alone or in a stack -> the epochs they have trained (read once for
    all units; a unit in an interrupted stack may already be finished: check is_done first)."""
    epochs = {}
    for state in _states(run):
        data = state.data()
        if state.folder.name.startswith(STACK_PREFIX):
            epochs.update({unit: s["epoch"] for unit, s in data["states"].items()})
        else:
            epochs[state.folder.name] = data["epoch"]
    return epochs
