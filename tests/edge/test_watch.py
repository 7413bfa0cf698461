"""``mledge edge watch``: each photo of a folder classified once, whole, in order; unreadable ones are
one line; SIGTERM stops cleanly and a restart goes on without classifying a photo twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.bench import worker_python
from edge.watch import Checkpoint, scan

REPO = Path(__file__).resolve().parents[2]
SLOW = 4 if os.environ.get("MLEDGE_PYTHON", "").startswith("qemu") else 1  # the emulator starts slowly


def photo(path: Path, k: int) -> Path:
    pixels = np.random.default_rng(k).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


def start(bundle: Path, folder: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*worker_python(), "-m", "mledge", "edge", "watch", str(bundle), str(folder),
                             "--out", str(out), "--settle", "0.3", "--poll", "0.05", *extra],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def records(out: Path) -> list[dict]:
    files = sorted(out.parent.glob(out.name + "*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    return [json.loads(line) for f in files if not f.name.endswith(".checkpoint")
            for line in f.read_text().splitlines()]


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout * SLOW
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def bundle(bundles) -> Path:
    return bundles / "multioutput-int8"


def test_a_half_written_photo_is_classified_once_complete(bundle, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out.jsonl"
    folder.mkdir()
    whole = photo(tmp_path / "whole.jpg", 0).read_bytes()
    proc = start(bundle, folder, out, "--idle-exit", "2")
    with open(folder / "slow.jpg", "wb") as f:  # a slow copy: half now, the rest later
        f.write(whole[: len(whole) // 2])
        f.flush()
        time.sleep(0.15)
        f.write(whole[len(whole) // 2 :])
    _, err = proc.communicate(timeout=60 * SLOW)
    assert proc.returncode == 0, err
    (rec,) = records(out)
    assert rec["source"].endswith("slow.jpg") and "error" not in rec and len(rec["probabilities"]) == 20
    assert rec["ms"] > 0 and "skipped" not in err


def test_a_copy_that_stalls_past_settle_is_read_again_not_reported(bundle, tmp_path):
    """Half a photo, still for longer than --settle: unreadable, so it is tried again while it is
    younger than ten settles, and classified once the rest comes."""
    folder, out = tmp_path / "in", tmp_path / "out.jsonl"
    folder.mkdir()
    whole = photo(tmp_path / "whole.jpg", 3).read_bytes()
    proc = start(bundle, folder, out, "--idle-exit", "1")
    with open(folder / "stalled.jpg", "wb") as f:
        f.write(whole[: len(whole) // 2])
        f.flush()
        time.sleep(1.0)  # past --settle (0.3 s), within GRACE settles (3 s): not SLOW-scaled
        f.write(whole[len(whole) // 2 :])
    _, err = proc.communicate(timeout=60 * SLOW)
    (rec,) = records(out)
    assert proc.returncode == 0 and "error" not in rec and "skipped" not in err


def test_an_unreadable_photo_is_one_line_and_the_loop_goes_on(bundle, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out.jsonl"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    photo(folder / "fine.jpg", 1)
    proc = start(bundle, folder, out, "--idle-exit", "0.5")
    _, err = proc.communicate(timeout=60 * SLOW)
    assert proc.returncode == 0
    assert [line for line in err.splitlines() if "broken.jpg" in line] == [
        line for line in err.splitlines() if line.startswith("skipped:")]
    assert len([line for line in err.splitlines() if line.startswith("skipped:")]) == 1
    by_name = {Path(r["source"]).name: r for r in records(out)}
    assert "error" in by_name["broken.jpg"] and by_name["fine.jpg"]["labels"] is not None


def test_sigterm_then_a_restart_classifies_each_photo_exactly_once(bundle, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out.jsonl"
    (folder / "day2").mkdir(parents=True)
    names = []
    proc = start(bundle, folder, out)
    for k in range(30):  # photos arrive as it runs, some in a subfolder, through a hidden temporary name
        sub = "day2/" if k % 3 == 0 else ""
        photo(folder / f"{sub}.incoming.jpg", k)
        os.rename(folder / f"{sub}.incoming.jpg", folder / f"{sub}p{k:03d}.jpg")
        names.append(f"{sub}p{k:03d}.jpg")
        if k == 15:
            wait_for(lambda: out.exists() and len(records(out)) >= 5, 30)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30 * SLOW)
            assert proc.returncode == 0 and "stopped" in err
            proc = start(bundle, folder, out)
    wait_for(lambda: len(records(out)) >= 30, 60)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30 * SLOW)
    proc = start(bundle, folder, out, "--idle-exit", "0.5")  # nothing left: classifies none
    proc.communicate(timeout=60 * SLOW)
    seen = [str(Path(r["source"]).relative_to(folder)) for r in records(out)]
    assert sorted(seen) == sorted(names)  # each once


def test_a_folder_moved_in_is_classified_though_its_photos_are_old(bundle, tmp_path):
    folder, out, elsewhere = tmp_path / "in", tmp_path / "out.jsonl", tmp_path / "card"
    folder.mkdir()
    elsewhere.mkdir()
    photo(folder / "first.jpg", 0)
    for k in range(3):
        photo(elsewhere / f"old{k}.jpg", k)
    proc = start(bundle, folder, out)
    wait_for(lambda: out.exists() and len(records(out)) == 1, 30)
    os.rename(elsewhere, folder / "card")  # the same filesystem: the photos keep their change times
    wait_for(lambda: len(records(out)) == 4, 30)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30 * SLOW)
    assert sorted(Path(r["source"]).name for r in records(out)) == ["first.jpg", "old0.jpg", "old1.jpg", "old2.jpg"]


def test_the_output_rotates_and_keeps_every_line(bundle, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out.jsonl"
    folder.mkdir()
    for k in range(12):
        photo(folder / f"p{k:02d}.jpg", k)
    proc = start(bundle, folder, out, "--idle-exit", "0.5", "--rotate-mb", "0.002", "--keep", "100")
    proc.communicate(timeout=60 * SLOW)
    assert proc.returncode == 0 and (tmp_path / "out.jsonl.1").exists()
    assert sorted(Path(r["source"]).name for r in records(out)) == [f"p{k:02d}.jpg" for k in range(12)]


def test_a_file_that_is_not_a_checkpoint_is_one_line(bundle, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "mine.txt").write_text("my notes")
    proc = start(bundle, tmp_path / "in", tmp_path / "out.jsonl", "--checkpoint", str(tmp_path / "mine.txt"),
                 "--idle-exit", "0")
    _, err = proc.communicate(timeout=60 * SLOW)
    assert proc.returncode == 2 and "not a watch checkpoint" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "mine.txt").read_text() == "my notes"


def test_the_checkpoint_of_another_folder_is_refused(bundle, tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    photo(tmp_path / "a" / "one.jpg", 0)
    first = start(bundle, tmp_path / "a", tmp_path / "out.jsonl", "--idle-exit", "0.5")
    first.communicate(timeout=60 * SLOW)
    proc = start(bundle, tmp_path / "b", tmp_path / "out.jsonl", "--idle-exit", "0")
    _, err = proc.communicate(timeout=60 * SLOW)
    assert proc.returncode == 2 and "the checkpoint of a watch of" in err and str(tmp_path / "a") in err


def test_a_folder_that_cannot_be_listed_keeps_what_it_held(tmp_path):
    (tmp_path / "day1").mkdir()
    (tmp_path / "day1" / "a.jpg").write_bytes(b"x")
    checkpoint = Checkpoint(str(tmp_path))
    checkpoint.done = scan(tmp_path, checkpoint)[-1][0]
    held = dict(checkpoint.folders)
    os.rename(tmp_path, tmp_path.with_name("away"))  # the share is gone for a moment
    assert scan(tmp_path, checkpoint) == [] and checkpoint.folders == held
    os.rename(tmp_path.with_name("away"), tmp_path)
    assert scan(tmp_path, checkpoint) == []  # back: nothing is new


def test_scan_lists_only_photos_past_the_checkpoint_in_order(tmp_path):
    for name in ("b.jpg", "a.png", "notes.txt", ".hidden.jpg", "c.jpg.part"):
        (tmp_path / name).write_bytes(b"x")
    checkpoint = Checkpoint(str(tmp_path))
    found = scan(tmp_path, checkpoint)
    assert sorted(p.name for _, p in found) == ["a.png", "b.jpg"]
    assert [pos for pos, _ in found] == sorted(pos for pos, _ in found)
    checkpoint.done = found[0][0]
    assert [p for _, p in scan(tmp_path, checkpoint)] == [found[1][1]]
    shutil.rmtree(tmp_path)
    assert scan(tmp_path, checkpoint) == []  # the folder gone: nothing, no error
    assert Checkpoint.load(None, tmp_path).done == (-1, "")


def test_an_out_file_that_is_not_results_is_left_alone(bundle, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "notes.txt").write_text("my notes\n")
    proc = start(bundle, tmp_path / "in", tmp_path / "notes.txt", "--idle-exit", "0")
    _, err = proc.communicate(timeout=60 * SLOW)
    assert proc.returncode == 2 and "not a file of watch results" in err
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"
