"""Which folders and files this toolkit owns, and where an output may go.

Only what mledge wrote may be replaced (``--force``), and nothing that holds a file of the user's. An
output folder is recognised by a small marker, ``.mledge.json`` (``{"kind": "run"}`` etc.), written when
the folder is created; runs and bundles written before the marker existed are recognised by their own
``config.json`` or ``manifest.json``. Every file in an owned folder must also be one that its kind
writes: one file of the user's anywhere inside makes the whole folder the user's. A report, a single
HTML file, is recognised by its ``<meta name='generator'>``.
"""

from __future__ import annotations

import json
import os
import shutil
from fnmatch import fnmatch
from pathlib import Path

from toolkit import __version__
from toolkit.errors import UserError

MARKER = ".mledge.json"
REPORT_GENERATOR = "<meta name='generator' content='mledge report'>"
# What each kind writes, as paths relative to its folder (fnmatch: "*" also crosses "/").
WRITES = {
    "run": ("config.json", "init.json", "history.csv", "thresholds.json", "metrics.json", "val_scores.npz",
            "train.log", "teacher.json", "models/*", "checkpoints/*", "teacher/*", "jobs/*", "plots/*",
            "recipe.json", "stages/*", "cache/*"),
    "bundle": ("manifest.json", "labels.txt", "*.tflite"),
    "dataset": ("VOC2007/JPEGImages/*.jpg", "VOC2007/Annotations/*.xml", "VOC2007/ImageSets/Main/*.txt",
                "*.csv", "images/*", "annotations/instances_*.json"),
}
# The hidden files of an interrupted write (toolkit/atomic.py) and of a process joining a run.
TEMPORARY = (".*.tmp", ".*.tmp.*", ".config.*.json")


def mark(folder: Path, kind: str) -> None:
    """Claim ``folder`` (just created by us) as an output of ``kind``."""
    from toolkit.atomic import write_json

    write_json(folder / MARKER, {"kind": kind, "toolkit_version": __version__})


def marked_kind(folder: Path) -> str | None:
    """The kind ``folder`` holds: from its marker, or from a run's or bundle's own file."""
    for name, key in ((MARKER, "kind"), ("config.json", "arch"), ("manifest.json", "toolkit_version")):
        try:
            data = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and key in data:
            return data["kind"] if name == MARKER else {"config.json": "run", "manifest.json": "bundle"}[name]
    return None


def foreign_file(folder: Path, kind: str) -> Path | None:
    """The first file under ``folder`` that an output of ``kind`` does not write (None: all ours)."""
    patterns = WRITES[kind]
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            rel = (Path(parent) / name).relative_to(folder).as_posix()
            if rel == MARKER or any(fnmatch(name, t) for t in TEMPORARY):
                continue
            if not any(fnmatch(rel, p) for p in patterns):
                return Path(parent) / name
    return None


def _refuse(out: Path, reason: str) -> UserError:
    return UserError(f"{out}: {reason}; nothing was changed (write somewhere else, or move that yourself)")


def _refuse_protected(out: Path, reads: tuple[str | Path, ...]) -> None:
    why = _protected(out.resolve(), [Path(r) for r in reads])
    if why:
        raise _refuse(out, why)


def _protected(out: Path, reads: list[Path]) -> str | None:
    """Why ``out`` may never be an output: a place above the user's work, or an input (or a folder
    holding one), which ``--force`` would delete."""
    here = Path.cwd().resolve()
    checkout = Path(__file__).resolve().parents[1]
    places = {here: "the current folder", Path.home().resolve(): "the home folder",
              Path(here.anchor): "the file system root"}
    if (checkout / "pyproject.toml").is_file():
        places[checkout] = "the multilabel-edge checkout"
    for place, what in places.items():
        if out == place:
            return f"is {what}"
    for place, what in places.items():
        if out in place.parents:
            return f"holds {what} ({place})"
    for read in reads:
        read = read.resolve()
        if out == read or out in read.parents:
            return f"{'is' if out == read else 'holds'} {read}, which this command reads"
    return None


def check_output_folder(out: str | Path, kind: str, force: bool, reads: tuple[str | Path, ...] = ()) -> bool:
    """Refuse an ``out`` that is not ours to write, before any work; returns whether it holds an
    earlier output of ``kind`` that ``force`` lets the command replace (once the new one is complete).

    An empty or missing folder is fine; one that holds any file mledge did not write is refused,
    naming that file, with or without ``force``; an earlier output of ours needs ``force``."""
    out = Path(out)
    _refuse_protected(out, reads)
    if not out.is_dir() or not any(out.iterdir()):
        return False
    found = marked_kind(out)
    if found != kind:
        first = foreign_file(out, kind) if found is None else None
        what = f"holds a {found}, not a {kind}" if found else (
            f"holds {first.relative_to(out) if first else 'files'}, which mledge did not write")
        raise _refuse(out, what)
    first = foreign_file(out, kind)
    if first is not None:
        raise _refuse(out, f"holds {first.relative_to(out)}, which mledge did not write")
    if not force:
        hint = f", or mledge train --resume {out} to continue it" if kind == "run" else ""
        raise UserError(f"{out}: holds an earlier {kind} (use --force to replace it{hint})")
    return True


def check_joinable(out: Path, reads: tuple[str | Path, ...] = ()) -> None:
    """A process joining a run (a job array's task) writes into ``out`` beside the others: it must be
    missing, empty or a run of ours, and not a place that is never an output."""
    _refuse_protected(out, reads)
    if out.is_dir():
        if marked_kind(out) == "run":
            first = foreign_file(out, "run")
        else:  # only another joiner's marker, still being written, may be there
            first = next((p for p in sorted(out.iterdir()) if not any(fnmatch(p.name, t) for t in TEMPORARY)), None)
        if first is not None:
            raise _refuse(out, f"holds {first.relative_to(out)}, which mledge did not write")


def check_output_file(out: str | Path, force: bool, reads: tuple[str | Path, ...] = ()) -> None:
    """The same rules for a report: an existing file is replaced only if it is a report of ours."""
    out = Path(out)
    _refuse_protected(out, reads)
    if not out.exists():
        return
    try:
        with open(out, "rb") as f:
            ours = REPORT_GENERATOR.encode() in f.read(4096)
    except OSError:
        ours = False
    if not ours:
        raise _refuse(out, "exists and is not a report that mledge wrote")
    if not force:
        raise UserError(f"{out}: exists (use --force to replace it)")


def set_aside_path(path: Path) -> Path:
    return path.parent / f".{path.name}.replaced"


def set_aside(path: Path) -> Path:
    """Move an earlier run out of the way of its successor; drop_set_aside deletes it once the successor
    is finished. If an earlier replacement was cut short, the run set aside then is the finished one and
    stays; what stands at ``path`` is that unfinished successor, and goes."""
    kept = set_aside_path(path)
    if kept.exists() and not (path / "metrics.json").is_file():
        shutil.rmtree(path)
    else:
        shutil.rmtree(kept, ignore_errors=True)
        os.replace(path, kept)
    return kept


def drop_set_aside(path: Path) -> None:
    shutil.rmtree(set_aside_path(path), ignore_errors=True)


def check_bench_save(out: str | Path) -> None:
    """``edge bench --save FILE`` replaces an earlier bench result (a JSON list of rows), never another file."""
    out = Path(out)
    if not out.exists():
        return
    try:
        rows = json.loads(out.read_text())
        ours = isinstance(rows, list) and all(isinstance(r, dict) and {"bundle", "status"} <= r.keys() for r in rows)
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise _refuse(out, "exists and is not a bench result that mledge wrote")
