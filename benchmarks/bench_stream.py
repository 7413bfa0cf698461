"""make bench-stream: a recipe on the real photos trained twice, by this tree (photos and maps
streamed from memory-mapped files of the run's cache) and by the last commit that held them in
memory (in a git worktree): val mAP, wall time and peak memory side by side.

    python benchmarks/bench_stream.py VOC_ROOT WORK_DIR [--recipe edge-best] [--memory-commit d8afdaa]

Both train from scratch with the recipe's seed, nothing else running; a finished side is reused
(delete its folder to measure it again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import results  # noqa: E402
from benchmarks.common import ENV, measured  # noqa: E402
from edge.text_table import format_rows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MEMORY_COMMIT = "d8afdaa"  # the parent of the commit that made training stream from disk


def tree_at(commit: str, where: Path) -> Path:
    """A worktree of ``commit`` (made once) to run the in-memory code from."""
    if not (where / "toolkit").is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), commit], check=True)
    return where


def side(name: str, code: Path, commit: str, root: str, work: Path, recipe: str) -> dict:
    where = work / name.replace(" ", "-")
    row_file = where / "row.json"
    if row_file.is_file():
        print(f"{where}: measured earlier, reused")
        return json.loads(row_file.read_text())
    run = where / "run"
    shutil.rmtree(run, ignore_errors=True)  # an interrupted side is measured again from its start
    where.mkdir(parents=True, exist_ok=True)
    args = ["train", root, "--recipe", recipe, "--out", str(run)]
    print(f"+ mledge {' '.join(args)}  ({name}, code at {commit})", flush=True)
    env = {**ENV, "PYTHONPATH": str(code)}
    found = measured([sys.executable, "-m", "mledge", *args], where / "train.stderr", env, cwd=code)
    if found.pop("returncode"):
        sys.exit(f"{run}: mledge train failed; see {where / 'train.stderr'}")
    metrics = json.loads(next((run / "stages").glob("*/metrics.json")).read_text())
    record = json.loads(next((run / "stages").glob("*/models/*.json")).read_text())
    row = {"path": name, "code": commit, "val_mAP_area": round(100 * metrics["mAP_area"], 2),
           "val_mAP_voc07": round(100 * metrics["mAP_voc07"], 2), "best_epoch": record["best_epoch"],
           "epochs": record["epochs"], "wall_s": found.pop("train_s"), **found}
    row_file.write_text(json.dumps(row, indent=1))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("voc_root")
    parser.add_argument("work", type=Path)
    parser.add_argument("--recipe", default="edge-best")
    parser.add_argument("--memory-commit", default=MEMORY_COMMIT)
    args = parser.parse_args()
    root = os.path.abspath(args.voc_root)
    head = results.STARTED_AT
    rows = [side("in memory", tree_at(args.memory_commit, args.work / "memory-code"), args.memory_commit, root,
                 args.work, args.recipe),
            side("streamed", REPO, head, root, args.work, args.recipe)]
    for row in rows:
        row["recipe"] = args.recipe
    results.write("bench_stream", rows, key="path",
                  command=["make", "bench-stream", f"STREAM_RECIPE={args.recipe}"])
    print(format_rows(rows))


if __name__ == "__main__":
    main()
