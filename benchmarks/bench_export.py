"""make bench-export: the real-photo runs in every quantization mode.

For the best multioutput run: bytes, val mAP (area and VOC07), delta vs Keras, max |dprob| and
conversion time per mode, plus int8 with the sigmoid kept in the graph (to show what the float
output saves). For independent (20 files) the same, evaluated on the first 300 val photos (20 CNNs
per photo make the full split slow on 2 cores), but for int8-float-last: each independent file has
one logit on its own int8 scale, which leaves that mode nothing to fix. Shared is exported fused
(one graph) for bench-edge.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import results  # noqa: E402
from benchmarks.common import ensure_bundle  # noqa: E402
from edge.text_table import format_rows  # noqa: E402

MODES = ("float32", "float16", "dynamic", "int8")


def best_multioutput(work: Path) -> Path:
    runs = [p.parent for p in work.glob("multioutput-*/metrics.json")]
    return max(runs, key=lambda p: json.loads((p / "metrics.json").read_text())["mAP_area"])


def row(name: str, manifest: dict, float_bytes: int) -> dict:
    ev = manifest["evaluation"]
    return {
        "bundle": name, "files": len(manifest["files"]), "MB": round(manifest["bytes"] / 1e6, 2),
        "of_float32": f"{100 * manifest['bytes'] / float_bytes:.1f}%",
        "keras_mAP": round(100 * ev["keras_mAP_area"], 2), "bundle_mAP": round(100 * ev["bundle_mAP_area"], 2),
        "delta": round(100 * (ev["bundle_mAP_area"] - ev["keras_mAP_area"]), 2),
        "bundle_mAP_voc07": round(100 * ev["bundle_mAP_voc07"], 2),
        "max_dprob": f"{ev['max_abs_prob_diff']:.1e}", "convert_s": manifest["conversion_seconds"],
        "val_images": ev["images"],
    }


def main(root: str, work: str) -> None:
    work_dir = Path(work)
    bundles = work_dir / "bundles"
    rows = []
    mo = best_multioutput(work_dir)
    print(f"multioutput run: {mo.name}")
    plans = [(f"multioutput-{m}", mo, ["--quant", m]) for m in (*MODES, "int8-float-last")]
    plans.append(("multioutput-int8-sigmoid-in-graph", mo, ["--quant", "int8", "--output", "probabilities"]))
    plans += [(f"independent-{m}", work_dir / "independent", ["--quant", m, "--eval-images", "300"]) for m in MODES]
    # Independent is not fused here: one graph of twenty 17.4 M-parameter CNNs (348 M parameters) is more
    # than the converter's int8 calibration fits in this machine's 24 GiB; the tests fuse small ones.
    plans += [("shared-float32-fused", work_dir / "shared", ["--quant", "float32", "--fuse", "--eval-images", "300"]),
              ("shared-int8-fused", work_dir / "shared", ["--quant", "int8", "--fuse", "--eval-images", "300"])]
    manifests, failed = {}, []
    for name, run, args in plans:
        if (run / "metrics.json").is_file():
            try:
                manifests[name] = ensure_bundle(bundles / name, run, args)
            except subprocess.CalledProcessError as err:
                failed.append(f"{name}: {err}")
    for name, manifest in manifests.items():
        base = manifests.get(name.split("-")[0] + "-float32") or manifests.get("shared-float32-fused")
        rows.append(row(name, manifest, base["bytes"]))
    results.write("bench_export", rows, "bundle")
    print("\nVOC 2007 val (shared copy); mAP = area under the PR curve; delta = bundle - Keras, in points")
    print(format_rows(rows))
    for line in failed:
        print(f"failed: {line}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
