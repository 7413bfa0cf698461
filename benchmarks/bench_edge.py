"""make bench-edge: the real-photo bundles side by side on this machine (300 val photos, 1 and 2
threads), then the targets as ratios from the same run:

- single int8 vs the 20-model int8 ensemble: bytes and latency per image;
- end to end vs invoke only, for the single int8 model;
- our invoke vs a bare interpreter loop on the same model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import results  # noqa: E402
from benchmarks.common import ENV, MLEDGE  # noqa: E402
from edge.bench import flat_rows  # noqa: E402
from edge.text_table import format_rows  # noqa: E402

BUNDLES = ("multioutput-float32", "multioutput-float16", "multioutput-dynamic", "multioutput-int8",
           "multioutput-int8-float-last", "independent-float32", "independent-int8", "shared-float32-fused",
           "shared-int8-fused")


def main(root: str, work: str, limit: int = 300) -> None:
    bundles = [str(Path(work) / "bundles" / b) for b in BUNDLES if (Path(work) / "bundles" / b).is_dir()]
    proc = subprocess.run([*MLEDGE, "edge", "bench", *bundles, "--voc", root, "--split", "val", "--limit", str(limit),
                           "--threads", "1,2", "--runs", "100", "--json"], capture_output=True, text=True, env=ENV)
    rows = json.loads(proc.stdout[proc.stdout.index("["):])
    (Path(work) / "bench_edge.json").write_text(json.dumps(rows, indent=2))
    results.write("bench_edge", [{"row": f"{r['bundle']} {r['thr']}t", **r} for r in flat_rows(rows)], "row")
    print(f"{limit} VOC 2007 val photos; latency in ms per image at batch 1; peak_MB = the bundle process's peak RSS")
    print(format_rows(flat_rows(rows)))
    ok = {(Path(r["bundle"]).name, r["threads"]): r for r in rows if r["status"] == "ok"}
    for threads in (1, 2):
        single, ensemble = ok.get(("multioutput-int8", threads)), ok.get(("independent-int8", threads))
        if single and ensemble:
            print(f"\nthreads={threads}: 20-model int8 ensemble / single int8 model: "
                  f"{ensemble['MB'] / single['MB']:.1f}x the bytes (target >= 15x), "
                  f"{ensemble['e2e_ms']['p50'] / single['e2e_ms']['p50']:.1f}x the end-to-end latency and "
                  f"{ensemble['invoke_ms']['p50'] / single['invoke_ms']['p50']:.1f}x the invoke latency "
                  f"(target >= 10x)")
        if single:
            print(f"threads={threads}: single int8 end to end / invoke only: "
                  f"{single['e2e_ms']['p50'] / single['invoke_ms']['p50']:.2f}x (target <= 2x); "
                  f"our invoke / bare interpreter loop: {single['invoke_ms']['p50'] / single['bare_invoke_ms']:.3f}x "
                  f"(target <= 1.10x)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
