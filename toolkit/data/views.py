"""Fixed augmented views for distillation: each training photo is augmented a few times at the
teacher's input size, the teacher scores each view once, and the student trains on the same views
downscaled to its own size. Teacher and student see the same pixels ("consistent" teaching), and
the teacher's forward pass, most of the cost on a CPU, runs once per view instead of every step."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import numpy as np

from edge.preprocess import mirror
from toolkit.data.arrays import SplitArrays, Views
from toolkit.data.pipeline import Augment, affine_batch

EPS = 1e-6


def to_logits(probs: np.ndarray) -> np.ndarray:
    p = np.clip(probs.astype(np.float64), EPS, 1 - EPS)
    return (np.log(p) - np.log1p(-p)).astype(np.float32)


def render_views(photos: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], size: int, views: int,
                 augment: Augment, seed: int, batch: int = 64, out: np.ndarray | None = None) -> Views:
    """``photos`` (N, T, T, 3) uint8 at the teacher's size -> ``views`` augmented views of each, the
    teacher's logits on them (``predict``: uint8 pixels -> probabilities) and the views at ``size``,
    written into ``out`` (views, N, size, size, 3) when given (a memory-mapped file), else into memory."""
    import tensorflow as tf

    n = len(photos)
    images = np.empty((views, n, size, size, 3), np.uint8) if out is None else out
    logits = None
    t0 = time.time()
    for v in range(views):
        for start in range(0, n, batch):
            pixels = tf.cast(photos[start : start + batch], tf.float32)
            view = affine_batch(pixels, tf.constant([seed, v * 1_000_003 + start], tf.int64), augment)
            big = np.asarray(tf.clip_by_value(tf.round(view), 0, 255), np.uint8)
            scores = to_logits(np.asarray(predict(big)))
            if logits is None:
                logits = np.empty((views, n, scores.shape[1]), np.float32)
            logits[v, start : start + batch] = scores
            small = tf.image.resize(view, (size, size), method="bilinear", antialias=True)
            images[v, start : start + batch] = np.asarray(tf.clip_by_value(tf.round(small), 0, 255), np.uint8)
        print(f"teacher: view {v + 1}/{views} of {n} photos ({(v + 1) * n / (time.time() - t0):.1f} images/s)",
              flush=True)
    return Views(images, logits)


def augmented_photos(photos: np.ndarray, augment: Augment, seed: int, view: int, batch: int = 64,
                     offset: int = 0) -> np.ndarray:
    """View ``view`` of every photo: ``augment`` drawn from (seed, view), rounded back to uint8. What a
    pretrained start's activation cache keeps of pixel augmentation (--cache-views). ``offset``: where
    ``photos`` starts in its split (a multiple of ``batch``), so a split done in chunks draws the same."""
    import tensorflow as tf

    out = np.empty_like(photos)
    for start in range(0, len(photos), batch):
        pixels = tf.cast(photos[start : start + batch], tf.float32)
        view_pixels = affine_batch(pixels, tf.constant([seed, view * 1_000_003 + offset + start], tf.int64), augment)
        out[start : start + batch] = np.asarray(tf.clip_by_value(tf.round(view_pixels), 0, 255), np.uint8)
    return out


def mirrored_logits(photos: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], batch: int = 64) -> np.ndarray:
    """(1, N, C): the teacher's logits of its mean probability on each photo and on its mirror. The
    target of a student on cached activations, whose head mirrors the maps at random itself: labels
    do not change with a mirror, so one target serves both, and it is the teacher's test-time flip."""
    out = []
    for start in range(0, len(photos), batch):
        pixels = photos[start : start + batch]
        out.append(to_logits((np.asarray(predict(pixels)) + np.asarray(predict(mirror(pixels)))) / 2))
    return np.concatenate(out)[None]


def view_dataset(arrays: SplitArrays, batch: int, *, seed: int, temperature: float = 1.0,
                 columns: list[int] | None = None):
    """Batches of (views as float32, labels then teacher probabilities, label mask then ones; without
    a teacher the labels and mask alone): every epoch a new order and, for each photo, one of its
    views drawn at random."""
    import tensorflow as tf

    views = arrays.views
    targets = views.targets(temperature, columns) if views.taught else None
    labels, mask = arrays.labels, arrays.mask
    if columns is not None:
        labels, mask = labels[:, columns], mask[:, columns]
    ones = np.ones_like(mask)
    epochs = itertools.count()
    n_views, n = views.images.shape[:2]

    def generate():
        rng = np.random.default_rng([seed, next(epochs)])
        order, pick = rng.permutation(n), rng.integers(n_views, size=n)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            v = pick[idx]
            if targets is None:
                yield views.images[v, idx], labels[idx], mask[idx]
            else:
                yield (views.images[v, idx], np.concatenate([labels[idx], targets[v, idx]], axis=1),
                       np.concatenate([mask[idx], ones[idx]], axis=1))

    c = labels.shape[1] * (2 if views.taught else 1)
    size = views.images.shape[2:]
    targets_spec = tf.TensorSpec((None, c), tf.float32)
    signature = (tf.TensorSpec((None, *size), tf.as_dtype(views.images.dtype)), targets_spec, targets_spec)
    ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-n // batch)))  # Keras knows where an epoch ends
    ds = ds.map(lambda x, y, m: (tf.cast(x, tf.float32), y, m), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
