"""Helpers for the real-photo benchmarks: run mledge, reuse finished work, print tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
