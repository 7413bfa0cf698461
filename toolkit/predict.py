"""Inference over a RUN: its splits with its classes, its scores and its thresholds.

Training (validation, thresholds), evaluation and export all read a run through these functions, so
export needs nothing of training's internals.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from toolkit.config import TrainConfig
from toolkit.data.arrays import load_chunks
from toolkit.data.dataset import Split, load_split
from toolkit.errors import UserError
from toolkit.run import Run

_TRACED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {input shape: traced forward}


def predict_batches(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """Inference in batches through one traced graph (several times faster than eager calls on a CPU),
    traced once per model and input shape (validation after every epoch, a teacher on every batch)."""
    import tensorflow as tf

    traced = _TRACED.setdefault(model, {})
    shape = tuple(images.shape[1:])
    if shape not in traced:
        spec = tf.TensorSpec([None, *shape], tf.float32)
        traced[shape] = tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False)
    forward = traced[shape]
    out = [np.asarray(forward(images[i : i + batch].astype(np.float32)), dtype=np.float32)
           for i in range(0, len(images), batch)]
    return np.concatenate(out)


Scorer = Callable[[np.ndarray], np.ndarray]  # uint8 photos (N, H, W, 3) -> probabilities (N, C)


def run_scorer(run: Run, models: list | None = None) -> Scorer:
    """A finished run's sigmoid scores as a function of uint8 photos, its graphs built once."""
    models = models if models is not None else run.load_models()
    cfg = run.config()
    if cfg.arch == "shared" and (cfg.model.pretrained or _one_trunk(models)):
        from toolkit.models import fuse  # the export's fused graph: the trunk once for all heads

        fused = fuse(models, cfg.model, shared_trunk=True, logits=False)
        return lambda images: predict_batches(fused, images)
    return lambda images: np.concatenate([predict_batches(m, images) for m in models], axis=1)


def predict_run(run: Run, images: np.ndarray, models: list | None = None) -> np.ndarray:
    """Sigmoid scores (N, C) of a finished run on uint8 images."""
    return run_scorer(run, models)(images)


@dataclass
class Scored:
    """A split's labels and what each scorer gave on its readable photos."""

    ids: list[str]
    labels: np.ndarray  # (N, C)
    mask: np.ndarray  # (N, C): 0 where the label is unknown (difficult): out of the metrics
    scores: dict[str, np.ndarray]  # scorer name -> (N, C)


def score_split(data: Split, size: int, scorers: dict[str, Scorer], *, on_bad_image: str = "error",
                limit: int | None = None) -> Scored:
    """Every scorer on every photo of the split, decoded a chunk at a time (flat memory: only the
    scores, 80 bytes a photo for 20 classes, grow with the split)."""
    ids, labels, masks, scores = [], [], [], {name: [] for name in scorers}
    for part in load_chunks(data, size, on_bad_image=on_bad_image, limit=limit):
        ids += part.ids
        labels.append(part.labels)
        masks.append(part.mask)
        for name, scorer in scorers.items():
            scores[name].append(scorer(part.images))
    return Scored(ids, np.concatenate(labels), np.concatenate(masks),
                  {name: np.concatenate(values) for name, values in scores.items()})


def _one_trunk(models: list) -> bool:
    """Whether per-class study CNNs hold the same trunk at the same size (a shared run's, unless a
    class was retrained at a size of its own)."""
    from toolkit.models import TRUNK_LAYERS, work_size

    first = models[0]

    def same(model) -> bool:
        return work_size(model) == work_size(first) and all(
            np.array_equal(a, b) for name in TRUNK_LAYERS
            for a, b in zip(model.get_layer(name).get_weights(), first.get_layer(name).get_weights()))

    return all(same(m) for m in models[1:])


def load_run_split(cfg: TrainConfig, split: str) -> Split:
    """A split with the run's classes, in order; classes added from another root read their labels there.
    A config without classes yet (a new run) takes the dataset's."""
    options = {"fmt": cfg.format, "labels": cfg.labels, "check_images": cfg.on_bad_image == "error"}
    if not cfg.classes:
        data = load_split(cfg.root, split, classes_file=cfg.classes_file, **options)
        cfg.classes = data.classes
        return data
    base = [c for c in cfg.classes if c not in cfg.class_roots]
    data = load_split(cfg.root, split, classes=base, **options)
    for name, root in cfg.class_roots.items():
        extra = load_split(root, split, classes=[name], check_images=False)  # images: the run's root
        if set(extra.ids) != set(data.ids):
            raise UserError(f"{root}: the image ids of {name}_{split}.txt differ from the run's split {split!r}")
        data.labels[name] = extra.labels[name].reindex(data.labels.index)
        data.difficult[name] = extra.difficult[name].reindex(data.labels.index)
    data.labels, data.difficult = data.labels[cfg.classes], data.difficult[cfg.classes]
    return data


def run_thresholds(run: Run, classes: list[str]) -> np.ndarray:
    """The run's per-class thresholds (chosen on val when training finished); 0.5 where there are none."""
    path = run.path / "thresholds.json"
    if not path.is_file():
        return np.full(len(classes), 0.5)
    data = json.loads(path.read_text())
    by_class = dict(zip(data["classes"], data["thresholds"]))
    return np.array([by_class.get(c, 0.5) for c in classes])
