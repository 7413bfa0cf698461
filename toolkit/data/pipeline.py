"""Input pipeline: tf.data over the decoded arrays (toolkit/data/arrays.py) for shuffling, augmentation
(the study's ImageDataGenerator settings, as TF ops), batching and prefetching.

Images reach the model as float pixels in [0, 255]: the rescale to [0, 1] is the model's first layer,
so an exported model takes raw pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from toolkit.data.arrays import SplitArrays


@dataclass
class Augment:
    """The study's ImageDataGenerator(horizontal_flip=True, zoom_range=0.2, shear_range=0.2) by default.
    Keras' shear_range is in degrees, so the study's shear is tiny; kept for faithfulness. Translation
    and brightness/contrast jitter are off by default (0) and help a from-scratch CNN on small data."""

    flip: bool = True
    zoom: float = 0.2
    shear_degrees: float = 0.2
    translate: float = 0.0  # fraction of the side, each direction
    brightness: float = 0.0  # +- fraction of the 0..255 range
    contrast: float = 0.0  # +- relative change around the image mean
    rotate_degrees: float = 0.0  # +- rotation (the study's tips, its section 8.5: 20)


def affine_batch(images, seed, augment: Augment):
    """Random flip, zoom, shear and rotation per image, one projective transform per image (bilinear,
    edge fill)."""
    import tensorflow as tf

    n = tf.shape(images)[0]
    h = tf.cast(tf.shape(images)[1], tf.float32)
    w = tf.cast(tf.shape(images)[2], tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 8)
    zx = tf.random.stateless_uniform([n], seeds[0], 1 - augment.zoom, 1 + augment.zoom)
    zy = tf.random.stateless_uniform([n], seeds[1], 1 - augment.zoom, 1 + augment.zoom)
    shear = tf.random.stateless_uniform([n], seeds[2], -1.0, 1.0) * (augment.shear_degrees * math.pi / 180)
    flip = tf.random.stateless_uniform([n], seeds[3]) < (0.5 if augment.flip else 0.0)
    tx = tf.random.stateless_uniform([n], seeds[4], -1.0, 1.0) * augment.translate * w
    ty = tf.random.stateless_uniform([n], seeds[5], -1.0, 1.0) * augment.translate * h
    sign = tf.where(flip, -1.0, 1.0)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    # output (x, y) -> input: c + M (F(out) - c), with M = rotation @ shear @ zoom, F the optional mirror.
    m00, m01 = zx, -tf.sin(shear) * zy
    m10, m11 = tf.zeros_like(zx), tf.cos(shear) * zy
    if augment.rotate_degrees:  # its own seed: runs without rotation draw exactly what they drew before
        rotation_seed = tf.random.experimental.stateless_fold_in(seed, 8)
        angle = tf.random.stateless_uniform([n], rotation_seed, -1.0, 1.0) * (augment.rotate_degrees * math.pi / 180)
        c, s = tf.cos(angle), tf.sin(angle)
        m00, m01, m10, m11 = c * m00 - s * m10, c * m01 - s * m11, s * m00 + c * m10, s * m01 + c * m11
    a0, a1 = m00 * sign, m01
    a2 = cx - m00 * cx * sign - m01 * cy + tx
    b0, b1 = m10 * sign, m11
    b2 = cy - m10 * cx * sign - m11 * cy + ty
    zeros = tf.zeros_like(zx)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST",
    )
    if augment.brightness or augment.contrast:
        shift = tf.random.stateless_uniform([n, 1, 1, 1], seeds[6], -1.0, 1.0) * augment.brightness * 255
        gain = 1 + tf.random.stateless_uniform([n, 1, 1, 1], seeds[7], -1.0, 1.0) * augment.contrast
        mean = tf.reduce_mean(out, axis=[1, 2, 3], keepdims=True)
        out = tf.clip_by_value((out - mean) * gain + mean + shift, 0.0, 255.0)
    return out


def mixup_batch(images, labels, mask, seed, alpha: float):
    """Mixup (Zhang et al. 2018): each example blended with the batch's reversed order, by a weight
    drawn from Beta(alpha, alpha) per example; labels blend the same way, and a label counts only
    where both photos have one (the product of the masks). Pixels or cached maps alike."""
    import tensorflow as tf

    n = tf.shape(images)[0]
    a = tf.random.stateless_gamma([n], seed, alpha)
    b = tf.random.stateless_gamma([n], seed + 1, alpha)
    lam = a / tf.maximum(a + b, 1e-12)

    def blend(t):
        w = tf.reshape(lam, [-1] + [1] * (len(t.shape) - 1))
        return w * t + (1 - w) * tf.reverse(t, [0])

    mask = tf.cast(mask, tf.float32)
    return blend(images), blend(tf.cast(labels, tf.float32)), mask * tf.reverse(mask, [0])


def make_dataset(arrays: SplitArrays, batch: int, *, training: bool, seed: int = 0,
                 augment: Augment | None = None, columns: list[int] | None = None, mixup: float = 0.0):
    """(images float32 [0,255], labels, mask) batches; ``columns`` picks classes (one per model for
    independent/shared). Deterministic for a seed; shuffling, augmentation and mixup (``mixup`` > 0:
    its Beta's alpha) change every epoch."""
    import tensorflow as tf

    ds = tf.data.Dataset.range(len(arrays.ids))
    if training:
        ds = ds.shuffle(len(arrays.ids), seed=seed, reshuffle_each_iteration=True)
    ds = gathered(ds.batch(batch), arrays, columns)
    ds = ds.map(lambda x, y, m: (tf.cast(x, tf.float32), y, m), num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment is not None:
        ds = _map_seeded(ds, seed, lambda b, s: (affine_batch(b[0], s, augment), b[1], b[2]))
    if training and mixup > 0:
        ds = with_mixup(ds, seed, mixup)
    return ds.prefetch(tf.data.AUTOTUNE)


def gathered(indices, arrays: SplitArrays, columns: list[int] | None = None):
    """Batches of row numbers -> (images, labels, mask) read from the arrays: memory-mapped files of
    the run's cache stream from disk, and nothing is copied into a graph constant (as
    ``from_tensor_slices`` would copy the whole split). The same order, for a seed, as shuffling the
    rows themselves."""
    import tensorflow as tf

    images, labels, mask = arrays.images, arrays.labels, arrays.mask
    if columns is not None:
        labels, mask = labels[:, columns], mask[:, columns]

    def read(rows):
        order = np.argsort(rows)
        x = np.empty((len(rows), *images.shape[1:]), images.dtype)
        x[order] = images[rows[order]]  # the rows in file order: the disk reads forward
        return x, labels[rows], mask[rows]

    def gather(rows):
        x, y, m = tf.numpy_function(read, [rows], (tf.as_dtype(images.dtype), tf.float32, tf.float32), stateful=False)
        x.set_shape((None, *images.shape[1:]))
        y.set_shape((None, labels.shape[1]))
        m.set_shape((None, mask.shape[1]))
        return x, y, m

    return indices.map(gather, num_parallel_calls=tf.data.AUTOTUNE)


def with_mixup(ds, seed: int, alpha: float):
    """(images, labels, mask) batches blended by mixup_batch, new pairs and weights every epoch."""
    return _map_seeded(ds, seed + 7_919, lambda b, s: mixup_batch(*b, s, alpha))


def _map_seeded(ds, seed: int, fn):
    """``fn(batch, stateless seed)`` over the batches, a new seed each batch and each epoch."""
    import tensorflow as tf

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(ds, seeds).map(fn, num_parallel_calls=tf.data.AUTOTUNE)
