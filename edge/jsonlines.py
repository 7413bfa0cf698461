"""One JSON object a line, to stdout or to a file that rotates: what a loop that runs for days writes.

The file rotates by size (``out.jsonl`` becomes ``out.jsonl.1``, the oldest beyond ``keep`` is
removed) with the standard library's ``RotatingFileHandler``, which renames only the files it made.
Every line is flushed as it is written, so a reader (``tail -f``) sees each result at once and a
kill loses at most the line being written.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from pathlib import Path


def record(prediction, ms: float, **extra) -> dict:
    """The JSON line of one photo or frame, as watch, predict on a video and serve write it."""
    return {"source": prediction.source, **extra, "labels": prediction.labels,
            "probabilities": {c: round(p, 6) for c, p in prediction.probabilities.items()}, "ms": round(ms, 3)}


def ours(path: Path) -> bool:
    """Whether ``path`` is absent, empty, or JSON lines of results (what may be appended to and rotated)."""
    try:
        with path.open("rb") as f:
            first = f.readline(1 << 16)
    except FileNotFoundError:
        return True
    try:
        return not first.strip() or "source" in json.loads(first)
    except (ValueError, TypeError):
        return False


class JsonLines:
    def __init__(self, path: str | Path | None = None, max_bytes: int = 10 << 20, keep: int = 5):
        self.path = Path(path) if path else None
        self._handler = None
        if self.path is not None:
            self._handler = logging.handlers.RotatingFileHandler(self.path, maxBytes=max_bytes, backupCount=keep,
                                                                 encoding="utf-8")
            self._handler.setFormatter(logging.Formatter("%(message)s"))  # the size check formats the line

    def write(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        if self._handler is None:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        else:  # not emit(): logging would print a full disk's traceback and go on
            if self._handler.shouldRollover(logging.makeLogRecord({"msg": line})):
                self._handler.doRollover()
            self._handler.stream.write(line + "\n")
            self._handler.stream.flush()

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
