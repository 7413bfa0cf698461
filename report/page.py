"""``mledge report``: one self-contained HTML file (inline SVG, inline CSS, no script, nothing from the
network) that answers the study's question with pictures: bundles side by side, training curves,
per-class AP and PR curves, thresholds, the dataset's labels, and each bundle's facts."""

from __future__ import annotations

import time
from html import escape
from pathlib import Path

import numpy as np

from edge.metrics import pr_curve
from report.collect import Run, dataset_facts, read_bench, read_bundle, read_run
from report.svg import bar_chart, grouped_bars, heatmap, line_chart, pr_chart
from toolkit.outputs import REPORT_GENERATOR

CSS = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 12px; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; } h3 { font-size: 1em; }
svg { width: 100%; height: auto; max-width: 760px; display: block; margin: 8px 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 8px; }
.grid svg { max-width: 228px; }
.scroll { overflow-x: auto; } table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 3px 6px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.note { color: #666; font-size: 0.9em; }
"""

BENCH_CHARTS = (  # chart key, title, how to read a row, unit
    ("MB", "Bytes on disk", lambda r: r["MB"], "MB"),
    ("load_ms", "Load time", lambda r: r["load_ms"], "ms"),
    ("e2e_p50", "Latency per image, end to end, p50", lambda r: r["e2e_ms"]["p50"], "ms"),
    ("e2e_p99", "Latency per image, end to end, p99", lambda r: r["e2e_ms"]["p99"], "ms"),
    ("invoke_p50", "Latency per image, invoke only, p50", lambda r: r["invoke_ms"]["p50"], "ms"),
    ("peak_MB", "Peak memory (RSS)", lambda r: r["peak_rss_MB"], "MB"),
    ("mAP", "mAP (area) on the bench's images", lambda r: 100 * r["mAP"] if r.get("mAP") is not None else None, ""),
)


def _label(row: dict) -> str:
    return f"{Path(row['bundle']).name} ({row['threads']} thr)"


def comparison(rows: list[dict]) -> str:
    ok = [r for r in rows if r.get("status", "ok") == "ok"]
    if not ok:
        return "<p class='note'>No bench rows measured successfully.</p>"
    singles = [r for r in ok if r.get("arch") == "multioutput"]

    def single_for(row: dict) -> dict | None:
        """The single model to compare with: the same quantization and threads where the bench has it."""
        same = [r for r in singles if (r["quant"], r["threads"]) == (row.get("quant"), row["threads"])]
        return (same or singles or [None])[0]

    where = {f"{r.get('runtime', 'runtime not recorded')} on {r.get('cpu', {}).get('model', '?')} "
             f"({r.get('cpu', {}).get('machine', '?')}, {r.get('cpu', {}).get('cores', '?')} cores)" for r in ok}
    out = [f"<p>Measured with {escape('; '.join(sorted(where)))}, batch 1, each bundle in its own process."
           + (" Ratios are against the single (multioutput) model of the same quantization." if singles else "")
           + "</p>"]
    for key, title, read, unit in BENCH_CHARTS:
        bars = []
        for r in ok:
            value = read(r)
            if value is None:
                continue
            note, single = "", single_for(r)
            if single is not None and r is not single and key != "mAP" and read(single):
                note = f"{value / read(single):.1f}x single {single['quant']}"
            bars.append((_label(r), float(value), note))
        if bars:
            out.append(bar_chart(title, key, bars, unit))
    failed = [r for r in rows if r.get("status", "ok") != "ok"]
    out += [f"<p class='note'>{escape(r['bundle'])}: {escape(r['status'])}</p>" for r in failed]
    return "\n".join(out)


def training_curves(run: Run) -> str:
    out = []
    units = [r for r in run.records if r["history"]]
    if run.config["arch"] == "multioutput":
        history = units[0]["history"]
        kind = units[0]["settings"]["loss"]
        losses = {"train loss": [h["loss"] for h in history], "val loss": [h["val_loss"] for h in history]}
        out.append(line_chart(f"{run.name}: loss ({kind})", f"loss-{run.name}", losses, y_label="loss"))
    series = {r["unit"]: [h["val_map"] for h in r["history"]] for r in units}
    marks = {r["unit"]: r["best_epoch"] for r in units}
    what = "val mAP" if run.config["arch"] == "multioutput" else "val AP per class (one line a model)"
    out.append(line_chart(f"{run.name}: {what}; the dot marks the best epoch, the one kept", f"valmap-{run.name}",
                          series, marks, y_label="val score"))
    return "\n".join(out)


def per_class_ap(runs: list[Run]) -> str:
    classes = runs[0].metrics["classes"]
    series = {}
    for run in runs:
        by_class = dict(zip(run.metrics["classes"], run.metrics["AP_area"]))
        series[run.name] = [None if by_class.get(c) is None else 100 * by_class[c] for c in classes]
    return grouped_bars("Per-class AP (area), val", "ap", classes, series)


def pr_curves(runs: list[Run]) -> str:
    scored = [r for r in runs if r.scores is not None]
    if not scored:
        return "<p class='note'>These runs hold no val scores (trained before val_scores.npz existed).</p>"
    cells = []
    for name in scored[0].metrics["classes"]:
        curves = {}
        for run in scored:
            if name not in run.metrics["classes"]:
                continue
            j = run.metrics["classes"].index(name)
            valid = run.scores["valid"][:, j].astype(bool)
            y, s = run.scores["labels"][valid, j], run.scores["scores"][valid, j]
            if y.sum() == 0:
                continue
            precision, recall, _ = pr_curve(y, s)
            step = max(1, len(recall) // 100)  # at most ~100 points a curve
            curves[run.name] = (np.r_[0, recall[::step], recall[-1]].tolist(),
                                np.r_[precision[0], precision[::step], precision[-1]].tolist())
        if curves:
            cells.append(pr_chart(f"{name}", f"pr-{name}", curves))
    legend = ", ".join(escape(r.name) for r in scored)
    return f"<p class='note'>Precision (up) against recall (right); runs: {legend}.</p><div class='grid'>" + \
        "".join(cells) + "</div>"


def provenance(run: Run) -> str:
    """Where a run's knowledge came from besides its labels: its teacher, adopted trunk or start."""
    def source(origin: dict) -> str:
        score = origin.get("val_mAP_area")
        return escape(Path(origin["path"]).name) + ("" if score is None else f" (val mAP {100 * score:.2f})")

    teacher, parts = run.metrics.get("teacher"), []
    if teacher:
        parts.append(f"taught by {source(teacher)} at weight {teacher['weight']}, temperature "
                     f"{teacher['temperature']}" + (" with unlabelled photos" if teacher.get("unlabeled") else ""))
    if "trunk_from" in run.metrics:
        parts.append(f"frozen trunk from {source(run.metrics['trunk_from'])}")
    if "init_from" in run.metrics:
        parts.append(f"models started from {source(run.metrics['init_from'])}")
    return f"<p class='note' data-provenance='{escape(run.name)}'>{'; '.join(parts)}.</p>" if parts else ""


def thresholds_table(run: Run) -> str:
    pc = run.metrics["at_thresholds"]["per_class"]
    ap = ["" if v is None else f"{100 * v:.2f}" for v in run.metrics["AP_area"]]
    rows = "".join(
        f"<tr><td>{escape(c)}</td><td>{run.metrics['thresholds'][k]:.3f}</td><td>{100 * pc['precision'][k]:.1f}</td>"
        f"<td>{100 * pc['recall'][k]:.1f}</td><td>{100 * pc['f1'][k]:.1f}</td>"
        f"<td>{ap[k]}</td></tr>"
        for k, c in enumerate(run.metrics["classes"]))
    return (f"<h3>{escape(run.name)} ({escape(run.config['arch'])}): mAP {100 * run.metrics['mAP_area']:.2f} (area), "
            f"{100 * run.metrics['mAP_voc07']:.2f} (VOC07)</h3>{provenance(run)}<div class='scroll'>"
            "<table data-table='thresholds' "
            f"data-run='{escape(run.name)}'><tr><th>class</th><th>threshold</th><th>P %</th><th>R %</th><th>F1 %</th>"
            f"<th>AP %</th></tr>{rows}</table></div>")


def dataset_section(facts: dict) -> str:
    if "unavailable" in facts:
        return f"<p class='note'>The dataset could not be read: {escape(facts['unavailable'])}</p>"
    classes = facts["classes"]
    hist = ", ".join(f"{n} label{'s' if n != 1 else ''}: {v}" for n, v in enumerate(facts["labels_per_image"]) if v)
    return "\n".join([
        f"<p>{escape(facts['root'])}, split {escape(facts['split'])} ({escape(facts['format'])}): "
        f"{facts['images']} images; images by number of labels: {escape(hist)}.</p>",
        bar_chart("Images per class (positive)", "images_per_class",
                  [(c, float(n), f"{u} unknown" if u else "") for c, n, u in
                   zip(classes, facts["images_per_class"], facts["unknown_per_class"])], "images"),
        heatmap("Class co-occurrence: images holding both (the diagonal: images holding the class)",
                "cooccurrence", classes, facts["cooccurrence"]),
    ])


def bundle_table(manifest: dict) -> str:
    spec = manifest["input"]
    quant = spec.get("quantization")
    files = "".join(f"<tr><td>{escape(f['name'])}</td><td>{f['bytes']:,}</td><td><code>{f['sha256'][:16]}…</code>"
                    f"</td><td>{len(f['outputs'])}</td></tr>" for f in manifest["files"])
    facts = [("architecture", manifest["architecture"] + (" (fused)" if manifest.get("fused") else "")),
             ("quantization", manifest["quantization"]), ("output", manifest["output"]),
             ("input", f"{spec['height']}x{spec['width']}x3 {spec['dtype']}"
                       + (f", scale {quant['scale']:g}, zero point {quant['zero_point']}" if quant else "")),
             ("classes", len(manifest["classes"])),
             ("versions", f"toolkit {manifest.get('toolkit_version', '?')}, TensorFlow "
                          f"{manifest.get('tensorflow_version', '?')}"),
             ("created", manifest.get("created", "?"))]
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in facts)
    return (f"<h3>{escape(Path(manifest['path']).name)}</h3><div class='scroll'><table data-table='bundle'>{rows}"
            f"</table><table><tr><th>file</th><th>bytes</th><th>sha256</th><th>outputs</th></tr>{files}</table></div>")


def build_report(runs: list[str], bundles: list[str], bench: str | None, title: str = "multilabel-edge report") -> str:
    loaded = [read_run(p) for p in runs]
    manifests = [read_bundle(p) for p in bundles]
    rows = read_bench(bench) if bench else []
    parts = [f"<h1>{escape(title)}</h1><p class='note'>Made {time.strftime('%Y-%m-%d %H:%M')} from "
             f"{len(loaded)} run(s), {len(manifests)} bundle(s) and {len(rows)} bench row(s).</p>"]
    if rows:
        parts += ["<h2>The comparison at a glance</h2>", comparison(rows)]
    if loaded:
        parts += ["<h2>Training curves</h2>", *map(training_curves, loaded)]
        parts += ["<h2>Per-class AP</h2>", per_class_ap(loaded)]
        parts += ["<h2>Precision-recall curves per class (val)</h2>", pr_curves(loaded)]
        parts += ["<h2>Per-class thresholds and what they give (val)</h2>", *map(thresholds_table, loaded)]
        parts += ["<h2>The dataset's labels</h2>", dataset_section(dataset_facts(loaded[0].config))]
    if manifests:
        parts += ["<h2>Bundles</h2>", *map(bundle_table, manifests)]
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{REPORT_GENERATOR}<meta name='viewport' "
            f"content='width=device-width, initial-scale=1'><title>{escape(title)}</title><style>{CSS}</style>"
            f"</head><body>{''.join(parts)}</body></html>\n")
