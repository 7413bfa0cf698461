"""Any number of photos: ``edge predict`` streams (decode, run, print, forget) in flat memory, and
``edge bench`` hands its workers the image list on stdin, not on a command line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.bench import worker_python

MANY = 5000
REPO = Path(__file__).resolve().parents[2]


EMULATED = os.environ.get("MLEDGE_PYTHON", "").startswith("qemu")  # make test-arm: the x86 run covers size
native_only = pytest.mark.skipif(EMULATED, reason="thousands of photos under qemu take too long; x86 covers it")


def write_photos(folder: Path, count: int) -> Path:
    """Small JPEGs with long names (as a camera folder on a share would have)."""
    base = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    for k in range(count):
        Image.fromarray(np.roll(base, k, axis=1)).save(folder / f"holiday-2026-summer-camera-roll-{k:05d}.jpg")
    return folder


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("few"), 100)


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("many"), MANY)


def run_measured(args: list[str], out: Path) -> tuple[int, float]:
    """(exit code, peak RSS in MB) of ``mledge ARGS`` in its own process, stdout to ``out``."""
    with open(out, "w") as stdout:
        proc = subprocess.Popen([*worker_python(), "-m", "mledge", *args], stdout=stdout, stderr=subprocess.PIPE,
                                cwd=REPO, env={**os.environ, "MLEDGE_PROGRESS": ""})
        _, status, usage = os.wait4(proc.pid, 0)
    proc.stderr.close()
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024


@native_only
def test_predict_streams_a_large_folder_in_flat_memory(bundles, many, few, tmp_path):
    bundle = bundles / "multioutput-int8"
    code_few, rss_few = run_measured(["edge", "predict", str(bundle), str(few), "--format", "json"], tmp_path / "few")
    code, rss = run_measured(["edge", "predict", str(bundle), str(many), "--format", "json"], tmp_path / "many")
    assert code_few == 0 and code == 0
    rows = json.loads((tmp_path / "many").read_text())
    assert len(rows) == MANY and all(len(r["probabilities"]) == 20 for r in rows[:: MANY // 10])
    print(f"peak RSS: 100 photos {rss_few:.0f} MB, {MANY} photos {rss:.0f} MB")
    assert rss - rss_few < 100, f"{MANY} photos took {rss:.0f} MB against {rss_few:.0f} MB for 100"


def test_predict_csv_and_table_stream_one_row_per_photo(bundles, few, tmp_path):
    for fmt, header in (("csv", "image,labels,top"), ("table", "image")):
        code, _ = run_measured(["edge", "predict", str(bundles / "independent-int8"), str(few), "--format", fmt],
                               tmp_path / fmt)
        lines = (tmp_path / fmt).read_text().splitlines()
        assert code == 0 and lines[0].startswith(header)
        assert len(lines) == 100 + (1 if fmt == "csv" else 2)


@native_only
def test_bench_takes_thousands_of_images(bundles, many, tmp_path):
    code, _ = run_measured(["edge", "bench", str(bundles / "multioutput-int8"), "--images", str(many),
                            "--runs", "5", "--warmup", "1", "--json"], tmp_path / "bench.json")
    (row,) = json.loads((tmp_path / "bench.json").read_text())
    assert code == 0 and row["status"] == "ok", row
    assert row["images"] == MANY and row["e2e_ms"]["p50"] > 0
