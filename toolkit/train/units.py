"""Which units a run trains, in which order, and how their models are made: the multioutput model,
or one model per class (independent; shared on a trunk trained first), from scratch or on the cached
output of a frozen pretrained trunk."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import keras
import numpy as np

from toolkit.atomic import require_space
from toolkit.config import TrainConfig
from toolkit.data.arrays import SplitArrays, Views
from toolkit.data.store import Store, digest
from toolkit.data.views import augmented_photos
from toolkit.errors import UserError
from toolkit.heads import CSRA_LAMBDA
from toolkit.models import ARCHITECTURES, assemble, build_head, build_model, copy_trunk, pretrained_prefix
from toolkit.predict import predict_batches
from toolkit.progress import Progress
from toolkit.run import MULTI, TRUNK, Run
from toolkit.train.activations import prefix_runner
from toolkit.train.fit import fit_unit
from toolkit.train.init_run import InitWeights, load_init
from toolkit.train.loop import Unit
from toolkit.train.multiworker import worker_cache
from toolkit.train.precision import with_policy
from toolkit.train.stacked import fit_units
from toolkit.train.trunk_run import adopt_trunk, trunk_source

log = logging.getLogger("mledge.train")
CACHE_FLOAT32_BYTES = 2 << 30  # a cached split larger than this in float32 is kept in float16
CHUNK = 1024  # photos a time through the prefix (a multiple of augmented_photos' batch)


@dataclass
class FromScratch:
    """The study's CNN, new; with ``trunk``, that trunk is copied in and frozen (shared heads); with
    ``init``, it starts from a finished multioutput run's weights (--init RUN)."""

    trunk: keras.Model | None = None
    init: InitWeights | None = None

    def build(self, unit: Unit) -> keras.Model:
        model = build_model(unit.cfg.model, unit.outputs, unit.model_name)
        if self.init is not None:
            self.init.apply(model, unit.cfg.classes if unit.columns is None else
                            [unit.cfg.classes[k] for k in unit.columns])
        if self.trunk is not None:
            copy_trunk(self.trunk, model, freeze=True, names=unit.cfg.model.trunk_layers)
        return model

    def finish(self, unit: Unit, model: keras.Model) -> keras.Model:
        if unit.freeze_trunk:
            for name in unit.cfg.model.trunk_layers:
                model.get_layer(name).trainable = False
        return model


@dataclass
class OnCachedTrunk:
    """A head (with the last blocks when fine-tuning) that trains on the cached output of the frozen
    start of a pretrained backbone; once trained it is put back on the backbone as a full model."""

    cfg: TrainConfig
    backbone: keras.Model
    feature_shape: tuple[int, ...]
    val: SplitArrays | None = None  # the cached val maps: a finished head scores them in float32
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # unit -> its val scores

    def build(self, unit: Unit) -> keras.Model:
        return build_head(self.cfg.model, self.feature_shape, unit.outputs, unit.model_name, source=self.backbone)

    def finish(self, unit: Unit, model: keras.Model) -> keras.Model:
        if self.val is not None:  # what the full model gives on val, without running its prefix again
            self.scores[unit.name] = predict_batches(with_policy(model, "float32"), self.val.images, batch=32)
        return assemble(model, self.cfg.model, unit.outputs, unit.model_name)

    def val_scores(self, units: list[Unit]) -> np.ndarray | None:
        """(N, C) val scores when every unit finished here (a resumed run's earlier units did not)."""
        if self.val is None or any(u.name not in self.scores for u in units):
            return None
        out = np.empty((len(self.val.ids), len(self.cfg.classes)), np.float32)
        for unit in units:
            out[:, unit.columns if unit.columns is not None else slice(None)] = self.scores[unit.name]
        return out


def cache_trunk(cfg: TrainConfig, train: SplitArrays, val: SplitArrays | None,
                store: Store) -> tuple[SplitArrays, SplitArrays | None, OnCachedTrunk]:
    """Run the frozen start of the pretrained backbone once per image, in float32 whatever the
    training precision (the device's maps; toolkit/train/activations.py), into memory-mapped files
    of the run's cache that a resumed run reuses. Pixel augmentation is lost but for
    ``cfg.cache_views`` - 1 fixed augmented views of each photo; a fine-tuned tail flips the
    activation maps too (and a teacher's target is its mean on each view and its mirror:
    toolkit/train/teacher.py)."""
    prefix, backbone = pretrained_prefix(cfg.model)
    prefix = with_policy(prefix, "float32")
    t0 = time.time()
    views = cfg.cache_views
    images = len(train.ids) * views + (len(val.ids) if val is not None else 0)
    shape = tuple(prefix.output.shape[1:])
    per_image = int(np.prod(shape)) * 4
    dtype = np.float16 if images * per_image > CACHE_FLOAT32_BYTES else np.float32  # csra at 448: 1 MB an image
    m = cfg.model
    what_maps = (m.backbone, m.img_size, m.finetune_blocks, np.dtype(dtype).name)
    augment = dataclasses.asdict(cfg.augment) if views > 1 else None
    keys = {"maps-train": digest(what_maps, train.ids, train.source, views, augment, cfg.seed)}
    sizes = {"maps-train": len(train.ids) * views * per_image // 4 * np.dtype(dtype).itemsize}
    if val is not None:
        keys["maps-val"] = digest(what_maps, val.ids, val.source)
        sizes["maps-val"] = len(val.ids) * per_image // 4 * np.dtype(dtype).itemsize
    held = sum(sizes.values())
    # the space every file still to make needs, before the first is started
    require_space(store.folder, sum(sizes[name] for name, key in keys.items() if store.load(name, key) is None))
    runner: list = []  # the prefix's runner, made (and checked against Keras) only when a map is computed

    def maps(name: str, pixels: np.ndarray, views: int | None = None) -> np.ndarray:
        """(N, ...) maps of ``pixels``, or (views, N, ...) with view v > 0 augmented; cached."""
        key_text = keys[name]
        found = store.load(name, key_text)
        if found is None:
            if not runner:
                runner.extend(prefix_runner(prefix, pixels))
            count = len(pixels)
            progress = Progress(f"caching the frozen prefix's maps ({name})", count * (views or 1))
            with store.create(name, key_text, (count, *shape) if views is None else (views, count, *shape),
                              dtype) as out:
                for v in range(views or 1):
                    target = out if views is None else out[v]
                    for a in range(0, count, CHUNK):  # a view's augmented pixels are held a chunk at a time
                        chunk = pixels[a : a + CHUNK]
                        if v:
                            chunk = augmented_photos(chunk, cfg.augment, cfg.seed, v, offset=a)
                        runner[0](chunk, target[a : a + CHUNK], progress)
            progress.close()
            found = store.load(name, key_text)
        return found[0]

    all_views = maps("maps-train", train.images, views)
    train_f = SplitArrays(train.ids, all_views[0], train.labels, train.mask, source=train.source, shard=train.shard)
    if views > 1 or train.views is not None:  # fixed views, with the teacher's targets of each when distilled
        train_f.views = Views(all_views, train.views.logits if train.views is not None else None)
    val_f = None
    if val is not None:
        val_f = SplitArrays(val.ids, maps("maps-val", val.images), val.labels, val.mask,
                            source=val.source)
    blocks = cfg.model.finetune_blocks
    what = f"activations before the last {blocks} blocks" if blocks else "features"
    diff = runner[1] if runner else None
    engine = ("cached earlier" if not runner else f"TFLite float32 on XNNPACK, max |map - Keras float32| {diff:.2g}"
              if diff is not None else "Keras float32")
    count = f"{images} images" if views == 1 else f"{images} images ({views} views of each training photo)"
    cost = f"{count} in {time.time() - t0:.1f}s ({held / 1e6:.0f} MB on disk in {store.folder}, " \
           f"{np.dtype(dtype).name}; {engine})"
    log.info("%s of %s", what, cost)
    print(f"pretrained {cfg.model.backbone} {what} of {cost}")
    return train_f, val_f, OnCachedTrunk(cfg, backbone, train_f.images.shape[1:], val_f)


def check_model(cfg: TrainConfig) -> None:
    """The architecture's own limits, before anything is written."""
    if cfg.arch not in ARCHITECTURES:
        raise UserError(f"--arch must be one of {', '.join(ARCHITECTURES)}, not {cfg.arch!r}")
    if cfg.arch == "shared" and cfg.model.pretrained and (cfg.model.finetune_blocks or not cfg.model.freeze_backbone):
        raise UserError("shared keeps one frozen pretrained trunk for every class; to fine-tune the backbone use "
                        "--arch multioutput (or independent)")
    if cfg.model.head != "avg" and (not cfg.model.pretrained or cfg.arch == "shared"):
        raise UserError(f"--head {cfg.model.head} is for a pretrained backbone with --arch multioutput or independent "
                        "(shared fuses its heads as one Dense layer)")
    if cfg.model.head != "csra" and cfg.model.csra_lambda != CSRA_LAMBDA:
        raise UserError("--csra-lambda is the csra head's: add --head csra")
    if cfg.cache_views > 1 and not cfg.model.cached_trunk:
        raise UserError("--cache-views is for a pretrained backbone's activation cache (not --train-backbone or the "
                        "study's CNN, which augment every step)")


def check_request(cfg: TrainConfig, only: list[str] | None, stage: str) -> None:
    """--classes, --stage and the architecture's own limits, before anything trains."""
    check_model(cfg)
    if cfg.arch == "multioutput" and (only or stage != "all"):
        raise UserError("--classes and --stage apply to independent and shared runs")
    unknown = sorted(set(only or []) - set(cfg.classes))
    if unknown:
        raise UserError(f"--classes: {', '.join(unknown)} not in this run (classes: {', '.join(cfg.classes)})")
    if stage not in ("all", "trunk", "heads") or (stage != "all" and cfg.arch != "shared"):
        raise UserError("--stage trunk|heads applies to shared runs only")


def class_unit(cfg: TrainConfig, k: int, kind: str) -> Unit:
    name = cfg.classes[k]
    unit_cfg = cfg.for_class(name)
    return Unit(name, f"class {k + 1}/{len(cfg.classes)} {name} ({kind})", name, 1, [k], unit_cfg, unit_cfg.seed + k)


def train_units(run: Run, cfg: TrainConfig, train: SplitArrays, val: SplitArrays | None, strategy,
                only: list[str] | None = None, stage: str = "all") -> np.ndarray | None:
    """Train the run's units, or only the classes in ``only``; ``stage`` trunk|heads splits shared
    training so a job array can train the trunk once and the heads in parallel. Returns the val
    scores when heads on cached maps computed them all (else finalize runs the full models)."""
    check_request(cfg, only, stage)
    n = len(cfg.classes)
    # A frozen pretrained start runs once and every head trains on its output (not needed when only
    # finalizing: every unit is trained).
    if cfg.model.cached_trunk and run.pending(cfg, only):
        train, val, models = cache_trunk(cfg, train, val, Store(worker_cache(run.cache_dir, cfg)))
    else:
        models = FromScratch(init=load_init(run, cfg) if run.pending(cfg, only) else None)
    if cfg.arch == "multioutput":
        unit = Unit(MULTI, "multioutput", "multioutput", n, None, cfg, cfg.seed)
        fit_unit(run, unit, models, train, val, strategy)
        return models.val_scores([unit]) if isinstance(models, OnCachedTrunk) else None
    first = 0
    if cfg.arch == "shared" and not cfg.model.pretrained:  # a pretrained trunk is shared as it comes
        trunk = train_shared_trunk(run, cfg, train, val, strategy, only, stage)
        if trunk is None:
            return None
        models = FromScratch(trunk)
        first = 1 if cfg.trunk == "first-class" else 0
    kind = {"independent": "own CNN", "shared": "head on frozen trunk"}[cfg.arch]
    if cfg.model.cached_trunk:
        kind = "head on the frozen pretrained trunk"
    units = [class_unit(cfg, k, kind) for k in range(first, n) if not only or cfg.classes[k] in only]
    trunk = models.trunk if isinstance(models, FromScratch) else None
    fit_units(run, cfg, units, models, train, val, strategy, trunk)
    everyone = [class_unit(cfg, k, kind) for k in range(n)]
    return models.val_scores(everyone) if isinstance(models, OnCachedTrunk) else None


def train_shared_trunk(run: Run, cfg: TrainConfig, train: SplitArrays, val: SplitArrays | None, strategy,
                       only: list[str] | None, stage: str) -> keras.Model | None:
    """The trunk every head of a shared run copies: the first class's CNN (the study's) or a CNN
    trained on all labels (--trunk multitask), or taken from a finished multioutput run (--trunk RUN).
    None when only the trunk was asked for."""
    if cfg.trunk == "first-class":
        unit = class_unit(cfg, 0, "trunk + head")
        unit.freeze_trunk = True
    else:
        unit = Unit(TRUNK, "shared trunk (all labels)", "trunk", len(cfg.classes), None, cfg, cfg.seed)
    if trunk_source(cfg) is not None:
        if not run.is_done(TRUNK):
            adopt_trunk(run, cfg)
    elif stage == "trunk" or (stage == "all" and (not only or unit.name in only)):
        fit_unit(run, unit, FromScratch(), train, val, strategy)
    if stage == "trunk":
        return None
    if not run.is_done(unit.name):
        raise UserError(f"{run.path}: the shared trunk ({unit.name}) is not trained yet; "
                        f"train it first: mledge train --resume {run.path} --stage trunk")
    return keras.models.load_model(run.model_path(unit.name), compile=False)
