"""make bench-recipes: each named recipe from its one command on the real photos, exported in its
own quantization and run through the edge runtime; its figures beside the registry's (the last
committed record), and a new record for `mledge recipes`.

    python benchmarks/bench_recipes.py VOC_ROOT WORK_DIR [NAME,...|all]

Finished runs and bundles are reused; an interrupted recipe resumes at its stage and epoch.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import results  # noqa: E402
from benchmarks.common import ENV, MLEDGE, mledge, run_named  # noqa: E402
from edge.text_table import format_rows  # noqa: E402
from toolkit.recipes import RECIPES, figures  # noqa: E402

DEFAULT = ["study", "edge-fast"]


def train_seconds(run: Path) -> float:
    """Every stage's training time: its epochs, its teacher's views and, for a pretrained backbone, the
    frozen part's activations (train.log's line)."""
    total = 0.0
    for metrics in sorted((run / "stages").glob("*/metrics.json")):
        data = json.loads(metrics.read_text())
        total += data.get("train_seconds", 0) + (data.get("teacher") or {}).get("seconds", 0)
        log = (metrics.parent / "train.log").read_text() if (metrics.parent / "train.log").is_file() else ""
        total += sum(float(s) for s in re.findall(r"activations .* of \d+ images in ([\d.]+)s", log))
    return round(total)


def measure(root: str, work: Path, name: str) -> dict:
    run, bundle = work / name, work / f"{name}-bundle"
    if (run / "metrics.json").is_file():
        print(f"{run}: finished earlier, reused")
    elif (run / "recipe.json").is_file():
        mledge("train", "--resume", str(run))
    else:
        mledge("train", root, "--recipe", name, "--out", str(run))
    if not (bundle / "manifest.json").is_file():
        mledge("export", str(run), "--out", str(bundle))
    manifest = json.loads((bundle / "manifest.json").read_text())
    bench = subprocess.run([*MLEDGE, "edge", "bench", str(bundle), "--voc", root, "--split", "val", "--limit", "300",
                            "--runs", "50", "--threads", "1", "--json"], capture_output=True, text=True, env=ENV)
    timing = json.loads(bench.stdout[bench.stdout.index("["):])[0]
    ev = manifest["evaluation"]
    return {"recipe": name, "quant": manifest["quantization"],
            "keras_mAP_area": round(100 * ev["keras_mAP_area"], 2),
            "bundle_mAP_area": round(100 * ev["bundle_mAP_area"], 2),
            "MB": round(manifest["bytes"] / 1e6, 2), "weight_bytes": sum(f["bytes"] for f in manifest["files"]),
            "macs": sum(f.get("macs", 0) for f in manifest["files"]),
            "e2e_p50_1t": round(timing["e2e_ms"]["p50"], 2) if timing["status"] == "ok" else None,
            "train_s": train_seconds(run)}


def main(root: str, work: str, names: list[str]) -> None:
    work_dir = Path(work) / "recipes"
    work_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        before = figures(name)
        row = measure(root, work_dir, name)
        row["registry_mAP"] = before["figures"]["bundle_mAP_area"] if before else None
        row["delta"] = round(row["bundle_mAP_area"] - row["registry_mAP"], 2) if before else None
        rows.append(row)
    results.write("bench_recipes", [{k: v for k, v in r.items() if k not in ("registry_mAP", "delta")}
                                    for r in rows], "recipe")
    print("\nVOC 2007 (shared copy): each recipe trained on 'train', its bundle scored on 'val'; "
          "registry_mAP: the last committed record (the target: within 0.5)")
    print(format_rows(rows))


if __name__ == "__main__":
    run_named("bench_recipes", main, RECIPES, DEFAULT)
