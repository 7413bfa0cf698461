"""Watch a folder for days: classify every photo in it, then each new one once it is completely written.

Photos are taken in the order their files last changed (the inode's change time, ctime, which
creating, writing, renaming or linking a file sets to now, and which ``cp -p`` or ``rsync -t`` cannot
set back). A photo is complete once it has not changed for ``settle`` seconds, and since every file
that changed before a moment is listed by a scan made after it, one position says what is done: the
``(time, path)`` of the last photo classified. The checkpoint file holds that position and, for each
subfolder, the time it first appeared (a folder moved in keeps its photos' old change times, so its
photos count from when it came). Memory and the checkpoint grow with the number of folders, never
with the number of photos.

Hidden names (``.photo.jpg.tmp``, as rsync and many copiers write) and other suffixes (``.part``)
are skipped until renamed. SIGINT or SIGTERM stops after the photo in hand, its line written and the
checkpoint saved; a restart goes on from there, classifying each photo once. A kill -9 between a
line and its checkpoint classifies that one photo again.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge.preprocess import IMAGE_SUFFIXES, ImageError

GRACE = 10  # a photo that cannot be read is given this many times --settle to be written whole
Position = tuple[int, str]  # (change time in ns, path relative to the folder)


@dataclass
class Checkpoint:
    root: str  # the folder watched (resolved): a checkpoint says nothing of another
    done: Position = (-1, "")  # every photo at or before this position has been classified
    folders: dict[str, tuple[int, int]] = field(default_factory=dict)  # subfolder -> (inode, time first seen)

    @classmethod
    def load(cls, path: Path | None, root: Path) -> Checkpoint:
        here = str(root.resolve())
        if path is None or not path.exists():
            return cls(here)
        try:
            data = json.loads(path.read_text())
            done, folders = data["done"], data["folders"]
            if not (_ints(done[:1]) and isinstance(done[1], str) and len(done) == 2):
                raise ValueError(f"its position is {str(done)[:40]}")
            if not all(isinstance(k, str) and _ints(v) and len(v) == 2 for k, v in folders.items()):
                raise ValueError("its folders are not (inode, time) pairs")
            theirs = data["root"]
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
            raise ValueError(f"{path}: not a watch checkpoint ({err})") from None
        if theirs != here:
            raise ValueError(f"{path}: the checkpoint of a watch of {theirs}, not of {here} "
                             "(another --out or --checkpoint for this folder)")
        return cls(here, tuple(done), {k: tuple(v) for k, v in folders.items()})

    def save(self, path: Path | None) -> None:
        """Atomic (a temporary file and a rename), not synced: a crash of the machine may lose the
        last few positions, and those photos are classified again."""
        if path is None:
            return
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"root": self.root, "done": list(self.done), "folders": self.folders}))
        os.replace(tmp, path)


def _ints(values) -> bool:
    return isinstance(values, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def scan(root: Path, checkpoint: Checkpoint) -> list[tuple[Position, Path]]:
    """The photos under root past the checkpoint, in order; updates its folders (new ones get their
    time of arrival, vanished ones are dropped). A folder that cannot be listed (a share that is
    away for a moment) keeps what it held: back, its photos are not taken as new."""
    found: list[tuple[Position, Path]] = []
    seen: dict[str, tuple[int, int]] = {}

    def walk(folder: Path, rel: str, floor: int) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            seen.update((k, v) for k, v in checkpoint.folders.items() if not rel or k.startswith(f"{rel}/"))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            path = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                known = checkpoint.folders.get(path)
                seen[path] = known if known and known[0] == st.st_ino else (st.st_ino, st.st_ctime_ns)
                walk(Path(entry.path), path, max(floor, seen[path][1]))
            elif entry.is_file(follow_symlinks=False) and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES:
                position = (max(st.st_ctime_ns, floor), path)
                if position > checkpoint.done:
                    found.append((position, Path(entry.path)))

    walk(root, "", -1)
    checkpoint.folders = seen
    return sorted(found)


class Stop:
    """Set by SIGINT or SIGTERM (or by hand); the watch ends after the photo in hand. A plain flag:
    a handler that took a lock (threading.Event.set) could wait forever on the one it interrupted."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.set)

    def set(self, *_) -> None:
        self.requested = True

    def __bool__(self) -> bool:
        return self.requested


def ready(root: Path, checkpoint: Checkpoint, settle: float) -> Iterator[tuple[Position, Path]]:
    """The photos past the checkpoint that have been still for ``settle`` seconds. The list is in
    order of change time, so the first that is not still ends it: every later one changed later."""
    for position, path in scan(root, checkpoint):
        if time.time_ns() - position[0] < settle * 1e9:
            return
        yield position, path


def watch(root: Path, classify: Callable[[Path], None], on_error: Callable[[Path, ImageError], None],
          checkpoint: Checkpoint, checkpoint_path: Path | None, settle: float = 1.0, poll: float = 0.5,
          idle_exit: float | None = None, stop: Stop | None = None) -> int:
    """Classify each photo under root past the checkpoint once, in order, saving the checkpoint after
    each, until stopped (or idle for ``idle_exit`` seconds); returns how many were taken.

    A photo that cannot be read while its file changed less than GRACE settles ago is tried again
    later (a copier stalled between creating it and writing it); after that it goes to ``on_error``."""
    stop = stop if stop is not None else Stop()
    count, idle_since = 0, time.monotonic()
    while not stop:
        took, waiting, folders = 0, False, dict(checkpoint.folders)
        for position, path in ready(root, checkpoint, settle):
            try:
                classify(path)
            except ImageError as err:
                if time.time_ns() - position[0] < GRACE * settle * 1e9:
                    waiting = True  # the next look takes it again, or its new position once it changes
                    break
                on_error(path, err)
            checkpoint.done = position
            checkpoint.save(checkpoint_path)
            count, took = count + 1, took + 1
            if stop:
                break
        if checkpoint.folders != folders:  # a folder came or went: written only then (an SD card wears)
            checkpoint.save(checkpoint_path)
        if took or waiting:
            idle_since = time.monotonic()
        if not took and idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
            break
        if not took:
            time.sleep(poll)  # a signal ends it within one poll
    return count
