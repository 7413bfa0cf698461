"""Helpers for the real-photo benchmarks: run mledge, reuse finished work, print tables."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

MLEDGE = [sys.executable, "-m", "mledge"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def mledge(*args: str) -> float:
    """Run one mledge command (output streamed); returns its wall time in seconds."""
    t0 = time.time()
    print("+ mledge " + " ".join(args), flush=True)
    subprocess.run([*MLEDGE, *args], check=True, env=ENV)
    return time.time() - t0


def ensure_run(run: Path, root: str, args: list[str]) -> None:
    """Train into RUN unless it is finished; continue it when it was interrupted."""
    if (run / "metrics.json").is_file():
        print(f"{run}: finished earlier, reused")
    elif (run / "config.json").is_file():
        mledge("train", "--resume", str(run))
    else:
        mledge("train", root, "--out", str(run), *args)


def ensure_bundle(bundle: Path, run: Path, args: list[str]) -> dict:
    """Export RUN into BUNDLE unless BUNDLE already holds this run's export (a better run found since
    replaces it: bench-edge reads the bundles by name)."""
    manifest = bundle / "manifest.json"
    exists = manifest.is_file()
    if not exists or Path(json.loads(manifest.read_text())["run"]).resolve() != run.resolve():
        mledge("export", str(run), "--out", str(bundle), *args, *(["--force"] if exists else []))
    return json.loads(manifest.read_text())


def run_named(script: str, main, known: dict, default: list[str]) -> None:
    """``python SCRIPT VOC_ROOT WORK_DIR [NAME,...|all]``: main(root, work, names) on the names chosen
    (``default`` when none), in one line when a name is unknown or mledge stopped."""
    chosen = sys.argv[3] if len(sys.argv) > 3 else ""
    names = list(known) if chosen == "all" else chosen.split(",") if chosen else default
    unknown = [name for name in names if name not in known]
    if unknown:
        sys.exit(f"{script}: unknown name {', '.join(unknown)} (known: {', '.join(known)}, all)")
    try:
        main(sys.argv[1], sys.argv[2], names)
    except subprocess.CalledProcessError as err:  # mledge has said why in one line
        sys.exit(f"{script}: stopped, mledge exited with {err.returncode}")


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a recipe trains each stage in a child process)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return out


def memory(pid: int) -> dict:
    """The sums of RssAnon (``anon``) and of VmRSS (``rss``) over ``pid`` and its descendants now, in MB."""
    now = {"anon": 0.0, "rss": 0.0}
    for p in tree(pid):
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{p}/status").read_text().splitlines())
        except (OSError, ValueError):
            continue
        for name, key in (("RssAnon", "anon"), ("VmRSS", "rss")):
            if name in fields:
                now[key] += int(fields[name].split()[0]) / 1024
    return now


def sample_memory(pid: int, peak: dict, stop: threading.Event) -> None:
    """The largest ``memory(pid)`` while it runs, in MB."""
    while not stop.wait(0.2):
        for key, value in memory(pid).items():
            peak[key] = max(peak.get(key, 0.0), value)


def measured(command: list[str], log: Path, env: dict, cwd: Path | None = None) -> dict:
    """Run ``command`` (its stderr kept in ``log``): its exit status, wall time and peak memory
    (``anon``: what the processes hold themselves; ``rss`` adds the resident pages of mapped files)."""
    peak: dict = {}
    stop = threading.Event()
    t0 = time.time()
    with open(log, "w") as err:
        proc = subprocess.Popen(command, env=env, stderr=err, cwd=cwd)
        watcher = threading.Thread(target=sample_memory, args=(proc.pid, peak, stop), daemon=True)
        watcher.start()
        proc.wait()
        stop.set()
    return {"returncode": proc.returncode, "train_s": round(time.time() - t0, 1),
            "peak_anon_MB": round(peak.get("anon", 0), 1), "peak_rss_MB": round(peak.get("rss", 0), 1)}
