"""Frames of a video file or a camera (V4L2), decoded one at a time with PyAV, the FFmpeg bindings
(``pip install 'multilabel-edge[video]'``): a video of any length runs in the memory of one frame."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".h264"}


class VideoError(Exception):
    """A video or camera that cannot be opened or decoded: one line naming it."""


@dataclass
class Frame:
    index: int  # the frame's number in the stream, from 0
    time: float | None  # seconds from the start, by the stream's timestamps
    image: Image.Image


def _av():
    try:
        import av
    except ImportError:
        raise VideoError("reading video needs PyAV: pip install 'multilabel-edge[video]'") from None
    return av


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def frames(source: str, every: int = 1, camera: bool = False) -> Iterator[Frame]:
    """Every ``every``-th frame of a video file, or of /dev/videoN when ``camera``."""
    av = _av()
    name = f"/dev/video{source}" if camera else source
    try:
        container = av.open(name, format="v4l2") if camera else av.open(name)
    except (av.error.FFmpegError, OSError) as err:
        what = "no camera at" if camera else "cannot open video"
        raise VideoError(f"{name}: {what} ({str(err)[:160]})") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{name}: no video stream in it")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index % every == 0:
                    yield Frame(index, None if frame.time is None else float(frame.time), frame.to_image())
        except av.error.FFmpegError as err:
            raise VideoError(f"{name}: cannot decode frame {index + 1} ({str(err)[:160]})") from None
