"""Plain text tables (and CSV) for the command line; used by the edge and the training commands."""

from __future__ import annotations

import csv
import io
import json
from typing import TextIO


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)


def format_rows(rows: list[dict], fmt: str = "table") -> str:
    """Rows of dicts with the same keys: an aligned text table, or CSV."""
    if not rows:
        return ""
    header = list(rows[0])
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    cells = [[_cell(r.get(h)) for h in header] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    numeric = [all(isinstance(r.get(h), (int, float)) or r.get(h) is None for r in rows) for h in header]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(c) for c in cells])


class RowStream:
    """Rows written as they come (a folder of 10,000 photos is never held in memory): CSV, JSON (one
    array, an object a line) or a table whose columns have the widths given up front."""

    def __init__(self, out: TextIO, fmt: str, widths: dict[str, int]):
        self.out, self.fmt, self.widths, self.rows = out, fmt, widths, 0
        if fmt == "csv":
            self.writer = csv.DictWriter(out, list(widths), lineterminator="\n")
            self.writer.writeheader()
        elif fmt == "table":
            self._line(dict(zip(widths, widths)))
            self._line({h: "-" * w for h, w in widths.items()})

    def _line(self, row: dict) -> None:
        cells = [str(row[h]).ljust(w) for h, w in self.widths.items()]
        self.out.write("  ".join(cells).rstrip() + "\n")

    def write(self, row: dict) -> None:
        if self.fmt == "csv":
            self.writer.writerow(row)
        elif self.fmt == "json":
            self.out.write(("[\n  " if not self.rows else ",\n  ") + json.dumps(row))
        else:
            self._line(row)
        self.rows += 1
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write("\n]\n" if self.rows else "[]\n")
        self.out.flush()
