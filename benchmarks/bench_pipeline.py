"""make bench-pipeline: from photos to a checked edge bundle, stage by stage, for one recipe (edge-best
by default): ``mledge train DATA --recipe NAME`` then ``mledge export RUN`` (the recipe's quantization,
with its val check), each from scratch. Prints every stage's seconds and photos/s, the wall total and
the val mAP, with the machine, and writes a record.

    python benchmarks/bench_pipeline.py VOC_ROOT WORK_DIR [RECIPE]

The stages come from the run's own train.log (its timestamps, the activations line, each epoch's
seconds) and the export's manifest, so the same script times another commit the same way:
``PIPELINE_CODE=DIR`` (a checkout of it, e.g. a git worktree) runs that checkout's mledge, and the
record names its commit. ``PIPELINE_CALIBRATION=100,1000`` also exports the run calibrated on
those numbers of photos (the default is 300): seconds and bundle val mAP of each.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import results  # noqa: E402
from benchmarks.common import ENV, mledge  # noqa: E402
from edge.text_table import format_rows  # noqa: E402
from toolkit.recipes import RECIPES  # noqa: E402

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _stamp(line: str) -> float:
    return datetime.strptime(STAMP.match(line).group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def train_stages(log: Path, started: float, ended: float) -> dict:
    """Seconds of: start-up and decoding (to the first log line), the activation cache, the epochs,
    and what follows the last epoch (the val scores behind the thresholds, metrics)."""
    lines = [line for line in log.read_text().splitlines() if STAMP.match(line)]
    cache = next((float(m.group(1)) for m in map(re.compile(r"activations .* in ([\d.]+)s").search, lines) if m), 0.0)
    epochs = [float(m.group(1)) for m in map(re.compile(r"INFO epoch \d+: .*\(([\d.]+)s\)$").search, lines) if m]
    done = next(_stamp(line) for line in reversed(lines) if ": done, kept epoch" in line)
    return {"startup_decode": _stamp(lines[0]) - started, "cache": cache, "epochs": sum(epochs),
            "epoch_count": len(epochs), "fit_other": done - _stamp(lines[0]) - cache - sum(epochs),
            "finalize": ended - done}


def code_commit() -> str:
    """The commit of the mledge that runs: PIPELINE_CODE's checkout, else this one."""
    code = os.environ.get("PIPELINE_CODE")
    if not code:
        return results.commit()
    return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=code, capture_output=True,
                          text=True).stdout.strip()


def main(root: str, work: str, recipe: str) -> None:
    folder = Path(work) / "pipeline"
    shutil.rmtree(folder, ignore_errors=True)  # from scratch: nothing reused
    folder.mkdir(parents=True)
    run, bundle = folder / recipe, folder / f"{recipe}-bundle"
    t0 = time.time()
    mledge("train", root, "--recipe", recipe, "--out", str(run))
    t1 = time.time()
    mledge("export", str(run), "--out", str(bundle))
    t2 = time.time()
    log = next(run.glob("stages/*/train.log"))
    stages = train_stages(log, t0, t1)
    manifest = json.loads((bundle / "manifest.json").read_text())
    ev, cal = manifest["evaluation"], manifest.get("calibration") or {"images": 0}
    sizes = re.search(r"\((\d+) images\), val \S+ \((\d+) images\)", log.read_text())
    train_images, val_images = int(sizes.group(1)), int(sizes.group(2))
    convert = manifest["conversion_seconds"]
    rows = [
        ("start-up and decoding", stages["startup_decode"], train_images + val_images),
        ("activation cache", stages["cache"], train_images + val_images),
        (f"epochs ({stages['epoch_count']})", stages["epochs"], train_images * stages["epoch_count"]),
        ("fit: the rest", stages["fit_other"], None),
        ("val scores, metrics", stages["finalize"], val_images),
        (f"export: conversion, calibration ({cal['images']})", convert, cal["images"] or None),
        ("export: decoding, val check, metadata", t2 - t1 - convert, val_images),
    ]
    table = [{"stage": name, "seconds": round(s, 1), "photos_per_s": round(n / s, 1) if n and s > 0 else None}
             for name, s, n in rows]
    table.append({"stage": "wall total", "seconds": round(t2 - t0, 1), "photos_per_s": None})
    figures = {"pipeline": f"{recipe} at {code_commit()}", "recipe": recipe, "code_commit": code_commit(),
               "quant": manifest["quantization"], "wall_s": round(t2 - t0, 1),
               "train_s": round(t1 - t0, 1), "export_s": round(t2 - t1, 1),
               "stages": {r["stage"]: r["seconds"] for r in table},
               "keras_mAP_area": round(100 * ev["keras_mAP_area"], 2),
               "bundle_mAP_area": round(100 * ev["bundle_mAP_area"], 2), "MB": round(manifest["bytes"] / 1e6, 2)}
    records = [figures]
    for n in [int(v) for v in os.environ.get("PIPELINE_CALIBRATION", "").split(",") if v]:
        other = folder / f"{recipe}-calib{n}"  # the same run, calibrated on n photos
        seconds = mledge("export", str(run), "--calib-images", str(n), "--out", str(other))
        m = json.loads((other / "manifest.json").read_text())
        records.append({"pipeline": f"{recipe} at {code_commit()}, calibration {n}", "recipe": recipe,
                        "code_commit": code_commit(), "quant": m["quantization"], "calibration": n,
                        "export_s": round(seconds, 1), "conversion_s": m["conversion_seconds"],
                        "keras_mAP_area": round(100 * m["evaluation"]["keras_mAP_area"], 2),
                        "bundle_mAP_area": round(100 * m["evaluation"]["bundle_mAP_area"], 2)})
    results.write("bench_pipeline", records, "pipeline")
    print(f"\n{recipe} from photos to a checked {manifest['quantization']} bundle on "
          f"{results.machine_label(results.machine())}: val mAP {figures['keras_mAP_area']} (Keras), "
          f"{figures['bundle_mAP_area']} (bundle), {figures['MB']} MB")
    print(format_rows(table))
    if len(records) > 1:
        print("\nthe same run calibrated on other numbers of photos")
        print(format_rows([{k: r.get(k) for k in ("calibration", "conversion_s", "export_s", "bundle_mAP_area")}
                           for r in records[1:]]))


if __name__ == "__main__":
    if os.environ.get("PIPELINE_CODE"):
        ENV["PYTHONPATH"] = os.environ["PIPELINE_CODE"]
    if len(sys.argv) < 3:
        sys.exit("usage: bench_pipeline.py VOC_ROOT WORK_DIR [RECIPE]")
    name = sys.argv[3] if len(sys.argv) > 3 else "edge-best"
    if name not in RECIPES:
        sys.exit(f"bench_pipeline.py: unknown recipe {name} (known: {', '.join(RECIPES)})")
    main(sys.argv[1], sys.argv[2], name)
