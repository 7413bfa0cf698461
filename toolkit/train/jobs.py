"""``--jobs N``: several training processes on one machine, each training some classes into one RUN
(one GPU each when there are several; on a CPU the cores are split between them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from toolkit.config import TrainConfig
from toolkit.errors import UserError
from toolkit.train.runner import init_run, resume
from toolkit.train.teacher import with_teacher


def train_parallel(cfg: TrainConfig, out: str | Path, jobs: int, force: bool = False) -> dict:
    """N processes train disjoint sets of classes into one RUN (shared: the trunk first, in one job)."""
    if cfg.arch == "multioutput":
        raise UserError("--jobs applies to independent and shared runs (multioutput is one model)")
    run, train, _ = init_run(cfg, out, force=force)
    if cfg.distill:  # the teacher's views are made once, here; every job reads them
        with_teacher(run, cfg, train)
    logs = run.path / "jobs"
    logs.mkdir(exist_ok=True)
    gpus = visible_gpus()
    command = [sys.executable, "-m", "mledge", "train", "--resume", str(run.path)]

    def launch(args: list[str], k: int) -> tuple[subprocess.Popen, Path]:
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[k % len(gpus)]
        else:
            env["TF_NUM_INTRAOP_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
            env["TF_NUM_INTEROP_THREADS"] = "1"
        log = logs / f"job-{k}.log"
        with open(log, "w") as out_file:  # the child holds its own copy of the descriptor
            return subprocess.Popen([*command, *args], stdout=out_file, stderr=subprocess.STDOUT, env=env), log

    def wait(procs: list[tuple[subprocess.Popen, Path]]) -> None:
        failed = [f"{log} (exit {proc.returncode})" for proc, log in procs if proc.wait() != 0]
        if failed:
            raise UserError(f"{run.path}: {len(failed)} job(s) failed, see {', '.join(failed)}; "
                            f"finished classes are kept (continue with --resume)")

    classes = list(cfg.classes)
    if cfg.arch == "shared":
        print("trunk: 1 job")
        wait([launch(["--stage", "trunk"], 0)])
        if cfg.trunk == "first-class":
            classes = classes[1:]
    groups = [classes[k::jobs] for k in range(jobs) if classes[k::jobs]]
    print(f"{len(classes)} classes in {len(groups)} parallel jobs (logs in {logs})")
    stage = ["--stage", "heads"] if cfg.arch == "shared" else []
    wait([launch(["--classes", ",".join(group), *stage], k) for k, group in enumerate(groups)])
    return resume(run.path)


def visible_gpus() -> list[str]:
    """GPU indices from nvidia-smi, without starting TensorFlow in the parent process."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return [g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(k) for k, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
