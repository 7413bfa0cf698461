"""The teacher of a distilled run (``mledge train --teacher``): a finished RUN (Keras, float32) or an
exported bundle (TFLite through the edge runtime: an int8 teacher is cheap on a CPU), checked to
know the run's classes, recorded (path, hash of its weights, val mAP), and its views of the training
photos (and of --unlabeled photos) cached once in RUN/teacher/ until the run is finished. A student
on the cached activations of a pretrained start has no pixel views (its head mirrors the maps): the
teacher scores each photo and its mirror, and the mean is the target of both (toolkit/data/views.py).

    RUN/teacher.json          the teacher's record (kept; metrics.json repeats it)
    RUN/teacher/views.npy     (V, N, H, W, 3) uint8: the views at the student's size (not for cached maps)
    RUN/teacher/logits.npy    (V, N, C) float32: the teacher's logits on them (1, N, C for cached maps)
    RUN/teacher/ids.json      the photos, in order (training split, then unlabelled)
    RUN/teacher/record.json   the teacher's record and what the views cost
    RUN/teacher/key.json      what the views depend on (teacher hash, views, seed, augmentation, size)

With --teacher-cache DIR the same files live in DIR, which is kept: runs that differ only in what the
views do not depend on (distill weight, temperature, epochs, architecture) reuse them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge.preprocess import list_images
from toolkit.atomic import require_space, staging, write_json
from toolkit.config import TrainConfig
from toolkit.data.arrays import CHUNK, SplitArrays, Views, load_arrays
from toolkit.data.dataset import Split
from toolkit.data.store import Store, new_array, open_array
from toolkit.data.views import augmented_photos, mirrored_logits, render_views
from toolkit.errors import UserError
from toolkit.metrics import points
from toolkit.predict import load_run_split, predict_run
from toolkit.run import Run

log = logging.getLogger("mledge.train")


@dataclass
class Teacher:
    path: Path
    kind: str  # run | bundle
    size: int  # the pixels it takes (square)
    record: dict  # what the student's run records about it
    predict: Callable[[np.ndarray], np.ndarray]  # uint8 pixels -> probabilities in the student's class order


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def describe_teacher(path: str | Path, classes: list[str]) -> dict:
    """Check that ``path`` is a finished RUN or a bundle scoring every one of ``classes``, and say
    what it is (before any work: loads no model)."""
    path = Path(path).resolve()
    if (path / "manifest.json").is_file():
        from edge.bundle import BundleError, read_manifest

        try:
            manifest = read_manifest(path)
        except BundleError as err:
            raise UserError(f"--teacher: {err}") from None
        spec = manifest["input"]
        if int(spec["height"]) != int(spec["width"]):
            raise UserError(f"{path}: the teacher takes {spec['width']}x{spec['height']} pixels; "
                            "a square input is needed")
        their_classes, size, kind = manifest["classes"], int(spec["height"]), "bundle"
        val_map = (manifest.get("evaluation") or {}).get("bundle_mAP_area")
        sha = _digest([entry["sha256"].encode() for entry in manifest["files"]])
    elif (path / "config.json").is_file():
        run = Run(path)
        cfg = run.require_complete()
        if not (path / "metrics.json").is_file():
            raise UserError(f"{path}: the teacher run has no metrics.json (not finished: mledge train --resume {path})")
        their_classes, size, kind = cfg.classes, cfg.model.pixels, "run"
        val_map = run.val_map()
        sha = _digest([run.model_path(u).read_bytes() for u in run.units(cfg)])
    else:
        raise UserError(f"{path}: not a finished training run (config.json) or a bundle (manifest.json); "
                        "--teacher needs one of them")
    missing = [c for c in classes if c not in their_classes]
    if missing:
        raise UserError(f"{path}: the teacher does not score {', '.join(missing)} (it knows "
                        f"{', '.join(their_classes)}); a teacher must have the run's classes")
    return {"path": str(path), "kind": kind, "sha256": sha, "val_mAP_area": val_map, "input_size": size,
            "columns": [list(their_classes).index(c) for c in classes]}


def teacher_threads() -> int:
    """Threads for a bundle teacher's interpreter, which otherwise runs on one: the cores this process
    may use, or its share of them under --jobs (which sets TensorFlow's own thread count)."""
    return int(os.environ.get("TF_NUM_INTRAOP_THREADS") or len(os.sched_getaffinity(0)))


def open_teacher(described: dict) -> Teacher:
    """The teacher ``describe_teacher`` checked, loaded: Keras models of a RUN (float32) or the bundle's
    interpreters."""
    record = dict(described)
    columns = record.pop("columns")
    path = Path(record["path"])
    if record["kind"] == "bundle":
        from edge.predictor import Predictor

        score = Predictor(path, num_threads=teacher_threads()).predict_pixels
    else:
        run = Run(path)
        models = run.load_models()

        def score(pixels: np.ndarray) -> np.ndarray:
            return predict_run(run, pixels, models)
    return Teacher(path, record["kind"], record["input_size"], record, lambda pixels: score(pixels)[:, columns])


def unlabeled_arrays(cfg: TrainConfig, size: int, store: Store) -> SplitArrays:
    """--unlabeled photos at ``size``, decoded into ``store`` like a split: no label counts (mask 0);
    only the teacher teaches on them."""
    import pandas as pd

    folder = Path(cfg.distill.unlabeled)
    if not folder.is_dir():
        raise UserError(f"{folder}: --unlabeled must be a folder of photos")
    paths = list_images(folder)
    if not paths:
        raise UserError(f"{folder}: no photo (.jpg, .png, ...) for --unlabeled")
    ids = [f"unlabeled/{p.relative_to(folder)}" for p in paths]
    labels = pd.DataFrame(0, index=ids, columns=cfg.classes)
    unknown = pd.DataFrame(True, index=ids, columns=cfg.classes)  # every label left out of the loss
    split = Split(folder, "unlabeled", "folder", labels, unknown, paths, [str(p) for p in paths])
    return load_arrays(split, size, on_bad_image=cfg.on_bad_image, store=store)


def check_distill(cfg: TrainConfig) -> None:
    """What --teacher needs, before any work: a teacher of the run's classes, a photo for --unlabeled."""
    if cfg.strategy == "multiworker":
        raise UserError("--teacher is not available with --strategy multiworker")
    describe_teacher(cfg.distill.teacher, cfg.classes)
    if cfg.distill.unlabeled and not list_images(Path(cfg.distill.unlabeled)):
        raise UserError(f"{cfg.distill.unlabeled}: no photo (.jpg, .png, ...) for --unlabeled")


def cache_folder(run: Run, cfg: TrainConfig) -> Path:
    return Path(cfg.distill.cache) if cfg.distill.cache else run.path / "teacher"


def teacher_views(cfg: TrainConfig) -> int | str:
    if not cfg.model.cached_trunk:
        return cfg.distill.views
    more = cfg.cache_views - 1
    return f"photo and {more} augmented view{'s' * (more > 1)}, each with its mirror" if more else "photo and mirror"


def views_text(views: int | str) -> str:
    return f"x {views} views" if isinstance(views, int) else f"({views})"


def cache_key(cfg: TrainConfig, teacher: dict) -> dict:
    """What the views depend on: a --teacher-cache folder is reused only by runs that agree on all of it."""
    return {"teacher_sha256": teacher["sha256"], "classes": cfg.classes, "views": teacher_views(cfg),
            "seed": cfg.seed, "augment": asdict(cfg.augment), "size": cfg.model.pixels, "root": cfg.root,
            "split": cfg.split, "unlabeled": cfg.distill.unlabeled}


def with_teacher(run: Run, cfg: TrainConfig, train: SplitArrays) -> SplitArrays:
    """The training split (and --unlabeled photos) with the teacher's views attached: read from the
    cache folder when a process of this run (or, with --teacher-cache, another run) made them, else
    made now and cached there."""
    cache = cache_folder(run, cfg)
    store = Store(run.cache_dir)
    if cfg.distill.unlabeled:
        train = train.concat(unlabeled_arrays(cfg, cfg.model.pixels, store), store)
    teacher = describe_teacher(cfg.distill.teacher, cfg.classes)
    key = cache_key(cfg, teacher)
    if not (cache / "key.json").is_file():
        make_cache(cfg, cache, key, open_teacher(teacher), store)
    if json.loads((cache / "key.json").read_text()) != key:
        raise UserError(f"{cache}: these views were made for other settings (teacher, views, seed, augmentation, "
                        "size or photos); name another --teacher-cache folder or delete this one")
    ids = json.loads((cache / "ids.json").read_text())
    if ids != train.ids:
        raise UserError(f"{cache}: made for other photos than this run's; delete the folder to make it again")
    write_json(run.path / "teacher.json", json.loads((cache / "record.json").read_text()))
    logits = np.load(cache / "logits.npy")
    if cfg.model.cached_trunk:  # the pixels stand in until the activation cache replaces them (train/units.py)
        views = Views(train.images[None], logits)
    else:
        views = Views(open_array(cache / "views.npy"), logits)
    log.info("teacher %s: %d views of %d photos from %s", cfg.distill.teacher, len(views.logits), len(ids), cache)
    return SplitArrays(train.ids, train.images, train.labels, train.mask, views)


def make_cache(cfg: TrainConfig, cache: Path, key: dict, teacher: Teacher, store: Store) -> None:
    """Decode the photos at the teacher's size (into ``store``), render and score the views into the
    staged cache a chunk at a time (memory-mapped: flat memory), and put it in place in one rename."""
    t0 = time.time()
    big = load_arrays(load_run_split(cfg, cfg.split), teacher.size, difficult=cfg.difficult,
                      on_bad_image=cfg.on_bad_image, store=store)
    if cfg.distill.unlabeled:
        big = big.concat(unlabeled_arrays(cfg, teacher.size, store), store)
    ids, photos = big.ids, big.images
    with staging(cache) as tmp:
        if cfg.model.cached_trunk:  # no pixel views: the cached maps stand for them (train/units.py)
            require_space(cache, len(ids) * 4 * len(cfg.classes) * cfg.cache_views)
            logits = np.concatenate([_mirrored_view_logits(photos, teacher, cfg, v) for v in range(cfg.cache_views)])
            passes = 2 * cfg.cache_views
        else:
            size, views = cfg.model.pixels, cfg.distill.views
            require_space(cache, len(ids) * views * (size**2 * 3 + 4 * len(cfg.classes)))  # pixels, logits
            out, mapping = new_array(tmp / "views.npy", (views, len(ids), size, size, 3), np.uint8)
            logits = render_views(photos, teacher.predict, size, views, cfg.augment, cfg.seed, out=out).logits
            mapping.flush()
            passes = views
        seconds = time.time() - t0
        record = {**teacher.record, "views": teacher_views(cfg), "photos": len(ids),
                  "seconds": round(seconds, 1), "images_per_second": round(len(ids) * passes / seconds, 1)}
        np.save(tmp / "logits.npy", logits)
        for name, value in (("ids", ids), ("record", record), ("key", key)):
            (tmp / f"{name}.json").write_text(json.dumps(value, indent=1))
    try:
        os.rename(tmp, cache)  # atomic: a concurrent process of the run may have made it first
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (cache / "key.json").is_file():
            raise
    print(f"teacher {teacher.path.name} ({teacher.kind}, val mAP {points(record['val_mAP_area'])}): "
          f"{len(ids)} photos {views_text(record['views'])} in {seconds:.0f}s")


def _mirrored_view_logits(photos: np.ndarray, teacher: Teacher, cfg: TrainConfig, view: int) -> np.ndarray:
    """(1, N, C): the teacher's flip-averaged logits of view ``view`` of every photo (0: the photo),
    augmented a chunk at a time with the draws of the activation cache's views."""
    return np.concatenate([
        mirrored_logits(augmented_photos(photos[a : a + CHUNK], cfg.augment, cfg.seed, view, offset=a)
                        if view else photos[a : a + CHUNK], teacher.predict)
        for a in range(0, len(photos), CHUNK)], axis=1)


def drop_cache(run: Run, cfg: TrainConfig) -> None:
    """The views are only for training: a finished run keeps teacher.json and loses its own cache (a
    --teacher-cache folder is the user's, kept for the next run)."""
    if not cfg.distill.cache:
        shutil.rmtree(run.path / "teacher", ignore_errors=True)
