"""make bench-epoch-parts: what one epoch of a cached-trunk fine-tune spends its time on (edge-best's
head: EfficientNet-Lite2 at 448, the last 2 blocks and the csra head on 14x14x208 maps). Maps a second
for training and for the val pass, by compute precision, head and the dtype the maps are stored in.
Random maps and labels: the cost of the arithmetic does not depend on them.

    python benchmarks/bench_epoch_parts.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import results  # noqa: E402
from edge.text_table import format_rows  # noqa: E402
from toolkit.config import CNNConfig  # noqa: E402
from toolkit.models import build_head, pretrained_prefix  # noqa: E402

MAPS, BATCH, REPEATS = 640, 32, 5
CASES = [("mixed_bfloat16", "csra", "float32"), ("float32", "csra", "float32"), ("mixed_bfloat16", "avg", "float32"),
         ("mixed_bfloat16", "csra", "float16")]


def measure(policy: str, head: str, dtype: str) -> dict:
    keras.mixed_precision.set_global_policy(policy)
    try:
        cfg = CNNConfig(backbone="efficientnet-lite2", img_size=448, finetune_blocks=2, head=head)
        prefix, backbone = pretrained_prefix(cfg)
        shape = tuple(prefix.output.shape[1:])
        model = build_head(cfg, shape, 20, "model", source=backbone)
        model.compile(keras.optimizers.Adam(3e-4), "binary_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.normal(size=(MAPS, *shape)).astype(dtype)
        y = (rng.random((MAPS, 20)) > 0.9).astype(np.float32)
        model.fit(x[: 2 * BATCH], y[: 2 * BATCH], batch_size=BATCH, epochs=1, verbose=0)  # traced once
        model.predict(x[: 2 * BATCH], batch_size=2 * BATCH, verbose=0)
        train, val = [], []
        for _ in range(REPEATS):  # the median of several: a shared machine has slow minutes
            t0 = time.perf_counter()
            model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
            t1 = time.perf_counter()
            model.predict(x, batch_size=2 * BATCH, verbose=0)
            train.append(MAPS / (t1 - t0))
            val.append(MAPS / (time.perf_counter() - t1))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return {"case": f"{policy} {head} {dtype} maps", "precision": policy, "head": head, "maps": dtype,
            "train_maps_per_s": round(float(np.median(train)), 1), "val_maps_per_s": round(float(np.median(val)), 1),
            "train_spread": round(float(max(train) - min(train)), 1)}


def main() -> None:
    rows = [measure(*case) for case in CASES]
    results.write("bench_epoch_parts", rows, "case")
    print(f"\nedge-best's head on cached maps, {MAPS} maps in batches of {BATCH}, "
          f"{results.machine_label(results.machine())}")
    print(format_rows(rows))


if __name__ == "__main__":
    main()
