"""Benchmark results as data: every ``make bench-*`` writes one JSON record per row of its table to
``benchmarks/results/BENCH.jsonl``, with what ran (the exact command), the commit, the date and the
machine. ``make docs`` builds every table in the docs from these records (scripts/make_docs.py).

A rerun of a bench on the same machine replaces that machine's records of the rows it measured;
records of other machines stay. All rows written by one invocation share its ``run_id``, so a ratio
can be computed from records of one machine and one run of the bench."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parents[1]
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
PACKAGES = ("tensorflow", "ai-edge-litert", "numpy")


def machine() -> dict:
    """The facts that decide a figure here: CPU model and the flags that matter, cores, versions."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": model, "flags": [f for f in FLAGS if f in flags], "cores": len(os.sched_getaffinity(0)),
            "arch": platform.machine(), "python": platform.python_version(), **versions}


def machine_label(m: dict) -> str:
    """One short cell: the CPU, its fastest relevant extension and the cores ("AMD EPYC, avx512_vnni, 2 cores")."""
    best = next((f for f in ("amx_tile", "avx512_vnni", "avx2") if f in m["flags"]), "no avx2")
    return f"{m['cpu']}, {best.replace('_tile', '')}, {m['cores']} cores"


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


STARTED_AT = commit()  # the code that ran: the records of one invocation share it, whatever it writes first


def read(bench: str) -> list[dict]:
    path = RESULTS / f"{bench}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def write(bench: str, rows: list[dict], key: str, command: list[str] | None = None) -> list[dict]:
    """Record ``rows`` (dicts of figures, ``key`` naming each row) of one invocation of ``bench``."""
    here = machine()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    header = {"bench": bench, "command": " ".join(command or [Path(sys.argv[0]).name, *sys.argv[1:]]),
              "commit": STARTED_AT, "date": stamp, "run_id": f"{bench}-{stamp}", "machine": here}
    records = [{**header, "row": str(row[key]), "figures": row} for row in rows]
    names = {r["row"] for r in records}
    kept = [r for r in read(bench) if not (r["row"] in names and r["machine"]["cpu"] == here["cpu"]
                                           and r["machine"]["cores"] == here["cores"])]
    RESULTS.mkdir(exist_ok=True)
    tmp = RESULTS / f".{bench}.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept + records))  # figures in the table's order
    os.replace(tmp, RESULTS / f"{bench}.jsonl")
    print(f"{len(records)} record(s) written to {RESULTS / f'{bench}.jsonl'}")
    return records
