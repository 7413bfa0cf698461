"""One line of progress for long work (decoding a split, caching its activations): how many of how
many, photos a second and the time left, at most every few seconds on stderr and in the run's log,
so a job under nohup reads as it does at a terminal. Work under ``QUIET_BELOW`` items says nothing."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time

log = logging.getLogger("mledge.train")
QUIET_BELOW = 1000
LINE = re.compile(r"^[^:]+: [\d,]+(/[\d,]+ photos, [\d,.]+/s, [\d,]+ s left| photos in [\d,.]+ s \([\d,.]+/s\))$")


def is_progress(line: str) -> bool:
    """A line of ours (a parent passes them on from a child's stderr, where they are kept apart from its noise)."""
    return bool(LINE.match(line))


class Progress:
    def __init__(self, what: str, total: int, every: float = 5.0):
        self.what, self.total, self.every = what, total, every
        self.done, self.start = 0, time.monotonic()
        self.last = self.start
        self.lock = threading.Lock()  # the decoders and the cache's interpreters count from threads

    def _say(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        log.info(line)

    def update(self, n: int = 1) -> None:
        with self.lock:
            self.done += n
            now = time.monotonic()
            if self.total < QUIET_BELOW or now - self.last < self.every or self.done >= self.total:
                return
            self.last = now
            rate = self.done / (now - self.start)
            left = (self.total - self.done) / rate if rate else float("inf")
            self._say(f"{self.what}: {self.done:,}/{self.total:,} photos, {rate:,.0f}/s, {left:,.0f} s left")

    def close(self) -> None:
        seconds = max(time.monotonic() - self.start, 1e-9)
        if self.total >= QUIET_BELOW:
            self._say(f"{self.what}: {self.done:,} photos in {seconds:,.1f} s ({self.done / seconds:,.0f}/s)")
