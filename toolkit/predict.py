"""Inference over a RUN: its splits with its classes, its scores and its thresholds.

Training (validation, thresholds), evaluation and export all read a run through these functions, so
export needs nothing of training's internals.
"""

from __future__ import annotations

import json
import weakref

import numpy as np

from toolkit.config import TrainConfig
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


def predict_run(run: Run, images: np.ndarray, models: list | None = None) -> np.ndarray:
    """Sigmoid scores (N, C) of a finished run on uint8 images."""
    models = models if models is not None else run.load_models()
    cfg = run.config()
    if cfg.arch == "shared" and (cfg.model.pretrained or _one_trunk(models)):
        from toolkit.models import fuse  # the export's fused graph: the trunk once for all heads

        return predict_batches(fuse(models, cfg.model, shared_trunk=True, logits=False), images)
    return np.concatenate([predict_batches(m, images) for m in models], axis=1)


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
