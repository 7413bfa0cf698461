"""A full disk is one line naming the path and the free space, exit 2, never a crash or a traceback;
the files that were there stay as they were, and the command (or --resume) goes on once there is
space. Each test mounts a small tmpfs (CI runs as root) and runs mledge in a subprocess, so that a
crash of HDF5 on a full disk would show as its exit code (139), not take the test run down."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import tiny_cli_args
from toolkit.outputs import MARKER

REPO = Path(__file__).parents[1]
MB = 1 << 20


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size) -> a folder on a tmpfs of ``size`` bytes; resize(size) grows it."""
    where = tmp_path / "fs"
    where.mkdir()
    mounted = []

    def mount(size: int) -> Path:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not root'})")
        mounted.append(where)
        return where

    yield mount
    if mounted:
        subprocess.run(["umount", str(where)], check=False)


def resize(where: Path, size: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


def fill(where: Path, leave: int) -> None:
    """Take all but ``leave`` bytes of the disk's free space."""
    import shutil

    with open(where / "filler", "wb") as f:
        f.write(b"\0" * max(0, shutil.disk_usage(where).free - leave))


def mledge(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mledge", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
                                          **(env or {})})


def assert_disk_full(result: subprocess.CompletedProcess, path: Path) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0] and " free" in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` -> its sha256 (hidden temporary files included)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def model_bytes(widths: str, img_size: int) -> int:
    """What a checkpoint of the study's CNN holds: the weights and Adam's two moments."""
    from toolkit.models import CNNConfig, build_model

    c1, c2, d = map(int, widths.split(","))
    model = build_model(CNNConfig(img_size, c1, c2, d), 20)
    return 3 * model.count_params() * 4


WIDTHS, SIZE = "8,16,256", 48


def train_args(data: Path, out: Path, epochs: int) -> list:
    return ["train", data, "--out", out, "--img-size", SIZE, "--widths", WIDTHS, "--epochs", epochs,
            "--patience", 0, "--precision", "float32"]


def test_train_first_epoch_then_resume(tmpfs, synth_root):
    where = tmpfs(2 * MB)
    out = where / "run"
    assert_disk_full(mledge(*train_args(synth_root, out, 2)), out)
    resize(where, 64 * MB)
    result = mledge("train", "--resume", out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(json.loads((out / "models" / "model.json").read_text())["history"]) == 2


def test_train_later_epoch_keeps_the_last_one_then_resume(tmpfs, synth_root):
    """Room for epoch 1's two checkpoint files, not for epoch 2's: epoch 1 stays what resume reads."""
    b = model_bytes(WIDTHS, SIZE)
    where = tmpfs(int(2.7 * b) + MB)
    out = where / "run"
    assert_disk_full(mledge(*train_args(synth_root, out, 3)), out / "checkpoints" / "model")
    state = json.loads((out / "checkpoints" / "model" / "state.json").read_text())
    assert state["epoch"] == 1
    before = snapshot(out)
    assert all(not Path(name).name.startswith(".") or Path(name).name == MARKER for name in before)
    assert_disk_full(mledge("train", "--resume", out), out / "checkpoints" / "model")  # still full
    assert snapshot(out).keys() == before.keys()
    resize(where, 64 * MB)
    result = mledge("train", "--resume", out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(json.loads((out / "models" / "model.json").read_text())["history"]) == 3


def test_a_full_disk_while_force_replaces_a_run_keeps_the_old_one(tmpfs, synth_root):
    where = tmpfs(64 * MB)
    out = where / "run"
    assert mledge(*tiny_cli_args(synth_root, "multioutput", out)).returncode == 0
    old = snapshot(out)
    fill(where, 256 << 10)
    # the photos are decoded into a cache beside the run first: no room for it, and the run is untouched
    assert_disk_full(mledge(*train_args(synth_root, out, 1), "--force"), where / ".run.cache")
    assert snapshot(out) == old and not (where / ".run.replaced").exists() and not (where / ".run.cache").exists()
    (where / "filler").unlink()
    fill(where, 2 * MB)  # room for the cache, not for the new run's checkpoints: the old run is kept aside
    assert_disk_full(mledge(*train_args(synth_root, out, 1), "--force"), out)
    assert snapshot(where / ".run.replaced") == old


def test_a_full_disk_while_the_photos_are_cached_is_one_line_and_leaves_nothing(tmpfs, synth_root):
    where = tmpfs(1 * MB)  # the train split at 48 px is 1.2 MB decoded
    out = where / "run"
    assert_disk_full(mledge(*train_args(synth_root, out, 1)), where / ".run.cache")
    assert not list(where.iterdir())
    resize(where, 64 * MB)
    result = mledge(*train_args(synth_root, out, 1))
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (out / "cache").exists()  # a finished run drops its decoded photos


def test_export(tmpfs, trained):
    run = trained("multioutput")
    where = tmpfs(64 * MB)
    bundle = where / "bundle"
    assert mledge("export", run, "--out", bundle, "--quant", "int8").returncode == 0
    old = snapshot(bundle)
    fill(where, 64 << 10)
    assert_disk_full(mledge("export", run, "--out", bundle, "--quant", "float32", "--force"), bundle)
    assert snapshot(bundle) == old
    (where / "filler").unlink()
    assert mledge("export", run, "--out", bundle, "--quant", "float32", "--force").returncode == 0


def test_data_convert_and_split(tmpfs, synth_root):
    where = tmpfs(64 * MB)
    dest = where / "coco"
    assert mledge("data", "convert", synth_root, dest, "--to", "coco").returncode == 0
    old = snapshot(dest)
    fill(where, 16 << 10)
    assert_disk_full(mledge("data", "convert", synth_root, dest, "--to", "csv", "--force"), dest)
    assert_disk_full(mledge("data", "split", synth_root, "--out", where / "split"), where / "split")
    assert snapshot(dest) == old
    assert sorted(p.name for p in where.iterdir()) == ["coco", "filler"]
    (where / "filler").unlink()
    assert mledge("data", "convert", synth_root, dest, "--to", "csv", "--force").returncode == 0


def test_weights_import(tmpfs):
    pytest.importorskip("torch")
    where = tmpfs(4 * MB)
    result = mledge("weights", "import", "efficientnet-lite0", env={"MLEDGE_CACHE": str(where)})
    assert_disk_full(result, where / "efficientnet-lite0.weights.h5")
    assert list(where.iterdir()) == []
    resize(where, 64 * MB)
    assert mledge("weights", "import", "efficientnet-lite0", env={"MLEDGE_CACHE": str(where)}).returncode == 0


def test_report(tmpfs, trained):
    run = trained("multioutput")
    where = tmpfs(1 * MB)
    fill(where, 4 << 10)
    assert_disk_full(mledge("report", run, "--out", where / "report.html"), where / "report.html")
    assert sorted(p.name for p in where.iterdir()) == ["filler"]
