"""make bench-soak: a bundle on the board for a long run, measured (numbers, not a test).

- ``watch``: photos are copied into the watched folder as it runs (1,000 a subfolder, a bounded
  backlog ahead of it) until PHOTOS have been classified; then every line is read back: none lost,
  none twice, and the latency (decode + run, the line's ``ms``) and the watch's RSS per 10,000.
- ``serve``: REQUESTS posts of real photos from a bounded local client (keep-alive connections, one
  thread each) at 1, 4 and 16 concurrent, each request named, each answer checked to be its own;
  client-side latency and the server's RSS per 10,000, and the server's own count at the end.
- The same, shorter, under emulated aarch64 (qemu-user; make test-arm's sysroot) when ``--arm``.

    python benchmarks/bench_soak.py BUNDLE PHOTOS_DIR WORK_DIR [--photos N] [--requests N] [--arm]

Records: benchmarks/results/bench_soak.jsonl (one row per run) and bench_soak_blocks.jsonl (one row
per 10,000). Nothing here imports TensorFlow: it runs in the edge environment, as a board would.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import itertools
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import results  # noqa: E402
from edge.preprocess import list_images  # noqa: E402
from edge.text_table import format_rows  # noqa: E402
from tests.edge.service import start_service  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BLOCK = 10_000
BACKLOG = 500  # photos copied ahead of the watch: arrivals keep coming, the folder never floods


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def last_source(out: Path) -> str | None:
    """The source of the newest line of the watch's output (its tail only)."""
    try:
        with out.open("rb") as f:
            f.seek(max(0, out.stat().st_size - 8192))
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)["source"]
        except (ValueError, KeyError):
            continue
    return None


def percentiles(values) -> tuple[float, float]:
    p50, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 99])
    return round(float(p50), 3), round(float(p99), 3)


def soak_watch(python: list[str], bundle: str, sources: list[Path], count: int, work: Path, label: str):
    folder, out = work / "in", work / "out.jsonl"
    shutil.rmtree(work, ignore_errors=True)
    folder.mkdir(parents=True)
    proc = subprocess.Popen([*python, "-m", "mledge", "edge", "watch", bundle, str(folder), "--out", str(out),
                             "--settle", "0.2", "--poll", "0.05", "--rotate-mb", "16", "--keep", "1000",
                             "--threads", "1"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rss, copied, t0 = {}, 0, time.perf_counter()
    done = 0
    while done < count:
        source = last_source(out)
        done = int(Path(source).stem[1:]) + 1 if source else 0
        if done >= 1000 and "start" not in rss:
            rss["start"] = rss_mb(proc.pid)  # after the first thousand: the interpreter is warm
        if done // BLOCK > len(rss) - 1 and "start" in rss:
            rss[done // BLOCK * BLOCK] = rss_mb(proc.pid)
        if proc.poll() is not None:
            sys.exit(f"{label}: the watch stopped: {proc.stderr.read().decode()[-300:]}")
        if copied < count and copied - done < BACKLOG:
            for _ in range(min(64, count - copied)):
                sub = folder / f"{copied // 1000:03d}"
                sub.mkdir(exist_ok=True)
                shutil.copyfile(sources[copied % len(sources)], sub / f"p{copied:07d}.jpg")
                copied += 1
        else:
            time.sleep(0.02)
    seconds = time.perf_counter() - t0
    rss["end"] = rss_mb(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    lines = sorted(out.parent.glob("out.jsonl*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    ms, seen, errors = [], collections.Counter(), 0
    for path in lines:
        if path.name.endswith(".checkpoint"):
            continue
        for line in path.read_text().splitlines():
            row = json.loads(line)
            seen[row["source"]] += 1
            errors += "error" in row
            if "ms" in row:
                ms.append(row["ms"])
    expected = {str(folder / f"{k // 1000:03d}" / f"p{k:07d}.jpg") for k in range(count)}
    blocks = []
    for start in range(0, len(ms), BLOCK):
        p50, p99 = percentiles(ms[start : start + BLOCK])
        blocks.append({"row": f"{label} watch {start + 1}-{start + BLOCK}", "p50_ms": p50, "p99_ms": p99,
                       "rss_MB": round(rss.get(start + BLOCK, rss["end"]), 1)})
    p50, p99 = percentiles(ms)
    summary = {"row": f"{label} watch", "requests": count, "seconds": round(seconds, 1),
               "per_s": round(count / seconds, 1), "p50_ms": p50, "p99_ms": p99,
               "worst_block_p99_ms": max(b["p99_ms"] for b in blocks), "rss_start_MB": round(rss["start"], 1),
               "rss_end_MB": round(rss["end"], 1), "growth_MB": round(rss["end"] - rss["start"], 1),
               "lost": len(expected - set(seen)), "twice": sum(1 for c in seen.values() if c > 1),
               "errors": errors, "files": len(lines) - 1}
    shutil.rmtree(work, ignore_errors=True)
    return summary, blocks


def load(port: int, photos: list[bytes], requests: int, concurrent: int, tag: str) -> tuple[np.ndarray, int, int]:
    """``requests`` posts from ``concurrent`` threads: (latency ms by request, wrong answers, failures)."""
    latency = np.full(requests, np.nan)
    numbers, lock = itertools.count(), threading.Lock()
    wrong, failed = [0], [0]

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                k = next(numbers)
            if k >= requests:
                break
            name = f"{tag}-{k}"
            t0 = time.perf_counter()
            try:
                conn.request("POST", f"/predict?name={name}", body=photos[k % len(photos)])
                reply = conn.getresponse()
                body = json.loads(reply.read())
            except (OSError, http.client.HTTPException, ValueError):
                failed[0] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            latency[k] = (time.perf_counter() - t0) * 1000
            if reply.status != 200 or body.get("source") != name:
                wrong[0] += 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrent)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latency, wrong[0], failed[0]


def soak_serve(python: list[str], bundle: str, photos: list[bytes], requests: int, levels: list[int], label: str):
    proc, port = start_service(python, bundle, "--workers", "2", "--threads", "1")
    load(port, photos, 200, 2, "warmup")
    summaries, blocks, sent = [], [], 200
    try:
        for concurrent in levels:
            rss_start, t0 = rss_mb(proc.pid), time.perf_counter()
            latency, wrong, failed = load(port, photos, requests, concurrent, f"c{concurrent}")
            seconds, rss_end = time.perf_counter() - t0, rss_mb(proc.pid)
            sent += requests
            for start in range(0, requests, BLOCK):
                p50, p99 = percentiles(latency[start : start + BLOCK][~np.isnan(latency[start : start + BLOCK])])
                blocks.append({"row": f"{label} serve c{concurrent} {start + 1}-{start + BLOCK}", "p50_ms": p50,
                               "p99_ms": p99, "rss_MB": round(rss_mb(proc.pid), 1)})
            p50, p99 = percentiles(latency[~np.isnan(latency)])
            summaries.append({"row": f"{label} serve c{concurrent}", "requests": requests,
                              "seconds": round(seconds, 1), "per_s": round(requests / seconds, 1),
                              "p50_ms": p50, "p99_ms": p99,
                              "worst_block_p99_ms": max(b["p99_ms"] for b in blocks[-((requests - 1) // BLOCK + 1):]),
                              "rss_start_MB": round(rss_start, 1), "rss_end_MB": round(rss_end, 1),
                              "growth_MB": round(rss_end - rss_start, 1), "lost": failed, "twice": wrong})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/health")
        counted = json.loads(conn.getresponse().read())["photos"]
        if counted != sent:
            print(f"{label}: the service counted {counted} photos of {sent} sent")
            summaries[-1]["lost"] += abs(sent - counted)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return summaries, blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("photos_dir", help="real photos to copy and post (a VOC JPEGImages folder)")
    parser.add_argument("work_dir")
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--arm", action="store_true", help="also the shorter run under emulated aarch64")
    parser.add_argument("--arm-photos", type=int, default=2_000)
    parser.add_argument("--arm-requests", type=int, default=1_000)
    args = parser.parse_args()
    sources = list_images(Path(args.photos_dir))[:500]
    if not sources:
        sys.exit(f"{args.photos_dir}: no photos")
    photos = [p.read_bytes() for p in sources[:100]]
    work = Path(args.work_dir) / "soak"
    runs = [("native", [sys.executable], args.photos, args.requests, [1, 4, 16])]
    if args.arm:
        runs.append(("aarch64-emulated", [str(REPO / "scripts" / "arm_run.sh"), "litert"], args.arm_photos,
                     args.arm_requests, [1, 4]))
    summaries, blocks = [], []
    for label, python, count, requests, levels in runs:
        print(f"{label}: watch, {count} photos ...", flush=True)
        summary, watch_blocks = soak_watch(python, args.bundle, sources, count, work, label)
        summaries.append(summary)
        blocks += watch_blocks
        print(format_rows([summary]), flush=True)
        print(f"{label}: serve, {requests} requests at {', '.join(map(str, levels))} concurrent ...", flush=True)
        serve_rows, serve_blocks = soak_serve(python, args.bundle, photos, requests, levels, label)
        summaries += serve_rows
        blocks += serve_blocks
        print(format_rows(serve_rows), flush=True)
    results.write("bench_soak", summaries, "row")
    results.write("bench_soak_blocks", blocks, "row")
    print(format_rows(summaries))
    print(format_rows(blocks))


if __name__ == "__main__":
    main()
