"""make bench-scale-data: does every command that reads a dataset cost the same per row at 100,000 rows as
at 10,000, with memory flat? For each size, a CSV dataset of that many rows (the photos of one
`mledge data synth --size 64`, hard-linked under new names, so the disk holds each photo once), then:
`data stats`, `data split`, `data convert --to coco`, `data split --to coco`, `data stats` of the COCO
copy, `evaluate` of a small CNN on every row, and `edge predict` of its int8 bundle on the folder of
photos. For each command: seconds per 1,000 rows and peak memory; for `edge predict` also the delay to
its first result and its memory after a tenth of the photos and after the last.

    python benchmarks/bench_scale_data.py WORK_DIR [--sizes 10000,100000]

Memory is sampled from /proc every 0.2 s over the command's processes (VmRSS). A finished size is
reused; delete its folder to measure it again.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import results  # noqa: E402
from benchmarks.common import ENV, MLEDGE, measured, memory, mledge, sample_memory  # noqa: E402
from edge.text_table import format_rows  # noqa: E402

BASE_PHOTOS = 2000
PHOTO_SIZE = 64
PREDICT_ONLY = ("first_result_s", "rss_tenth_MB", "rss_end_MB")  # edge predict's own columns


def base(work: Path) -> tuple[Path, Path, Path]:
    """The synthetic photos, a small CNN trained on them (one epoch) and its int8 bundle."""
    data, run, bundle = work / "base", work / "base-run", work / "base-int8"
    if not (data / "train.csv").is_file():
        mledge("data", "synth", str(data), "--images", str(BASE_PHOTOS), "--size", str(PHOTO_SIZE),
               "--format", "csv", "--force")
    if not (run / "metrics.json").is_file():
        mledge("train", str(data), "--arch", "multioutput", "--img-size", "48", "--widths", "8,16,32",
               "--epochs", "1", "--patience", "0", "--out", str(run), "--force")
    if not (bundle / "manifest.json").is_file():
        mledge("export", str(run), "--quant", "int8", "--out", str(bundle), "--force")
    return data, run, bundle


def grow(source: Path, dest: Path, rows: int) -> None:
    """DEST/train.csv with ``rows`` rows cycling through SOURCE's rows, each photo a hard link."""
    with open(source / "train.csv", newline="") as f:
        header, *known = list(csv.reader(f))
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    with open(tmp / "train.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for i in range(rows):
            image, *labels = known[i % len(known)]
            name = f"images/{i:07d}{Path(image).suffix}"
            os.link(source / image, tmp / name)
            writer.writerow([name, *labels])
    os.replace(tmp, dest)


def labelled(bundle: Path, images: Path, log: Path) -> dict:
    """``edge predict --format csv`` on a folder: first result, total, memory after a tenth and at the end."""
    total = len(os.listdir(images))
    peak: dict = {}
    stop = threading.Event()
    marks: dict[str, float] = {}
    t0 = time.time()
    with open(log, "w") as err:
        proc = subprocess.Popen([*MLEDGE, "edge", "predict", str(bundle), str(images), "--format", "csv"],
                                env=ENV, stdout=subprocess.PIPE, stderr=err, text=True)
        threading.Thread(target=sample_memory, args=(proc.pid, peak, stop), daemon=True).start()
        count = -1  # the header line first
        for _ in proc.stdout:
            count += 1
            if count == 1:
                marks["first_result_s"] = time.time() - t0
            if count in (total // 10, total):
                marks[f"rss_{'tenth' if count < total else 'end'}_MB"] = memory(proc.pid)["rss"]
        proc.wait()
        stop.set()
    if proc.returncode or count != total:
        sys.exit(f"{images}: mledge edge predict exited with {proc.returncode} after {count} of {total}; see {log}")
    return {"seconds": round(time.time() - t0, 1), "peak_rss_MB": round(peak.get("rss", 0), 1),
            **{k: round(marks[k], 2 if k.endswith("_s") else 1) for k in PREDICT_ONLY}}


def measure(work: Path, rows: int, run: Path, bundle: Path, source: Path) -> list[dict]:
    where = work / f"rows-{rows}"
    row_file = where / "rows.json"
    if row_file.is_file():
        print(f"{where}: measured earlier, reused")
        return json.loads(row_file.read_text())
    where.mkdir(parents=True, exist_ok=True)
    data = where / "csv"
    if not (data / "train.csv").is_file():
        grow(source, data, rows)
    for made in ("split", "coco", "split-coco"):
        shutil.rmtree(where / made, ignore_errors=True)
    commands = {
        "data stats (CSV)": ["data", "stats", str(data), "--split", "train"],
        "data split (CSV)": ["data", "split", str(data), "--out", str(where / "split")],
        "data convert --to coco": ["data", "convert", str(data), str(where / "coco"), "--to", "coco"],
        "data split --to coco": ["data", "split", str(data), "--out", str(where / "split-coco"), "--to", "coco"],
        "data stats (COCO)": ["data", "stats", str(where / "coco"), "--split", "train"],
        "evaluate": ["evaluate", str(run), str(data), "--split", "train", "--format", "json"],
    }
    out = []
    for name, args in commands.items():
        print(f"+ mledge {' '.join(args)}", flush=True)
        found = measured([*MLEDGE, *args], where / f"{len(out)}.stderr", ENV)
        if found["returncode"]:
            sys.exit(f"{name}: mledge exited with {found['returncode']}; see {where}/{len(out)}.stderr")
        out.append({"command": name, "seconds": found["train_s"], "peak_rss_MB": found["peak_rss_MB"],
                    **dict.fromkeys(PREDICT_ONLY)})
    print(f"+ mledge edge predict {bundle} {data / 'images'} --format csv", flush=True)
    out.append({"command": "edge predict", **labelled(bundle, data / "images", where / "predict.stderr")})
    for row in out:
        row.update(rows=rows, row=f"{row['command']} @ {rows}", s_per_1k=round(1000 * row["seconds"] / rows, 3))
    row_file.write_text(json.dumps(out, indent=1))
    for made in ("split", "coco", "split-coco"):
        shutil.rmtree(where / made, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    source, run, bundle = base(args.work)
    sizes = [int(n) for n in args.sizes.split(",")]
    measured_rows = {n: measure(args.work, n, run, bundle, source) for n in sizes}
    first = {row["command"]: row for row in measured_rows[sizes[0]]}
    rows = []
    for n in sizes:
        for row in measured_rows[n]:
            start = first[row["command"]]
            rows.append({"row": row["row"], "command": row["command"], "rows": n, "seconds": row["seconds"],
                         "s_per_1k": row["s_per_1k"],
                         "s_per_1k_ratio": round(row["s_per_1k"] / max(start["s_per_1k"], 1e-9), 2),
                         "peak_rss_MB": row["peak_rss_MB"],
                         "peak_rss_ratio": round(row["peak_rss_MB"] / start["peak_rss_MB"], 2),
                         **{k: row[k] for k in PREDICT_ONLY}})
    results.write("bench_scale_data", rows, key="row",
                  command=["make", "bench-scale-data", f"SCALE_DATA_SIZES={args.sizes}"])
    print(format_rows([{k: v for k, v in row.items() if k != "row"} for row in rows]))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        main()
    except subprocess.CalledProcessError as err:  # mledge has said why in one line
        sys.exit(f"bench_scale_data.py: stopped, mledge exited with {err.returncode}")
