"""``mledge edge predict VIDEO --every N``: one JSON line per classified frame, with its number and
time, the same probabilities as the frame given as pixels; a camera that is not there is one line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="the video extra: pip install 'multilabel-edge[video]'")
from edge.bench import worker_python  # noqa: E402
from edge.frames import frames  # noqa: E402
from edge.predictor import Predictor  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FPS, COUNT = 10, 25


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """A 2.5 s MPEG-4 video whose frames differ (a pattern that moves)."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    base = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for k in range(COUNT):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.roll(base, 3 * k, axis=1), format="rgb24")))
        out.mux(stream.encode())
    return path


def mledge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*worker_python(), "-m", "mledge", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_every_nth_frame_is_one_json_line_with_its_time(bundles, video):
    bundle = bundles / "multioutput-int8"
    proc = mledge("edge", "predict", str(bundle), str(video), "--every", "10")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["frame"] for r in rows] == [0, 10, 20]
    assert [r["frame_time"] for r in rows] == pytest.approx([0.0, 1.0, 2.0], abs=0.11)
    predictor = Predictor(bundle)  # a frame at a time, as predict runs them (int8 kernels differ by batch size)
    want = [predictor.predict_pixels(predictor.prepare(f.image))[0] for f in frames(str(video), every=10)]
    for row, probs in zip(rows, want):
        assert row["source"] == str(video) and row["labels"] == predictor.labels_of(probs)
        assert list(row["probabilities"].values()) == pytest.approx(probs.tolist(), abs=1e-5)


@pytest.mark.parametrize(("args", "says"), [
    (["--camera", "99"], "/dev/video99: no camera at"),
    (["missing.mp4"], "missing.mp4: no such file"),
    (["--camera", "0", "clip.mp4"], "--camera 0 or videos, not both: clip.mp4"),
])
def test_a_missing_camera_or_video_is_one_line(bundles, args, says):
    proc = mledge("edge", "predict", str(bundles / "multioutput-int8"), *args)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1


def test_a_file_that_is_not_a_video_is_one_line(bundles, tmp_path):
    (tmp_path / "fake.mp4").write_bytes(b"\0" * 1000)
    proc = mledge("edge", "predict", str(bundles / "multioutput-int8"), str(tmp_path / "fake.mp4"))
    assert proc.returncode == 2 and "fake.mp4: cannot open video" in proc.stderr
