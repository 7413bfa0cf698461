"""Nothing half-written: a SIGKILL at a random moment of train, export or weights import leaves every
file either the old one or the new one (temporary files are hidden, named with a leading dot), and the
next command resumes or says what to do."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from mledge.cli import main
from tests.helpers import tiny_cli_args
from tests.test_train import check_complete

REPO = Path(__file__).parents[1]
KILLS = 3


def start(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mledge", *map(str, args)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **(env or {})})


def kill_after(proc: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL after ``seconds``; False when the process had already finished."""
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def visible(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                                                                     p.relative_to(folder).parts)]


def assert_whole(folder: Path) -> None:
    """Every file a reader would take is complete: JSON parses, .keras archives and .h5 files open."""
    import h5py

    for path in visible(folder):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None, path
        elif path.suffix == ".h5":
            with h5py.File(path, "r") as f:
                assert len(f.keys()) > 0, path
    for state in folder.glob("checkpoints/*/state.json"):
        for name in json.loads(state.read_text())["files"].values():
            assert (state.parent / name).is_file(), f"{state} names {name}, which is not there"


def test_training_killed_at_random_moments_resumes(synth_root, tmp_path):
    out = tmp_path / "run"
    args = tiny_cli_args(synth_root, "multioutput", out)
    args[args.index("--epochs") + 1] = "25"
    rng = random.Random(0)
    proc = start(args)
    for _ in range(KILLS):
        deadline = time.time() + 120  # the first epoch's checkpoint: TensorFlow has started
        while not (out / "checkpoints" / "model" / "state.json").is_file() and proc.poll() is None:
            assert time.time() < deadline
            time.sleep(0.05)
        if not kill_after(proc, rng.uniform(0, 1.5)):
            break
        assert_whole(out)
        proc = start(["train", "--resume", out])
    proc.wait()
    assert_whole(out)
    result = CliRunner().invoke(main, ["train", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    check_complete(out, units=1)
    assert leftovers(out) == []


def leftovers(folder: Path) -> list[str]:
    """Hidden files and folders of killed writes (the marker is not one)."""
    return sorted(p.name for p in folder.rglob(".*") if p.name != ".mledge.json")


def test_a_write_clears_what_killed_writes_of_the_same_file_left(tmp_path):
    from toolkit.atomic import write_atomic

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "state.json"
    killed = tmp_path / f".state.json.{dead.pid}.tmp"  # what a write killed before its rename leaves
    running = tmp_path / ".state.json.1.tmp"  # pid 1 is alive: another writer's, kept
    other = tmp_path / f".history.csv.{dead.pid}.tmp"  # another file's: its own writer clears it
    for path in (killed, running, other):
        path.write_text("half")
    write_atomic(target, "{}")
    assert target.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, running.name, other.name])


def test_export_killed_at_random_moments_leaves_the_old_bundle_or_the_new(trained, tmp_path):
    from edge.bundle import read_manifest

    run, bundle = trained("multioutput"), tmp_path / "bundle"
    export = ["export", run, "--out", bundle, "--force", "--calib-images", "20"]
    assert CliRunner().invoke(main, [str(a) for a in export]).exit_code == 0  # the old bundle: float32
    t0 = time.time()
    assert start([*export, "--quant", "int8"]).wait() == 0
    duration = time.time() - t0
    assert read_manifest(bundle)["quantization"] == "int8"
    rng = random.Random(1)
    for k in range(KILLS - 1):
        quant = ("float32", "dynamic")[k % 2]
        kill_after(start([*export, "--quant", quant]), rng.uniform(0.3, 1.0) * duration)
        manifest = read_manifest(bundle, verify=True)  # every file there and unchanged
        assert manifest["quantization"] in ("int8", "float32", "dynamic")
        assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["bundle"]
    result = CliRunner().invoke(main, [*map(str, export), "--quant", "float16"])
    assert result.exit_code == 0, result.output
    assert read_manifest(bundle)["quantization"] == "float16"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]  # the killed exports' staging is gone


def test_weights_import_killed_at_random_moments_keeps_the_cache_whole(tmp_path):
    pytest.importorskip("torch", reason="the pretrained extra is not installed")
    env = {"MLEDGE_CACHE": str(tmp_path)}
    t0 = time.time()
    assert start(["weights", "import", "efficientnet-lite0"], env).wait() == 0
    duration = time.time() - t0
    weights = tmp_path / "efficientnet-lite0.weights.h5"
    size = weights.stat().st_size
    rng = random.Random(2)
    # each import takes ~20 s: one kill, in the second half, where the file is written
    kill_after(start(["weights", "import", "efficientnet-lite0"], env), rng.uniform(0.5, 1.0) * duration)
    assert_whole(tmp_path)
    assert weights.stat().st_size == size
    assert sorted(p.name for p in visible(tmp_path)) == ["efficientnet-lite0.json", "efficientnet-lite0.weights.h5"]
