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
