"""make bench-distill: the study's CNN (100x100, from scratch) taught by EfficientNet-Lite0.

Trains the teacher (Lite0 at 224, last 2 blocks fine-tuned on cached activations), exports its int8
bundle, measures what the teacher costs per image (Keras in float32 and bfloat16 against the int8
bundle through the edge runtime), then trains students on `train` and reports on `val`: one row per architecture x
teacher x distill weight, with the plain recipe's figure beside it. Finished runs are reused,
interrupted ones resumed: ``python benchmarks/bench_distill.py VOC_ROOT WORK_DIR [NAME,...|all]``.

The half-label rows hide the labels of every other `train` photo: the teacher and the students learn
from the labelled half, and ``--unlabeled`` adds the hidden half as photos the teacher alone teaches.
The shared-mo-trunk rows train 3 epochs of heads on the frozen conv layers of the distilled
multioutput student (``--trunk RUN``), with and without the teacher; the independent-mo-init row
starts each class's CNN from that student (``--init RUN``) and tunes it 3 epochs on its class.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import results  # noqa: E402
from benchmarks.common import ensure_bundle, ensure_run, mledge, run_named  # noqa: E402
from edge.text_table import format_rows  # noqa: E402

TEACHER = ["--arch", "multioutput", "--backbone", "efficientnet-lite0", "--img-size", "224", "--finetune-blocks",
           "2", "--epochs", "15", "--patience", "6", "--lr", "3e-4", "--schedule", "cosine"]
# The augmentation of bench-train's best recipe: every student's views are made with it, so the students
# of one teacher share one --teacher-cache.
AUGMENT = ["--zoom", "0.3", "--translate", "0.15", "--jitter", "0.2"]
# The study's CNN with the batch-16 recipe of bench-train (cosine from 5e-4), 30 epochs.
RECIPE = ["--epochs", "30", "--patience", "10", "--lr", "5e-4", "--batch", "16", "--schedule", "cosine", *AUGMENT]
# The long row: 100 epochs on 32 views a photo (each view seen about 3 times, not 12)
LONG = ["--epochs", "100", "--patience", "30", "--lr", "5e-4", "--batch", "16", "--schedule", "cosine", *AUGMENT]
# Longer still, on the int8 teacher (twice as fast to ask as Keras float32 here): 300 epochs on 64 views
# a photo, batch 32 at the rate scaled by sqrt(2), never stopped early (the cosine rate decays to 0 at 300)
XLONG = ["--epochs", "300", "--patience", "0", "--lr", "7e-4", "--batch", "32", "--schedule", "cosine", *AUGMENT]


def fresh(seed: int) -> list[str]:
    """A further stage of the 300-epoch student (its kept model, by --init), which had learnt its own views
    by heart: 60 epochs on 64 fresh views a photo (another seed makes other views), each seen about once."""
    return ["--epochs", "60", "--patience", "0", "--lr", "3e-4", "--batch", "32", "--schedule", "cosine", "--seed",
            str(seed), *AUGMENT]


# The half-label rows: 10 epochs (three runs fit an afternoon on 2 cores), 4 teacher views a photo.
HALF = ["--epochs", "10", "--patience", "10", "--lr", "5e-4", "--batch", "16", "--schedule", "cosine", *AUGMENT]
# bench-train's independent-3 and shared-3, the per-class models trained side by side (--stack 20)
PER_CLASS = ["--epochs", "3", "--patience", "0", "--stack", "20", *AUGMENT]
# --init: a trained CNN is tuned, not trained anew: a tenth of the rate, decaying
TUNE = ["--lr", "1e-4", "--schedule", "cosine"]


def distil(teacher: str, weight: float, temperature: float = 2.0, views: str = "", count: int = 8) -> list[str]:
    """Options for a student of ``teacher`` (a key of the places in main) on ``count`` views of each
    photo, kept in WORK/distill/views-NAME."""
    return ["--teacher", "{" + teacher + "}", "--teacher-cache", "{base}/views-" + (views or teacher),
            "--distill-weight", str(weight), "--temperature", str(temperature), "--teacher-views", str(count)]


STUDENTS = {  # name -> (architecture, data ("full" or "half"), options; "{teacher}" etc. filled in)
    "multioutput-plain": ("multioutput", "full", RECIPE),
    "multioutput-lite0-w0.7-t2": ("multioutput", "full", [*RECIPE, *distil("teacher", 0.7)]),
    "multioutput-lite0-w0.7-t2-long": ("multioutput", "full", [*LONG, *distil("teacher", 0.7, views="teacher-v32",
                                                                              count=32)]),
    "multioutput-int8-w0.7-t2-xlong": ("multioutput", "full", [*XLONG, *distil("bundle", 0.7, views="bundle-v64",
                                                                              count=64)]),
    "multioutput-int8-w0.7-t2-xlong-fresh": ("multioutput", "full", [
        *fresh(1), *distil("bundle", 0.7, views="bundle-v64-seed1", count=64),
        "--init", "{base}/multioutput-int8-w0.7-t2-xlong"]),
    # the same, scoring and keeping the moving average of its weights (about the last 6 epochs' steps)
    "multioutput-int8-w0.7-t2-xlong-fresh-ema": ("multioutput", "full", [
        *fresh(1), "--ema", "0.998", *distil("bundle", 0.7, views="bundle-v64-seed1", count=64),
        "--init", "{base}/multioutput-int8-w0.7-t2-xlong"]),
    # a third stage: that run tuned 60 epochs more on 64 views of yet another seed
    "multioutput-int8-w0.7-t2-xlong-fresh2-ema": ("multioutput", "full", [
        *fresh(2), "--ema", "0.998", *distil("bundle", 0.7, views="bundle-v64-seed2", count=64),
        "--init", "{base}/multioutput-int8-w0.7-t2-xlong-fresh-ema"]),
    "multioutput-lite0-w0.9-t2": ("multioutput", "full", [*RECIPE, *distil("teacher", 0.9)]),
    "multioutput-int8-w0.7-t2": ("multioutput", "full", [*RECIPE, *distil("bundle", 0.7)]),
    "multioutput-int8-w0.9-t2": ("multioutput", "full", [*RECIPE, *distil("bundle", 0.9)]),
    "multioutput-int8-w1.0-t2": ("multioutput", "full", [*RECIPE, *distil("bundle", 1.0)]),
    "independent-lite0-w0.7-t2": ("independent", "full", [*PER_CLASS, *distil("teacher", 0.7)]),
    "shared-lite0-w0.7-t2": ("shared", "full", [*PER_CLASS, *distil("teacher", 0.7)]),
    "shared-multitask-lite0-w0.7-t2": ("shared", "full", [*PER_CLASS, "--trunk", "multitask",
                                                           *distil("teacher", 0.7)]),
    # the heads on the frozen trunk of the distilled multioutput student (its 30 epochs are not counted here)
    "shared-mo-trunk-w0.7-t2": ("shared", "full", [*PER_CLASS, "--trunk", "{base}/multioutput-lite0-w0.7-t2",
                                                   *distil("teacher", 0.7)]),
    "shared-mo-trunk-plain": ("shared", "full", [*PER_CLASS, "--trunk", "{base}/multioutput-lite0-w0.7-t2"]),
    # 20 separate CNNs, each started from the distilled multioutput student and tuned 3 epochs on its class
    "independent-mo-init-w0.7-t2": ("independent", "full", [*PER_CLASS, *TUNE, *distil("teacher", 0.7),
                                                            "--init", "{base}/multioutput-lite0-w0.7-t2"]),
    "half-plain": ("multioutput", "half", HALF),
    "half-lite0-w0.7-t2": ("multioutput", "half", [*HALF, *distil("half_teacher", 0.7, count=4)]),
    "half-lite0-w0.7-t2-unlabeled": ("multioutput", "half", [*HALF, *distil("half_teacher", 0.7, count=4,
                                                                            views="half_teacher-unlabeled"),
                                                             "--unlabeled", "{unlabeled}"]),
}
DEFAULT = ["multioutput-lite0-w0.7-t2"]
# students that start from another student (its trunk, or its weights with --init), trained first
NEEDS = {
    "shared-mo-trunk-w0.7-t2": "multioutput-lite0-w0.7-t2",
    "shared-mo-trunk-plain": "multioutput-lite0-w0.7-t2",
    "independent-mo-init-w0.7-t2": "multioutput-lite0-w0.7-t2",
    "multioutput-int8-w0.7-t2-xlong-fresh": "multioutput-int8-w0.7-t2-xlong",
    "multioutput-int8-w0.7-t2-xlong-fresh-ema": "multioutput-int8-w0.7-t2-xlong",
    "multioutput-int8-w0.7-t2-xlong-fresh2-ema": "multioutput-int8-w0.7-t2-xlong-fresh-ema",
}
# Figures of the same architectures without a teacher, from make bench-train (README), for the table.
PLAIN = {"independent": 14.10, "shared": 14.90}


def half_labels(voc_root: str, work: Path) -> tuple[Path, Path]:
    """The VOC copy as CSV with the labels of every other train photo removed; those photos, hard-linked
    into a folder of their own, are the unlabelled set."""
    data, unlabeled = work / "data-half", work / "unlabeled-half"
    if (data / "train.csv").is_file():
        return data, unlabeled
    full = work / "data-csv"
    if not full.is_dir():
        mledge("data", "convert", voc_root, str(full), "--to", "csv")
    data.mkdir(parents=True, exist_ok=True)
    unlabeled.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(full):  # hard links: a dataset's photos must lie inside its folder
        if name == "train.csv" or (data / name).exists():
            continue
        if (full / name).is_dir():
            shutil.copytree(full / name, data / name, copy_function=os.link)
        else:
            os.link(full / name, data / name)
    with open(full / "train.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    image = next(k for k in rows[0] if k.lower() in ("image", "filename", "file_name", "path"))
    for row in rows[1::2]:
        src = (full / row[image]).resolve()
        if not (unlabeled / src.name).exists():  # made by an earlier, interrupted call
            os.link(src, unlabeled / src.name)
    tmp = data / ".train.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[0::2])
    os.replace(tmp, data / "train.csv")
    return data, unlabeled


def teacher_rates(run: Path, bundle: Path, voc_root: str, images: int = 256) -> list[dict]:
    """Images/s of each way to run the teacher, on val photos at its input size, and how far each one's
    probabilities move from Keras float32's: the saved model in float32, the same weights computing in
    bfloat16 (where the CPU has bfloat16 units), the int8 bundle through the edge runtime."""
    import numpy as np

    from toolkit.data.arrays import load_arrays
    from toolkit.metrics import mean_ap
    from toolkit.predict import load_run_split, predict_batches
    from toolkit.run import Run
    from toolkit.train.precision import BF16_FLAGS, cpu_flags, with_policy
    from toolkit.train.teacher import describe_teacher, open_teacher

    cfg = Run(run).config()
    cfg.root = voc_root
    val = load_arrays(load_run_split(cfg, "val"), cfg.model.pixels, limit=images)
    pixels = val.images
    ways = [("Keras float32 (the RUN)", open_teacher(describe_teacher(run, cfg.classes)).predict)]
    if cpu_flags() & BF16_FLAGS:
        half = [with_policy(m, "mixed_bfloat16") for m in Run(run).load_models()]
        ways.append(("Keras bfloat16 (the RUN's weights)",
                     lambda x: np.concatenate([predict_batches(m, x) for m in half], axis=1)))
    ways.append(("int8 bundle, edge runtime", open_teacher(describe_teacher(bundle, cfg.classes)).predict))
    rows, reference = [], None
    for name, predict in ways:
        predict(pixels[:32])  # warm-up: tracing, interpreter allocation
        t0 = time.time()
        probs = np.concatenate([predict(pixels[start : start + 64]) for start in range(0, len(pixels), 64)])
        rate = len(pixels) / (time.time() - t0)
        reference = probs if reference is None else reference
        rows.append({"teacher": name, "input": cfg.model.pixels, "images_per_s": round(rate, 1),
                     f"mAP_{len(pixels)}_val": round(100 * mean_ap(val.labels, probs, val.mask > 0), 2),
                     "max_dprob_vs_float32": f"{np.abs(probs - reference).max():.3f}"})
    return rows


def report(run: Path, name: str, arch: str) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    records = [json.loads(p.read_text()) for p in sorted((run / "models").glob("*.json"))]
    records = [r for r in records if "adopted_from" not in r]  # a trunk trained in another run
    trained = sum(r["train_images"] * r["epochs"] for r in records)
    teacher = metrics.get("teacher") or {}
    return {
        "student": name, "arch": arch, "teacher": Path(teacher["path"]).name if teacher else "-",
        "weight": teacher.get("weight", 0), "T": teacher.get("temperature", "-"),
        "val_mAP_area": round(100 * metrics["mAP_area"], 2), "val_mAP_voc07": round(100 * metrics["mAP_voc07"], 2),
        "epochs": sum(r["epochs"] for r in records), "best": max(r["best_epoch"] for r in records),
        "train_img_s": round(trained / metrics["train_seconds"], 1),
        "views_s": teacher.get("seconds", 0), "train_s": round(metrics["train_seconds"]),
    }


def main(voc_root: str, work: str, names: list[str]) -> None:
    base = Path(work) / "distill"
    places = {"base": base, "teacher": base / "teacher-lite0-224", "bundle": base / "teacher-lite0-224-int8"}
    ensure_run(places["teacher"], voc_root, TEACHER)
    ensure_bundle(places["bundle"], places["teacher"], ["--quant", "int8"])
    roots = {"full": voc_root}
    if any(STUDENTS[n][1] == "half" for n in names):
        half, places["unlabeled"] = half_labels(voc_root, base)
        roots["half"] = str(half)
        places["half_teacher"] = base / "teacher-lite0-224-half"
        ensure_run(places["half_teacher"], roots["half"], TEACHER)
    def ensure_student(name: str) -> None:
        arch, data, args = STUDENTS[name]
        args = [a.format(**{k: str(v) for k, v in places.items()}) for a in args]
        ensure_run(base / name, roots[data], ["--arch", arch, *args])

    def ensure_with_needs(name: str) -> None:
        if name in NEEDS:  # trained (or reused, when finished) before the student that needs it
            ensure_with_needs(NEEDS[name])
        ensure_student(name)

    rows = []
    for name in names:
        ensure_with_needs(name)
        arch = STUDENTS[name][0]
        rows.append(report(base / name, name, arch))
        if arch in PLAIN:
            rows.append({"student": f"{arch}-plain (make bench-train)", "arch": arch, "teacher": "-", "weight": 0,
                         "val_mAP_area": PLAIN[arch]})
    results.write("bench_distill", [r for r in rows if "plain (make bench-train)" not in r["student"]], "student")
    teacher_metrics = json.loads((places["teacher"] / "metrics.json").read_text())
    print("\nteacher: EfficientNet-Lite0 224, last 2 blocks fine-tuned: val mAP "
          f"{100 * teacher_metrics['mAP_area']:.2f}")
    rates = teacher_rates(places["teacher"], places["bundle"], voc_root)
    results.write("bench_distill_teacher", rates, "teacher")
    print(format_rows(rates))
    print("\nVOC 2007 (shared copy): students trained on 'train', reported on 'val'; the study's CNN at 100x100")
    print(format_rows(rows))
    print("train_img_s: training steps only; views_s: the teacher scoring its views once, before the first epoch")


if __name__ == "__main__":
    run_named("bench_distill", main, STUDENTS, DEFAULT)
