"""``mledge evaluate`` and ``mledge compare`` on real (tiny) runs: the numbers they print are the
ones training recorded, and --plots writes real charts."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mledge.cli import main


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_evaluate_on_val_reproduces_the_training_metrics(trained):
    path = trained("multioutput")
    result = run_cli("evaluate", path, "--split", "val", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    recorded = json.loads((path / "metrics.json").read_text())
    assert report["mAP_area"] == pytest.approx(recorded["mAP_area"], abs=1e-6)
    assert report["mAP_voc07"] == pytest.approx(recorded["mAP_voc07"], abs=1e-6)
    assert report["thresholds"] == pytest.approx(json.loads((path / "thresholds.json").read_text())["thresholds"])
    assert report["at_thresholds"]["CF1"] == pytest.approx(recorded["at_thresholds"]["CF1"], abs=1e-6)
    assert report["threshold_source"] == "thresholds.json" and report["images"] == 30


def test_evaluate_table_one_threshold_and_other_split(trained):
    path = trained("multioutput")
    table = run_cli("evaluate", path, "--split", "test")
    assert table.exit_code == 0, table.output
    assert "on split test (30 images" in table.output and "mAP (VOC 2007 11-point)" in table.output
    assert len([line for line in table.output.splitlines() if line.startswith("aeroplane")]) == 1
    fixed = json.loads(run_cli("evaluate", path, "--split", "test", "--threshold", "0.5", "--format", "json").output)
    assert fixed["thresholds"] == [0.5] * 20 and fixed["threshold_source"] == "--threshold"
    assert fixed["at_thresholds"] == fixed["at_0.5"]


def test_plots_are_real_charts(trained, tmp_path):
    pytest.importorskip("matplotlib")
    result = run_cli("evaluate", trained("multioutput"), "--plots", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    for name in ("pr_curves.png", "ap_per_class.png"):
        with Image.open(tmp_path / "plots" / name) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 200
            pixels = np.asarray(image.convert("L"))
        assert pixels.std() > 5, f"{name} is blank"


def test_evaluate_unfinished_run_is_one_line(tmp_path, synth_root):
    from tests.helpers import tiny_config
    from toolkit.train.runner import init_run

    init_run(tiny_config(synth_root, "independent"), tmp_path / "run")  # config only: nothing trained
    result = run_cli("evaluate", tmp_path / "run")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "training is not finished (20 model(s) missing" in result.output


def test_compare_rows_come_from_the_runs(trained):
    runs = {arch: trained(arch) for arch in ("multioutput", "independent")}
    result = run_cli("compare", *runs.values(), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {row["arch"]: row for row in csv.DictReader(io.StringIO(result.output))}
    assert rows["multioutput"]["models"] == "1" and rows["independent"]["models"] == "20"
    for arch, path in runs.items():
        metrics = json.loads((path / "metrics.json").read_text())
        assert float(rows[arch]["mAP_area"]) == pytest.approx(100 * metrics["mAP_area"], abs=0.006)
        assert float(rows[arch]["train_s"]) == pytest.approx(metrics["train_seconds"])
        assert float(rows[arch]["keras_ms_per_image"]) > 0
    assert int(rows["independent"]["params"]) > 10 * int(rows["multioutput"]["params"])
