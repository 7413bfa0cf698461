"""make bench-arm: the edge bench inside an emulated aarch64 Debian (qemu-user, Cortex-A72 model),
for the single model and the 20-model ensemble, float32 and int8.

Emulated times are not a board's (float32 runs ~300x slower than native, int8 ~25-45x), so the
table is for ratios between bundles; beside it, an ESTIMATE for a Raspberry Pi 4 and 5 from each
bundle's multiply-accumulate count and the core's published NEON throughput.

    python benchmarks/bench_arm.py VOC_ROOT SPLIT BUNDLE...
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import results  # noqa: E402
from edge.bench import flat_rows  # noqa: E402
from edge.roofline import BOARDS, EFFICIENCY, compute_ms, estimate_ms, memory_ms  # noqa: E402
from edge.text_table import format_rows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def bundle_macs(manifest: dict) -> int:
    """From the manifest, or (bundles exported before it recorded them) from the run's Keras models."""
    if all("macs" in f for f in manifest["files"]):
        return sum(f["macs"] for f in manifest["files"])
    from export.convert import count_macs
    from toolkit.run import Run

    return sum(count_macs(m) for m in Run(Path(manifest["run"])).load_models())


def main(voc_root: str, split: str, bundles: list[str]) -> None:
    command = [str(REPO / "scripts" / "arm_run.sh"), "litert", "-m", "mledge", "edge", "bench", *bundles,
               "--voc", voc_root, "--split", split, "--limit", "4", "--runs", "4", "--warmup", "1", "--json"]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if "[" not in proc.stdout:
        sys.exit(f"emulated bench failed: {proc.stderr.strip().splitlines()[-1:]}")
    rows = json.loads(proc.stdout[proc.stdout.index("["):])
    print("EMULATED aarch64 (qemu-user, QEMU_CPU=cortex-a72, LiteRT): absolute times are not a board's; "
          "compare bundles by ratio (mAP on 4 images only)")
    emulated = [{"row": f"{r['bundle']} {r['thr']}t", **r} for r in flat_rows(rows)]
    results.write("bench_arm", emulated, "row")
    print(format_rows(flat_rows(rows)))
    ok = {(r["arch"], r["quant"]): r for r in rows if r["status"] == "ok"}
    for quant in ("float32", "int8"):
        single, ensemble = ok.get(("multioutput", quant)), ok.get(("independent", quant))
        if single and ensemble:
            print(f"{quant}: 20-model ensemble / single model under emulation: "
                  f"{ensemble['invoke_ms']['p50'] / single['invoke_ms']['p50']:.1f}x invoke latency, "
                  f"{ensemble['MB'] / single['MB']:.1f}x bytes")
    estimates = []
    for bundle in bundles:
        manifest = json.loads((Path(bundle) / "manifest.json").read_text())
        macs = bundle_macs(manifest)
        weight_bytes = sum(f["bytes"] for f in manifest["files"])
        row = {"bundle": Path(bundle).name, "quant": manifest["quantization"], "files": len(manifest["files"]),
               "MMACs": round(macs / 1e6, 1), "MB": round(weight_bytes / 1e6, 1)}
        for name, board in BOARDS.items():
            short = name.split(" (")[0]
            row[f"{short} compute ms"] = round(compute_ms(macs, manifest["quantization"], board), 2)
            row[f"{short} memory ms"] = round(memory_ms(weight_bytes, board), 2)
            row[f"{short} ms"] = round(estimate_ms(macs, weight_bytes, manifest["quantization"], board), 2)
        estimates.append(row)
    print(f"\nESTIMATE, not a measurement: one thread; a roofline, the larger of compute (MACs / (clock x NEON MACs"
          f" per cycle x {EFFICIENCY:.0%})) and memory (bundle bytes / DRAM bandwidth: "
          + ", ".join(f"{n} {b['GB_s']} GB/s" for n, b in BOARDS.items()) + "; sources in benchmarks/bench_arm.py)")
    results.write("bench_arm_roofline", estimates, "bundle")
    print(format_rows(estimates))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
