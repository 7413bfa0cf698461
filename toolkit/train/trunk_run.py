"""A shared run's trunk taken from a finished multioutput run (``--trunk RUN``).

A multioutput study CNN trained on all labels for many epochs (a distilled one, say) gives the heads
better features than the few epochs a shared run trains its own trunk for, and a sweep of head
recipes then trains no trunk at all. The source's model is copied into the run as its ``_trunk`` unit, so
the run stands alone (export, evaluate, classes add and --final read it like a multitask trunk) and
records where it came from: path, sha256 of the model file and the source's val mAP. A ``--final``
run made from such a run takes the same trunk again, trained on what the source was trained on.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from toolkit.atomic import write_atomic, write_json
from toolkit.config import TrainConfig
from toolkit.errors import UserError
from toolkit.run import MULTI, TRUNK, Run

TRUNK_KINDS = ("first-class", "multitask")  # trained in the run; anything else is a RUN path

log = logging.getLogger("mledge.train")


def trunk_source(cfg: TrainConfig) -> Run | None:
    """The run the trunk is taken from, or None when the shared run trains its own."""
    return None if cfg.arch != "shared" or cfg.trunk in TRUNK_KINDS else Run(Path(cfg.trunk))


def check_trunk_run(cfg: TrainConfig) -> None:
    """Refuse, before any work, a source that is unfinished or whose trunk does not fit this run."""
    if cfg.arch != "shared" and cfg.trunk not in TRUNK_KINDS:
        raise UserError(f"--trunk {cfg.trunk}: a trunk run applies to shared runs, not {cfg.arch}")
    source = trunk_source(cfg)
    if source is None:
        return
    if cfg.model.pretrained:
        raise UserError(f"--trunk {source.path}: a run on a pretrained backbone shares that backbone; "
                        "a trunk run applies to the study's CNN")
    check_source_cnn(source, "--trunk", cfg, ("img_size", "conv1", "conv2"))


def check_source_cnn(source: Run, option: str, cfg: TrainConfig, fields: tuple[str, ...]) -> None:
    """Refuse a source run that is unfinished, not a multioutput run of the study's CNN, or whose CNN
    differs from this run's in ``fields`` (size first, then widths)."""
    theirs = source.require_complete()
    if theirs.arch != "multioutput" or theirs.model.pretrained:
        raise UserError(f"{source.path}: {option} takes a finished multioutput run of the study's CNN, not a "
                        f"{theirs.arch} run of {theirs.model.backbone}")
    mine, other = ([getattr(c.model, f) for f in fields] for c in (cfg, theirs))
    if mine != other:
        raise UserError(f"{source.path}: its CNN is {other[0]} px with widths {','.join(map(str, other[1:]))}; "
                        f"this run's is {mine[0]} px with {','.join(map(str, mine[1:]))}")


def adopt_trunk(run: Run, cfg: TrainConfig) -> None:
    """Copy the source's model into the run as its finished trunk (model first: the record marks it done)."""
    source = trunk_source(cfg)
    check_trunk_run(cfg)
    data, record = source.model_path(MULTI).read_bytes(), source.record(MULTI)
    val_map = source.val_map()
    write_atomic(run.model_path(TRUNK), data)
    origin = {"path": str(source.path.resolve()), "sha256": hashlib.sha256(data).hexdigest(), "val_mAP_area": val_map}
    write_json(run.record_path(TRUNK), {**record, "unit": TRUNK, "adopted_from": origin})
    log.info("trunk: the conv layers of %s (val mAP %s), trained there for %d epochs",
             source.path, "?" if val_map is None else f"{100 * val_map:.2f}", record["epochs"])
