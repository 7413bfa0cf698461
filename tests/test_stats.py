"""The statistics table against a hand count."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mledge.cli import main
from tests.test_voc import write_voc
from toolkit.data.dataset import load_split
from toolkit.data.stats import compute_stats


def test_stats_hand_count(tmp_path):
    labels = {"kite": {"a": 1, "b": -1, "c": 0, "d": 1},
              "pear": {"a": 1, "b": 1, "c": -1, "d": 1},
              "plum": {"a": 1, "b": -1, "c": -1, "d": -1}}
    stats = compute_stats(load_split(write_voc(tmp_path, labels), "train"))
    assert stats.images_per_class == [2, 3, 1]
    assert stats.difficult_per_class == [1, 0, 0]
    assert stats.total_labels == 6
    assert stats.unique_images == 4
    assert stats.labels_histogram == {1: 1, 3: 1, 2: 1}
    assert stats.images_without_labels == 1  # c: difficult aeroplane only
    assert stats.imbalance_ratio == 3.0
    assert stats.objects_per_class is None


def test_stats_cli_formats(synth_root):
    runner = CliRunner()
    table = runner.invoke(main, ["data", "stats", str(synth_root), "--split", "trainval"])
    assert table.exit_code == 0, table.output
    assert "person" in table.output and "imbalance ratio" in table.output and "objects" in table.output
    data = json.loads(runner.invoke(main, ["data", "stats", str(synth_root), "--format", "json"]).output)
    assert data["unique_images"] == 90
    assert sum(r["images"] for r in data["classes"]) == data["total_labels"]
    csv = runner.invoke(main, ["data", "stats", str(synth_root), "--format", "csv"]).output.splitlines()
    assert csv[0] == "class,images,difficult_only,objects" and len(csv) == 21
