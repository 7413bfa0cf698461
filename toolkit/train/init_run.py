"""New models started from a finished multioutput run's weights (``--init RUN``).

The study's CNN learns its conv features slowly from 2,500 photos; a multioutput CNN trained on all
labels for many epochs (a distilled one, say) already has them. An independent run's CNNs each start
from it (conv and dense layers; their Dense(1) from their class's column of its output layer) and
then train on their own class as before: 20 separate CNNs that share no weights. A multioutput run
starts from it whole (more epochs, another recipe). A class the source does not score starts its
output layer new. The run records the source in ``init.json`` (and metrics.json): path, sha256 of its
model file, its val mAP; a source whose model changed since is refused on resume.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import keras

from toolkit.atomic import write_json
from toolkit.config import TrainConfig
from toolkit.errors import UserError
from toolkit.metrics import points
from toolkit.models import TRUNK_LAYERS, copy_trunk
from toolkit.run import MULTI, Run
from toolkit.train.trunk_run import check_source_cnn

log = logging.getLogger("mledge.train")


def check_init_run(cfg: TrainConfig) -> None:
    """Refuse, before any work, a source that is unfinished or whose CNN is not this run's."""
    if cfg.init is None:
        return
    source = Run(Path(cfg.init))
    if cfg.arch == "shared":
        raise UserError(f"--init {source.path}: a shared run takes a finished run's conv layers with --trunk RUN")
    if cfg.model.pretrained:
        raise UserError(f"--init {source.path}: a run on a pretrained backbone starts from its ImageNet weights; "
                        "--init applies to the study's CNN")
    check_source_cnn(source, "--init", cfg, ("img_size", "conv1", "conv2", "dense"))


@dataclass
class InitWeights:
    """The source model and its class order, to copy into each new model of the run."""

    model: keras.Model
    classes: list[str]

    def apply(self, model: keras.Model, classes: list[str]) -> None:
        """Copy conv and dense layers; the output layer's columns for the classes the source scores."""
        try:
            copy_trunk(self.model, model, freeze=False, names=(*TRUNK_LAYERS, "dense"))
        except ValueError as err:
            raise UserError(f"--init: {err} (a class with its own --img-size cannot start from it)") from None
        logits = model.get_layer("logits")
        kernel, bias = (w.copy() for w in logits.get_weights())
        source_kernel, source_bias = self.model.get_layer("logits").get_weights()
        for j, name in enumerate(classes):
            if name in self.classes:
                k = self.classes.index(name)
                kernel[:, j], bias[j] = source_kernel[:, k], source_bias[k]
        logits.set_weights([kernel, bias])


def load_init(run: Run, cfg: TrainConfig) -> InitWeights | None:
    """The source's weights; records them in RUN/init.json (first use) or checks they are the same."""
    if cfg.init is None:
        return None
    check_init_run(cfg)
    source = Run(Path(cfg.init))
    path = source.model_path(MULTI)
    origin = {"path": str(source.path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
              "val_mAP_area": source.val_map()}
    recorded = run.path / "init.json"
    if recorded.is_file():
        if json.loads(recorded.read_text())["sha256"] != origin["sha256"]:
            raise UserError(f"{path}: changed since this run's first models started from it; "
                            "train a new run (or restore that model)")
    else:
        write_json(recorded, origin)
    theirs = source.config()
    missing = [c for c in cfg.classes if c not in theirs.classes]
    log.info("models start from %s (val mAP %s)%s", source.path, points(origin["val_mAP_area"]),
             f"; new output for {', '.join(missing)}" if missing else "")
    return InitWeights(keras.models.load_model(path, compile=False), theirs.classes)
