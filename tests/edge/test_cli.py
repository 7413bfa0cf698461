"""``mledge edge ...``: predict, info and bench, as a user runs them (no TensorFlow needed)."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from mledge.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_predict_formats(bundles, test_images):
    bundle = bundles / "multioutput-int8"
    table = run("edge", "predict", bundle, *test_images[:2])
    assert table.exit_code == 0, table.output
    assert test_images[0].name in table.output and "labels" in table.output
    data = json.loads(run("edge", "predict", bundle, test_images[0], "--format", "json").output)
    assert len(data) == 1 and len(data[0]["probabilities"]) == 20
    csv = run("edge", "predict", bundle, test_images[0], "--format", "csv", "--threshold", "0").output.splitlines()
    assert csv[0] == "image,labels,top" and len(csv[1].split(",")[1].split()) == 20


def test_predict_folder_skips_unreadable(bundles, test_images, tmp_path):
    for path in test_images[:3]:
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 nope")
    result = run("edge", "predict", bundles / "independent-float32", tmp_path, "--threads", "1")
    assert result.exit_code == 1
    assert "broken.jpg: cannot read image" in result.output
    assert "1 of 4 image(s) could not be read" in result.output
    assert all(p.name in result.output for p in test_images[:3])


def test_predict_bad_bundle_is_one_line(tmp_path, test_images):
    result = run("edge", "predict", tmp_path, test_images[0])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "manifest.json: missing" in result.output


def test_info(bundles):
    result = run("edge", "info", bundles / "multioutput-float32")
    assert result.exit_code == 0, result.output
    for word in ("interpreter", "numpy", "pillow", "cpu", "xnnpack"):
        assert word in result.output


def test_bench_table_and_json(bundles, fixtures, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(bundles / "multioutput-float32", broken)
    (broken / "model.tflite").write_bytes(b"garbage")
    args = ["edge", "bench", bundles / "multioutput-int8", bundles / "independent-int8", broken,
            "--voc", fixtures / "data", "--split", "test", "--limit", "12", "--runs", "5", "--warmup", "1"]
    result = run(*args, "--json")
    assert result.exit_code == 1  # one bundle failed
    rows = json.loads(result.output[result.output.index("["):])
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 2 and "failed" in rows[2]["status"] and "changed since export" in rows[2]["status"]
    for r in ok:
        assert r["images"] == 12 and 0 <= r["mAP"] <= 1 and r["peak_rss_MB"] > 0 and r["load_ms"] > 0
        assert r["e2e_ms"]["p50"] >= r["invoke_ms"]["p50"] * 0.5
    assert ok[1]["files"] == 3 and ok[0]["files"] == 1
    table = run("edge", "bench", bundles / "multioutput-int8", "--images", fixtures / "data" / "VOC2007" / "JPEGImages",
                "--limit", "5", "--runs", "3", "--threads", "1,2")
    assert table.exit_code == 0, table.output
    assert "invoke_p50" in table.output and table.output.count(" ok") == 2


def test_bench_needs_one_image_source(bundles):
    result = run("edge", "bench", bundles / "multioutput-int8")
    assert result.exit_code == 2 and "exactly one of --images DIR or --data DATA" in result.output


def test_report_from_bench_and_bundles_without_tensorflow(bundles, fixtures, tmp_path):
    """A board has no TensorFlow: a report is made there from bench JSON and bundles."""
    names = [bundles / "multioutput-int8", bundles / "independent-int8"]
    bench = run("edge", "bench", *names, "--data", fixtures / "data", "--split", "test", "--limit", "8",
                "--runs", "3", "--save", tmp_path / "bench.json")
    assert bench.exit_code == 0 and "invoke_p50" in bench.output  # the table, and the JSON saved beside it
    result = run("report", "--bundles", names[0], "--bundles", names[1], "--bench", tmp_path / "bench.json",
                 "--out", tmp_path / "report.html")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert "The comparison at a glance" in page and "x single" in page and "<script" not in page
