"""make bench-train-speed: where training time goes, side by side in one run, on real photos.

- decode: JPEG decode and resize of each photo, once, into the uint8 array training reads;
- pipeline alone: shuffle, batch and augment (the study's flip, zoom and shear) with no model;
- model alone: the study's CNN on tensors already in memory, at each precision;
- end to end: the same fit on the real pipeline, at each precision;
- --train-backbone: EfficientNet-Lite0 at 320 trained whole (when its weights are imported);
- independent: one epoch of the 20 per-class CNNs through the training code (each scored on 256 val
  photos, checkpointed, saved), one by one and stacked (--stack), against 20x one CNN's epoch.

``python benchmarks/bench_train_speed.py VOC_ROOT [IMAGES]`` (the first IMAGES training photos, 512
by default, 100x100, batch 32). Prints numbers; the targets are the issue's, checked by eye.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import results  # noqa: E402
from edge.text_table import format_rows  # noqa: E402
from toolkit.backbones.weights import weights_path  # noqa: E402
from toolkit.config import TrainConfig  # noqa: E402
from toolkit.data.arrays import load_arrays  # noqa: E402
from toolkit.data.dataset import load_split  # noqa: E402
from toolkit.data.pipeline import Augment, make_dataset  # noqa: E402
from toolkit.losses import make_loss  # noqa: E402
from toolkit.models import CNNConfig, build_model  # noqa: E402
from toolkit.run import Run  # noqa: E402
from toolkit.train.precision import BF16_FLAGS, POLICIES, cpu_flags  # noqa: E402
from toolkit.train.units import train_units  # noqa: E402

BATCH, SIZE = 32, 100
VAL = 256  # val photos each CNN is scored on after its epoch


def rate(images: int, seconds: float) -> float:
    return round(images / seconds, 1)


def show(rows: list[dict]) -> None:
    print(f"{rows[-1]['stage']:<55} {rows[-1]['precision']:>9} {rows[-1]['images_per_s']:>8} images/s", flush=True)


def fit_rate(data, steps: int, precision: str, outputs: int = 20, model_cfg: CNNConfig | None = None,
             batch: int = BATCH) -> float:
    """Images/s of Keras fit over ``steps`` batches, after one warm-up epoch of 2 steps."""
    keras.mixed_precision.set_global_policy(POLICIES[precision])
    try:
        keras.utils.set_random_seed(0)
        model = build_model(model_cfg or CNNConfig(SIZE), outputs, "m")
        labels = np.zeros((1, outputs), np.float32)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss("bce", labels, labels + 1))
        model.fit(data.take(2), epochs=1, verbose=0)
        t0 = time.perf_counter()
        model.fit(data.take(steps), epochs=1, verbose=0)
        return rate(steps * batch, time.perf_counter() - t0)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def independent_epoch(voc_root: str, classes: list[str], arrays, val, stack: int, only: list[str] | None) -> float:
    """Seconds of one epoch of --arch independent through the training code itself (fit, val score of
    each CNN, checkpoint, model files), in a scratch RUN."""
    cfg = TrainConfig(root=voc_root, arch="independent", classes=classes, model=CNNConfig(SIZE), epochs=1,
                      batch=BATCH, patience=0, stack=stack)
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp))
        run.models_dir.mkdir(parents=True)
        keras.utils.set_random_seed(0)
        t0 = time.perf_counter()
        train_units(run, cfg, arrays, val, tf.distribute.get_strategy(), only)
        return time.perf_counter() - t0


def main(voc_root: str, limit: int) -> None:
    split = load_split(voc_root, "train")
    t0 = time.perf_counter()
    arrays = load_arrays(split, SIZE, limit=limit)
    decode = rate(len(arrays.ids), time.perf_counter() - t0)
    n, steps = len(arrays.ids), len(arrays.ids) // BATCH
    rows = [{"stage": "decode + resize, once per photo (4 threads)", "precision": "-", "images_per_s": decode}]
    show(rows)

    for name, augment in (("pipeline alone: shuffle, batch, cast", None),
                          ("pipeline alone: + augmentation (flip, zoom, shear)", Augment())):
        data = make_dataset(arrays, BATCH, training=True, seed=0, augment=augment)
        for _ in data.take(2):
            pass
        t0 = time.perf_counter()
        count = sum(int(x.shape[0]) for x, _, _ in data)
        rows.append({"stage": name, "precision": "-", "images_per_s": rate(count, time.perf_counter() - t0)})
        show(rows)

    x = tf.random.uniform([BATCH, SIZE, SIZE, 3], 0, 255)
    y = tf.cast(tf.random.uniform([BATCH, 20]) < 0.1, tf.float32)
    in_memory = tf.data.Dataset.from_tensors((x, y, tf.ones_like(y))).repeat()
    real = make_dataset(arrays, BATCH, training=True, seed=0, augment=Augment()).repeat()
    # Without AMX or AVX512-BF16, bfloat16 is emulated and slow: a few steps tell.
    native = bool(cpu_flags() & BF16_FLAGS)
    for precision in ("float32", "bfloat16"):
        n_steps = steps if precision == "float32" or native else 4
        rows.append({"stage": "model alone (tensors in memory)", "precision": precision,
                     "images_per_s": fit_rate(in_memory, n_steps, precision)})
        show(rows)
        rows.append({"stage": "end to end (the study's recipe)", "precision": precision,
                     "images_per_s": fit_rate(real, n_steps, precision)})
        show(rows)

    val = load_arrays(load_split(voc_root, "val"), SIZE, limit=VAL)
    for what, stack, only in (("one class's CNN, one epoch", 1, split.classes[:1]),
                              ("independent, 20 CNNs one by one (--stack 1)", 1, None),
                              ("independent, 20 CNNs stacked (--stack 20)", 20, None)):
        seconds = independent_epoch(voc_root, split.classes, arrays, val, stack, only)
        cnn_images = len(only or split.classes) * n
        rows.append({"stage": what, "precision": "float32", "images_per_s": rate(cnn_images, seconds)})
        show(rows)
    independent = rows[-3:]
    lite = CNNConfig(320, backbone="efficientnet-lite0", freeze_backbone=False)
    if weights_path(lite.backbone).is_file():  # what --train-backbone costs: every step runs the whole network
        x = tf.random.uniform([16, 320, 320, 3], 0, 255)
        data = tf.data.Dataset.from_tensors((x, tf.cast(tf.random.uniform([16, 20]) < 0.1, tf.float32),
                                             tf.ones([16, 20]))).repeat()
        rows.append({"stage": "Lite0 at 320, --train-backbone, model alone (batch 16)", "precision": "float32",
                     "images_per_s": fit_rate(data, 8, "float32", model_cfg=lite, batch=16)})
        show(rows)
    print(f"{n} training photos at {SIZE}x{SIZE}, batch {BATCH}, {os.cpu_count()} cores; CPU bfloat16 units: "
          f"{', '.join(sorted(cpu_flags() & BF16_FLAGS)) or 'none (AMX / AVX512-BF16 absent: bfloat16 is emulated)'}")
    results.write("bench_train_speed", [{"row": f"{r['stage']} ({r['precision']})", **r} for r in rows], "row")
    print(format_rows(rows))  # the whole table again, aligned
    one = independent[0]["images_per_s"]
    for row in independent[1:]:  # 20 CNNs' epoch over one CNN's: the rates are per CNN-image, so 20 x one / rate
        print(f"{row['stage']}: epoch = {20 * one / row['images_per_s']:.1f}x one CNN's epoch (target: at most 20x)")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 512)
