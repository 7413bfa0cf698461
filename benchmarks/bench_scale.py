"""make bench-scale: does a photo cost the same at 40,000 photos as at 2,500, and does memory stay
flat? For each size, `mledge data synth` at 224 px, then the edge-fast recipe with --epochs 2 and its
export; seconds per 1,000 photos for decoding, the activation cache, an epoch and the export, and the
training processes' peak memory (the recipe's driver and its stage).

    python benchmarks/bench_scale.py WORK_DIR [--sizes 2500,10000,40000]

Memory is sampled from /proc every 0.2 s: ``anon`` is what the processes hold themselves (heap,
tensors); ``rss`` adds the pages of the memory-mapped caches mapped into them at that moment (the
cache store releases them every second: they stay in the kernel's page cache, out of the process).
A finished size is reused; delete its folder to measure it again.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from benchmarks import results  # noqa: E402
from benchmarks.common import ENV, MLEDGE, measured, mledge  # noqa: E402
from edge.text_table import format_rows  # noqa: E402

PHOTO_SIZE = 224
RECIPE = "edge-fast"
DONE = re.compile(r"^(decoding (\w+)|caching the frozen prefix's maps \((\S+)\)): ([\d,]+) photos in ([\d,.]+) s")


def train(data: Path, run: Path, log: Path) -> dict:
    """The recipe into ``run`` (its stderr kept in ``log``); returns the wall time and peak memory."""
    args = ["train", str(data), "--recipe", RECIPE, "--epochs", "2", "--out", str(run)]
    print("+ mledge " + " ".join(args), flush=True)
    found = measured([*MLEDGE, *args], log, ENV)
    if found["returncode"]:
        sys.exit(f"{run}: mledge train failed ({found['returncode']}); see {log}")
    return {k: v for k, v in found.items() if k != "returncode"}


def parts(log: Path, run: Path) -> dict:
    """Seconds and photos of decoding and caching (the progress lines) and of each epoch (history)."""
    seconds: dict[str, float] = {"decode": 0.0, "cache": 0.0}
    photos: dict[str, int] = {"decode": 0, "cache": 0}
    for line in log.read_text().splitlines():
        found = DONE.match(line)
        if found:
            kind = "decode" if found.group(2) else "cache"
            photos[kind] += int(found.group(4).replace(",", ""))
            seconds[kind] += float(found.group(5).replace(",", ""))
    record = run / "models" / "model.json"
    epochs = json.loads(record.read_text())["history"]
    return {"seconds": seconds, "photos": photos, "epoch_s": sum(e["seconds"] for e in epochs) / len(epochs)}


def measure(work: Path, n: int) -> dict:
    where = work / f"scale-{n}"
    row_file = where / "row.json"
    if row_file.is_file():
        print(f"{where}: measured earlier, reused")
        return json.loads(row_file.read_text())
    data, run, bundle = where / "data", where / "run", where / "bundle"
    where.mkdir(parents=True, exist_ok=True)
    if not (data / "VOC2007").is_dir():
        mledge("data", "synth", str(data), "--images", str(n), "--size", str(PHOTO_SIZE), "--force")
    shutil.rmtree(run, ignore_errors=True)  # an interrupted size is measured again from its start
    memory = train(data, run, where / "train.stderr")
    found = parts(where / "train.stderr", run)
    export_s = mledge("export", str(run), "--out", str(bundle), "--force")
    train_photos = len((data / "VOC2007" / "ImageSets" / "Main" / "train.txt").read_text().split())
    per_k = {kind: round(1000 * found["seconds"][kind] / max(found["photos"][kind], 1), 2)
             for kind in ("decode", "cache")}
    row = {"photos": n, "train_photos": train_photos, "decoded": found["photos"]["decode"],
           "decode_s_per_1k": per_k["decode"], "cache_s_per_1k": per_k["cache"],
           "epoch_s_per_1k": round(1000 * found["epoch_s"] / train_photos, 2),
           "export_s": round(export_s, 1), "export_s_per_1k": round(1000 * export_s / n, 2), **memory}
    row_file.write_text(json.dumps(row, indent=1))
    shutil.rmtree(data / "VOC2007" / "JPEGImages", ignore_errors=True)  # the photos are the bulk: not kept
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--sizes", default="2500,10000,40000")
    args = parser.parse_args()
    rows = [measure(args.work, int(n)) for n in args.sizes.split(",")]
    base = rows[0]
    for row in rows:
        for kind in ("decode", "cache", "epoch"):
            row[f"{kind}_ratio"] = round(row[f"{kind}_s_per_1k"] / max(base[f"{kind}_s_per_1k"], 1e-9), 2)
        for kind in ("anon", "rss"):
            row[f"{kind}_ratio"] = round(row[f"peak_{kind}_MB"] / base[f"peak_{kind}_MB"], 2)
    results.write("bench_scale", rows, key="photos", command=["make", "bench-scale", f"SCALE_SIZES={args.sizes}"])
    print(format_rows(rows))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
