"""``mledge report``: the numbers on the page are the numbers in the JSON they came from, and the
page is self-contained (no script, nothing from the network)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner

from mledge.cli import main


class Marks(HTMLParser):
    """Every element with a data-chart attribute, and every table row's cells."""

    def __init__(self):
        super().__init__()
        self.marks: list[dict] = []
        self.tags: set[str] = set()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        self.urls += [v for k, v in attrs.items() if k in ("src", "href") and v]
        if "data-chart" in attrs:
            self.marks.append(attrs)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def page(trained, tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    runs = [trained("multioutput"), trained("independent", classes=["aeroplane", "car", "person"])]
    bundles = []
    for run, name in zip(runs, ("mo-int8", "ind-int8")):
        assert cli("export", run, "--quant", "int8", "--calib-images", "20", "--out", base / name).exit_code == 0
        bundles.append(base / name)
    bench = cli("edge", "bench", *bundles, "--images", runs[0].parent, "--limit", "10", "--runs", "5", "--json")
    (base / "bench.json").write_text(bench.stdout)
    args = [*runs, *(x for b in bundles for x in ("--bundles", b)), "--bench", base / "bench.json",
            "--out", base / "report.html"]
    result = cli("report", *args)
    assert result.exit_code == 0, result.output
    html = (base / "report.html").read_text()
    parser = Marks()
    parser.feed(html)
    return {"html": html, "marks": parser, "runs": runs, "bundles": bundles, "dir": base, "args": args,
            "bench": json.loads(bench.stdout)}


def marks(page, chart):
    return [m for m in page["marks"].marks if m["data-chart"] == chart]


def test_self_contained(page):
    assert "script" not in page["marks"].tags and not page["marks"].urls
    assert not re.search(r"https?://", page["html"])


def test_bench_bars_are_the_bench_numbers(page):
    rows = page["bench"]
    for chart, read in (("MB", lambda r: r["MB"]), ("load_ms", lambda r: r["load_ms"]),
                        ("e2e_p50", lambda r: r["e2e_ms"]["p50"]), ("e2e_p99", lambda r: r["e2e_ms"]["p99"]),
                        ("peak_MB", lambda r: r["peak_rss_MB"])):
        assert [float(m["data-value"]) for m in marks(page, chart)] == [read(r) for r in rows], chart
    ratio = rows[1]["MB"] / rows[0]["MB"]  # the ensemble against the single model, written on its bar
    assert f"{ratio:.1f}x single int8" in page["html"]
    assert rows[0]["runtime"] in page["html"] and rows[0]["cpu"]["machine"] in page["html"]


def test_per_class_ap_and_thresholds_are_the_runs(page):
    for run in page["runs"]:
        metrics = json.loads((run / "metrics.json").read_text())
        drawn = {m["data-label"]: float(m["data-value"]) for m in marks(page, "ap") if m["data-series"] == run.name}
        expected = {c: 100 * v for c, v in zip(metrics["classes"], metrics["AP_area"]) if v is not None}
        assert drawn == pytest.approx(expected)
        thresholds = json.loads((run / "thresholds.json").read_text())["thresholds"]
        assert all(f"<td>{t:.3f}</td>" in page["html"] for t in thresholds)


def test_training_curves_mark_the_best_epoch(page):
    run = page["runs"][0]
    record = json.loads((run / "models" / "model.json").read_text())
    (line,) = marks(page, f"valmap-{run.name}")
    drawn = [float(v) for v in line["data-values"].split(",")]
    assert drawn == pytest.approx([h["val_map"] for h in record["history"]])
    (best,) = marks(page, f"valmap-{run.name}-best")
    assert int(best["data-value"]) == record["best_epoch"]


def test_pr_curves_and_cooccurrence(page, synth_root):
    from toolkit.data.dataset import load_split

    assert len({m["data-chart"] for m in page["marks"].marks if m["data-chart"].startswith("pr-")}) >= 10
    labels = load_split(synth_root, "train").labels.to_numpy()
    expected = labels.T @ labels
    cells = {m["data-label"]: float(m["data-value"]) for m in marks(page, "cooccurrence")}
    assert cells["person|person"] == expected[14, 14] and cells["person|chair"] == expected[14, 8]
    assert [float(m["data-value"]) for m in marks(page, "images_per_class")] == labels.sum(axis=0).tolist()


def test_bundle_facts(page):
    for bundle in page["bundles"]:
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert all(f["sha256"][:16] in page["html"] for f in manifest["files"])
        assert manifest["tensorflow_version"] in page["html"]


def test_never_overwrites_and_names_bad_inputs(page, tmp_path):
    again = cli("report", *page["args"])
    assert again.exit_code == 2 and "exists (use --force to replace it)" in again.output
    assert cli("report", "--out", tmp_path / "r.html").exit_code == 2
    (tmp_path / "bench.json").write_text('{"not": "rows"}')
    bad = cli("report", "--bench", tmp_path / "bench.json", "--out", tmp_path / "r.html")
    assert bad.exit_code == 2 and "not the output of mledge edge bench --json" in bad.output
    assert not (tmp_path / "r.html").exists()


def test_old_runs_without_val_scores_still_report(page, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(page["runs"][0], old)
    (old / "val_scores.npz").unlink()
    result = cli("report", old, "--out", tmp_path / "old.html")
    assert result.exit_code == 0 and "hold no val scores" in (tmp_path / "old.html").read_text()
    assert np.isfinite(json.loads((old / "metrics.json").read_text())["mAP_area"])


def test_a_run_says_where_its_start_came_from(trained, tmp_path):
    source = trained("multioutput")
    run = trained("independent", init=str(source), classes=["person", "aeroplane", "car"], lr=0.0)
    result = cli("report", run, "--out", tmp_path / "init.html")
    assert result.exit_code == 0, result.output
    score = 100 * json.loads((source / "metrics.json").read_text())["mAP_area"]
    note = re.search(r"<p class='note' data-provenance='[^']*'>([^<]*)</p>", (tmp_path / "init.html").read_text())
    assert note and note.group(1) == f"models started from {source.name} (val mAP {score:.2f}).", note
