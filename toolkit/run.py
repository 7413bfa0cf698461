"""The RUN folder: one training run's config, models, histories, thresholds and metrics.

    RUN/config.json        TrainConfig (written once)
    RUN/models/NAME.keras  a finished model: "model" for multioutput, one per class otherwise,
    RUN/models/NAME.json   its record (epochs, best epoch, val score, seconds, history); its
                           presence marks the unit finished, so resume never trains it again
    RUN/checkpoints/NAME/  last epoch's model + state of an unfinished unit (removed when done, and
                           checkpoints/ itself once the run is)
    RUN/history.csv, thresholds.json, metrics.json, val_scores.npz (the val scores behind them), train.log
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from toolkit.config import TrainConfig
from toolkit.errors import UserError

MULTI = "model"  # the multioutput model's unit name
TRUNK = "_trunk"  # shared --trunk multitask: the trunk trained on all labels


@dataclass
class Run:
    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def cache_dir(self) -> Path:
        """Decoded photos and cached maps (toolkit/data/store.py), reused by --resume."""
        return self.path / "cache"

    @property
    def models_dir(self) -> Path:
        return self.path / "models"

    def model_path(self, unit: str) -> Path:
        return self.models_dir / f"{unit}.keras"

    def record_path(self, unit: str) -> Path:
        return self.models_dir / f"{unit}.json"

    def checkpoint_dir(self, unit: str) -> Path:
        return self.path / "checkpoints" / unit

    def config(self) -> TrainConfig:
        if not self.config_path.is_file():
            raise UserError(f"{self.config_path}: missing (not a training run folder?)")
        try:
            return TrainConfig.load(self.config_path)
        except (json.JSONDecodeError, TypeError) as err:
            raise UserError(f"{self.config_path}: unreadable ({err})") from None

    def units(self, cfg: TrainConfig | None = None) -> list[str]:
        """Model files the run is made of, in output order."""
        from toolkit.models import ARCHITECTURES

        cfg = cfg or self.config()
        return list(cfg.classes) if ARCHITECTURES[cfg.arch].per_class else [MULTI]

    def is_done(self, unit: str) -> bool:
        return self.record_path(unit).is_file() and self.model_path(unit).is_file()

    def pending(self, cfg: TrainConfig | None = None, only: list[str] | None = None) -> list[str]:
        """The units not finished yet (of ``only``, when given)."""
        return [u for u in self.units(cfg) if not self.is_done(u) and (not only or u in only)]

    def record(self, unit: str) -> dict:
        return json.loads(self.record_path(unit).read_text())

    def val_map(self) -> float | None:
        """Its val mAP (area), from metrics.json; None before the run is finished (or for a final run)."""
        metrics = self.path / "metrics.json"
        return json.loads(metrics.read_text()).get("mAP_area") if metrics.is_file() else None

    def require_complete(self) -> TrainConfig:
        cfg = self.config()
        missing = self.pending(cfg)
        if missing:
            raise UserError(f"{self.path}: training is not finished ({len(missing)} model(s) missing, "
                            f"e.g. {missing[0]}); run: mledge train --resume {self.path}")
        return cfg

    def load_models(self, cfg: TrainConfig | None = None) -> list:
        """The finished Keras models in output order (compile=False: inference only)."""
        import keras

        import toolkit.losses  # noqa: F401  registers the loss for deserialisation

        models = []
        for unit in self.units(cfg):
            path = self.model_path(unit)
            try:
                models.append(keras.models.load_model(path, compile=False))
            except Exception as err:  # a truncated or foreign file: name it, no traceback
                raise UserError(f"{path}: cannot load model ({type(err).__name__}: {str(err)[:120]})") from None
        return models
