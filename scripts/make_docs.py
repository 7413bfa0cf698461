"""``make docs``: every benchmark table in the docs, generated from the records in benchmarks/results/.

docs/benchmarks.md is written whole; in README.md and any docs/*.md, the text between
``<!-- results:NAME -->`` and ``<!-- /results -->`` is replaced by the table NAME. ``--check`` writes
nothing and exits 1 when a committed file differs from what the records generate (tests/test_docs.py).
Each table shows the machine each row was measured on; a ratio is computed only within one run of
one bench (one ``run_id``), so never across machines."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.results import machine_label, read  # noqa: E402

# bench -> (make target, what it measures); the order of docs/benchmarks.md.
BENCHES = {
    "bench_recipes": ("make bench-recipes", "Each recipe from its one command (`mledge train DATA --recipe NAME`), "
                      "exported in its own quantization, its bundle scored on `val` and timed at 1 thread."),
    "bench_train": ("make bench-train", "The study's CNN from scratch on the shared VOC 2007 copy at 100x100: "
                    "trained on `train`, epochs and thresholds chosen on `val`."),
    "bench_export": ("make bench-export", "The best multioutput run and the independent ensemble in every "
                     "quantization mode: bytes, val mAP of the bundle against Keras."),
    "bench_edge": ("make bench-edge", "The bundles on this machine through the edge runtime (LiteRT, XNNPACK): "
                   "batch 1, each bundle in its own process; ms per photo, e2e = decode + resize + invoke."),
    "bench_pretrained": ("make bench-pretrained", "EfficientNet-Lite with its head trained on VOC 2007 `train`, "
                         "scored on `val`, exported in three modes."),
    "bench_pretrained_edge": ("make bench-pretrained", "The pretrained bundles on the device, 1 thread."),
    "bench_distill": ("make bench-distill", "The study's CNN taught by a pretrained teacher (distillation)."),
    "bench_distill_teacher": ("make bench-distill", "The teacher's own rate, by how it runs."),
    "bench_formats": ("make bench-formats", "The same photos as VOC, CSV and COCO train to the same val mAP."),
    "bench_train_speed": ("make bench-train-speed", "Where training time goes."),
    "bench_epoch_parts": ("make bench-epoch-parts", "One epoch of edge-best's head on cached maps, by compute "
                          "precision, head and map storage: maps a second."),
    "bench_pipeline": ("make bench-pipeline", "From photos to a checked bundle (`mledge train DATA --recipe "
                       "edge-best`, then `mledge export RUN`), stage by stage, each timed commit side by side."),
    "bench_soak": ("make bench-soak", "`mledge edge watch` on photos copied into its folder as it runs, and "
                   "`mledge edge serve` under a bounded local client at 1, 4 and 16 concurrent; ms: decode + run "
                   "(watch) or the client's round trip (serve); RSS of the watch or the server; lost and twice from "
                   "reading every line and answer back."),
    "bench_soak_blocks": ("make bench-soak", "The same runs by 10,000: latency, and RSS (the watch's at the end of "
                          "each 10,000, the service's at the end of each concurrency level)."),
    "bench_scale": ("make bench-scale", "`mledge data synth` at 224 px with each number of photos, then the edge-fast "
                    "recipe (`--epochs 2`) and its export: seconds per 1,000 photos for decoding, the activation "
                    "cache and an epoch (and the export in seconds: its calibration is a fixed sample and its val "
                    "check at most --eval-images photos), each with its ratio to the smallest size; peak memory of "
                    "the training processes (the recipe and its stage), anon: what they hold themselves, rss: with "
                    "the pages of their memory-mapped caches mapped into them (released every second)."),
    "bench_scale_data": ("make bench-scale-data", "A CSV dataset of each number of rows (the photos of one `mledge "
                         "data synth --size 64`, hard-linked), read whole by each command: seconds per 1,000 rows and "
                         "peak memory (VmRSS), each with its ratio to the smallest size; `evaluate` scores a small CNN "
                         "on every row, `edge predict` labels the folder with its int8 bundle (CSV out): the delay "
                         "to its first result and its memory after a tenth of the photos and after the last."),
    "bench_stream": ("make bench-stream", "A recipe on the shared VOC photos trained from scratch twice with its "
                     "seed: by the code that held the decoded photos and maps in memory (its commit) and by the "
                     "code that streams them from memory-mapped files of the run's cache; val mAP of the kept "
                     "epoch, wall time of the whole recipe and peak memory (anon: what the processes hold "
                     "themselves)."),
    "bench_arm": ("make bench-arm", "EMULATED aarch64 (qemu-user, cortex-a72): compare bundles by ratio only."),
    "bench_arm_roofline": ("make bench-arm", "ESTIMATE, not a measurement: a Pi 4 / Pi 5 roofline per photo."),
}
HIDDEN = {"row"}  # the record's key, repeated in a figure column


def latest(records: list[dict]) -> list[dict]:
    """Per machine and row, its latest record (a bench run for some rows leaves the others shown)."""
    last = {}
    for r in records:
        key = (r["machine"]["cpu"], r["machine"]["cores"], r["row"])
        if key not in last or r["date"] >= last[key]["date"]:
            last[key] = r
    return [r for r in records if last[(r["machine"]["cpu"], r["machine"]["cores"], r["row"])] is r]


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("|", "/")


def table(records: list[dict], columns: list[str] | None = None) -> str:
    columns = columns or [k for k in records[0]["figures"] if k not in HIDDEN]
    lines = ["| " + " | ".join([*columns, "machine"]) + " |", "|" + "---|" * (len(columns) + 1)]
    for r in records:
        lines.append("| " + " | ".join([*(cell(r["figures"].get(c)) for c in columns),
                                        machine_label(r["machine"])]) + " |")
    return "\n".join(lines)


def provenance(records: list[dict]) -> str:
    runs = {}
    for r in records:
        runs.setdefault(r["run_id"], r)
    return "\n".join(f"- `{r['command']}` at commit `{r['commit']}`, {r['date']}, on {machine_label(r['machine'])} "
                     f"(TensorFlow {r['machine'].get('tensorflow')}, LiteRT {r['machine'].get('ai-edge-litert')})"
                     for r in runs.values())


def study(_: None = None) -> str:
    """The study's answer: one CNN against 20, from one run of bench-edge on one machine."""
    rows = [r for r in latest(read("bench_edge")) if r["figures"]["thr"] == 1
            and r["figures"]["bundle"] in ("multioutput-int8-float-last", "multioutput-int8", "multioutput-float32",
                                           "independent-int8", "independent-float32")]
    if not rows:
        return "_No bench-edge record yet: run `make bench-edge`, then `make docs`._"
    out = [table(rows, ["bundle", "files", "MB", "load_ms", "e2e_p50", "e2e_p99", "peak_MB", "mAP"])]
    by_run = {}
    for r in rows:
        by_run.setdefault(r["run_id"], {})[r["figures"]["bundle"]] = r["figures"]
    for run_id, found in by_run.items():
        one, twenty = found.get("multioutput-int8"), found.get("independent-int8")
        if one and twenty:
            out.append(f"\nIn `{run_id}`: the 20 int8 CNNs take {twenty['MB'] / one['MB']:.0f}x the bytes and "
                       f"{twenty['e2e_p50'] / one['e2e_p50']:.0f}x the time per photo of the one int8 CNN.")
    return "\n".join(out)


def benchmarks_page() -> str:
    parts = ["# Benchmarks", "",
             "Every figure here comes from a record in `benchmarks/results/` that the named command wrote, with "
             "the exact command, the commit, the date and the machine. `make docs` regenerates this page from "
             "those records (`tests/test_docs.py` fails when it differs); do not edit it by hand. The benchmarks "
             "read the shared VOC 2007 copy (`VOC_ROOT=../shared/data/voc2007/VOCdevkit`); a bench rerun on "
             "the same machine replaces that machine's rows.", ""]
    for bench, (target, what) in BENCHES.items():
        records = latest(read(bench)) if bench not in WHOLE else read(bench)
        parts += [f"## {bench.replace('_', '-')}", "", f"{what} Command: `{target}`.", ""]
        if not records:
            parts += ["_No record yet._", ""]
            continue
        parts += [WHOLE[bench]() if bench in WHOLE else table(records), "", "Recorded by:", "", provenance(records), ""]
    return "\n".join(parts).rstrip() + "\n"


def recipes(_: None = None) -> str:
    """The registry, with each recipe's latest bench-recipes record and the Pi roofline estimate."""
    from edge.roofline import BOARDS, estimate_ms
    from toolkit.recipes import RECIPES, figures

    lines = ["| recipe | what it is for | val mAP (bundle) | MB | ms a photo, 1 thread | "
             + " | ".join(f"{b.split(' (')[0]} ms (estimate)" for b in BOARDS) + " | training | machine |",
             "|" + "---|" * (7 + len(BOARDS))]
    for recipe in RECIPES.values():
        record = figures(recipe.name)
        f = record["figures"] if record else {}
        pi = [f"{recipe.invocations * estimate_ms(f['macs'], f['weight_bytes'], recipe.quant, b):.0f}"
              if f.get("macs") else ""
              for b in BOARDS.values()]
        lines.append("| " + " | ".join([f"`{recipe.name}`", recipe.purpose, cell(f.get("bundle_mAP_area")),
                                        cell(f.get("MB")), cell(f.get("e2e_p50_1t")), *pi,
                                        f"{f['train_s'] / 60:.0f} min" if f.get("train_s") else "",
                                        machine_label(record["machine"]) if record else "not measured yet"]) + " |")
    return "\n".join(lines)


def pipeline(_: None = None) -> str:
    """bench-pipeline: every timed commit's stages side by side, per machine, and the ratio of the
    first one's wall time to the last one's; then the calibration sizes measured."""
    records = sorted(read("bench_pipeline"), key=lambda r: r["date"])
    timed = [r for r in records if "stages" in r["figures"]]
    if not timed:
        return "_No bench-pipeline record yet: run `make bench-pipeline`, then `make docs`._"
    out = []
    for label in dict.fromkeys(machine_label(r["machine"]) for r in timed):
        runs = [r for r in timed if machine_label(r["machine"]) == label]
        stages = list(dict.fromkeys(name.split(" (")[0] for r in runs for name in r["figures"]["stages"]))
        out += [f"{runs[0]['figures']['recipe']} on {label}, seconds (in brackets: epochs, calibration photos):", "",
                "| stage | " + " | ".join(f"commit `{r['figures']['code_commit']}`" for r in runs) + " |",
                "|---|" + "---|" * len(runs)]
        for stage in stages:
            cells = []
            for r in runs:
                found = [(n, v) for n, v in r["figures"]["stages"].items() if n.split(" (")[0] == stage]
                cells.append(f"{cell(found[0][1])}{' (' + found[0][0].split(' (')[1] if ' (' in found[0][0] else ''}"
                             if found else "")
            out.append(f"| {stage} | " + " | ".join(cells) + " |")
        for key in ("keras_mAP_area", "bundle_mAP_area"):
            out.append(f"| val mAP ({key.split('_')[0]}) | " + " | ".join(cell(r["figures"][key]) for r in runs) + " |")
        if len(runs) > 1:
            ratio = runs[0]["figures"]["wall_s"] / runs[-1]["figures"]["wall_s"]
            out += ["", f"Wall time of the first commit over the last: {ratio:.2f}x."]
        out.append("")
    calibrated = [r for r in records if "calibration" in r["figures"]]
    if calibrated:
        out += ["The same run exported with other numbers of calibration photos:", "",
                table(calibrated, ["calibration", "conversion_s", "export_s", "keras_mAP_area", "bundle_mAP_area"])]
    return "\n".join(out).rstrip()


# The two edge tiers' targets: val mAP (bundle), MB, and for the best tier its loss against the float
# model and its ms a photo, for the fast one its ms over the Lite2 448 csra bundle's in the same bench run.
TIER_BASE = "lite2-448-ft2-csra int8-float-last"
TIERS = {"best": {"mAP": 91.0, "MB": 8.0, "drop": 0.2, "ms": 30.0}, "fast": {"mAP": 87.5, "MB": 5.0, "ratio": 0.4}}


def meets(f: dict, ratio: float, target: dict) -> bool:
    return (f["val_mAP_area"] >= target["mAP"] and f["MB"] <= target["MB"]
            and f["drop"] <= target.get("drop", 100) and f["ms_per_image_1thr"] <= target.get("ms", 1e9)
            and ratio <= target.get("ratio", 1e9))


def tiers(_: None = None) -> str:
    """bench-pretrained's int8 bundles against the two tiers' targets, per machine; the fast tier's
    latency is a ratio to the Lite2 448 csra bundle's, on the same machine (a row timed in another
    run of the bench than that bundle is marked)."""
    records = [r for r in latest(read("bench_pretrained")) if r["figures"].get("ms_per_image_1thr")
               and r["figures"]["quant"].startswith("int8")]
    out = []
    for base in sorted((r for r in records if r["row"] == TIER_BASE), key=lambda r: r["date"]):
        label, ms = machine_label(base["machine"]), base["figures"]["ms_per_image_1thr"]
        out += [f"On {label}, ratio: ms over {TIER_BASE}'s {cell(ms)} ms (`{base['run_id']}`):", "",
                "| run | bundle | val mAP | float model | MB | ms, 1 thread | ratio | best tier | fast tier |",
                "|---|---|---|---|---|---|---|---|---|"]
        mine = [r for r in records if machine_label(r["machine"]) == label]
        for r in sorted(mine, key=lambda r: (r["figures"]["MB"], r["row"])):
            f = r["figures"]
            ratio = f["ms_per_image_1thr"] / ms
            marks = ["meets" if meets(f, ratio, t) else "" for t in TIERS.values()]
            other = "" if r["run_id"] == base["run_id"] else " *"
            out.append("| " + " | ".join([f["run"] + other, f["quant"], cell(f["val_mAP_area"]),
                                          cell(f["keras_mAP_area"]), cell(f["MB"]), cell(f["ms_per_image_1thr"]),
                                          f"{ratio:.2f}", *marks]) + " |")
        if any(r["run_id"] != base["run_id"] for r in mine):
            out += ["", "\\* timed in another run of the bench (its own run's Lite2 448 csra bundle is no longer "
                    "recorded): its ratio is across runs."]
        out.append("")
    if not out:
        return f"_No bench-pretrained record of {TIER_BASE} yet: run `make bench-pretrained`, then `make docs`._"
    return "\n".join(out).rstrip()


def soak(_: None = None) -> str:
    """make bench-soak's summary rows, with the watch's RSS growth after its first 10,000 photos (from
    the rows by 10,000 the same commit recorded on the same machine): what the loop holds once warm."""
    records = latest(read("bench_soak"))
    if not records:
        return "_No bench-soak record yet: run `make bench-soak`, then `make docs`._"
    # by commit without "-dirty": the summary's record, written first, leaves the tree dirty for the blocks'
    first = {(machine_label(r["machine"]), r["commit"].removesuffix("-dirty"), r["row"]): r["figures"]["rss_MB"]
             for r in latest(read("bench_soak_blocks"))}
    for r in records:
        warm = first.get((machine_label(r["machine"]), r["commit"].removesuffix("-dirty"), f"{r['row']} 1-10000"))
        if warm is not None and r["row"].endswith(" watch") and r["figures"]["requests"] > 10_000:
            r["figures"]["growth_after_10k_MB"] = round(r["figures"]["rss_end_MB"] - warm, 1)
    return table(records, ["row", "requests", "per_s", "p50_ms", "p99_ms", "worst_block_p99_ms", "rss_start_MB",
                           "rss_end_MB", "growth_MB", "growth_after_10k_MB", "lost", "twice"])


SECTIONS: dict[str, Callable[[], str]] = {"study": study, "recipes": recipes, "pipeline": pipeline, "tiers": tiers,
                                          "soak": soak}
WHOLE: dict[str, Callable[[], str]] = {"bench_pipeline": pipeline}  # every run shown: a before and an after
MARKED = re.compile(r"(<!-- results:(\w+) -->\n)(.*?)(<!-- /results -->)", re.S)


def fill(text: str) -> str:
    return MARKED.sub(lambda m: m.group(1) + SECTIONS[m.group(2)]() + "\n" + m.group(4), text)


def generated() -> dict[Path, str]:
    files = {REPO / "docs" / "benchmarks.md": benchmarks_page()}
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        if path.name != "benchmarks.md" and path.is_file():
            files[path] = fill(path.read_text())
    return files


def main(check: bool) -> int:
    stale = []
    for path, text in generated().items():
        if not path.is_file() or path.read_text() != text:
            stale.append(path.relative_to(REPO))
            if not check:
                path.write_text(text)
    if check and stale:
        print(f"out of date with benchmarks/results/: {', '.join(map(str, stale))} (run make docs)")
        return 1
    print("\n".join(f"wrote {p}" for p in stale) if stale and not check else "docs match the records")
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
