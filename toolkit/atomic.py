"""Writes that never leave half a file or folder behind: write beside, then rename into place. A full
disk is one line naming the path and the free space (``DiskFull``), with the earlier file unchanged;
where the size is known beforehand (a model, a cache) the space is checked before the write starts,
which also keeps HDF5 from meeting a full disk (h5py can crash the process there)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from toolkit.errors import UserError

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
RESERVE = 1 << 20  # a write must leave this much free: the small files written after it (state.json)


class DiskFull(UserError):
    """No space (or quota) left where an output is written: one line, exit 2, earlier files intact."""


def free_bytes(path: Path) -> int:
    existing = next(p for p in (Path(path).absolute(), *Path(path).absolute().parents) if p.exists())
    return shutil.disk_usage(existing).free


def megabytes(n: int) -> str:
    return f"{n / 1e3:.0f} kB" if n < 1e6 else f"{n / 1e6:.1f} MB" if n < 10e9 else f"{n / 1e9:.1f} GB"


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC or EDQUOT, also as h5py and zipfile report them (no errno, the text in the message)."""
    if isinstance(err, OSError) and err.errno in FULL_ERRNOS:
        return True
    text = str(err)
    return isinstance(err, (OSError, RuntimeError)) and ("No space left" in text or "Disk quota" in text
                                                         or "errno = 28" in text)


def disk_full(path: Path, needed: int | None = None) -> DiskFull:
    what = f"needs about {megabytes(needed)}, but" if needed else "cannot be written:"
    return DiskFull(f"{path}: {what} the disk has {megabytes(free_bytes(path))} free; nothing earlier was "
                    f"changed: free some space and run the command again")


def require_space(path: Path, nbytes: int) -> None:
    """Refuse before writing ``nbytes`` at ``path`` when the disk cannot take them."""
    if free_bytes(path) < nbytes + RESERVE:
        raise disk_full(path, nbytes + RESERVE)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def clear_leftovers(tmp: Path) -> None:
    """Remove what earlier writes of the same file left when they were killed (``tmp`` with another
    pid, of a process that is gone): a half-written model is as big as the model. Only the file's own
    writer calls this (one process per file, also in job arrays), so a pid of another host is moot."""
    head, sep, tail = tmp.name.partition(f".{os.getpid()}.")
    if not sep:
        return
    for other in tmp.parent.glob(f"{glob.escape(head)}.*.{glob.escape(tail)}"):
        pid = other.name[len(head) + 1:-len(tail) - 1]
        if pid.isdigit() and not _alive(int(pid)):
            _remove(other)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):  # the first error is the one to tell
            path.unlink()


@contextlib.contextmanager
def writing(path: Path, *tmps: Path):
    """Around a write to ``path`` through ``tmps`` (files or folders): the leftovers of earlier killed
    writes of ``path`` go first; on any failure the temporary ones go, and a full disk becomes DiskFull."""
    for tmp in tmps:
        clear_leftovers(tmp)
    try:
        yield
    except BaseException as err:
        for tmp in tmps:
            _remove(tmp)
        if is_disk_full(err):
            raise disk_full(path) from None
        raise


def write_atomic(path: Path, data: bytes | str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with writing(path, tmp):
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)


def write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def model_bytes(model, optimizer: bool = False) -> int:
    """The bytes of ``model``'s weights (and its optimizer's state): what a saved file will hold."""
    variables = list(model.weights)
    if optimizer and getattr(model, "optimizer", None) is not None:
        variables += list(model.optimizer.variables)
    return sum(math.prod(v.shape) * _itemsize(v) for v in variables)


def _itemsize(variable) -> int:
    import numpy as np

    try:
        return np.dtype(str(variable.dtype)).itemsize
    except TypeError:
        return 4


def save_model_atomic(model, path: Path) -> None:
    """A .keras file with the optimizer: space checked first (weights x 1.1 plus the reserve)."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    with writing(path, tmp):
        require_space(path, int(model_bytes(model, optimizer=True) * 1.1))
        model.save(tmp)
        os.replace(tmp, path)


def save_weights_atomic(model, path: Path) -> None:
    """A .weights.h5 file (h5py writes it in place; Keras puts the optimizer's state in it too): space
    checked first, so HDF5 never meets a full disk."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.weights.h5")
    with writing(path, tmp):
        require_space(path, int(model_bytes(model, optimizer=True) * 1.1))
        model.save_weights(tmp)
        os.replace(tmp, path)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 with RENAME_EXCHANGE); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``. An existing ``out`` is exchanged with ``tmp`` in one
    step where the system can (so ``out`` is always the old folder or the new one), then deleted."""
    if not out.exists():
        os.replace(tmp, out)
    elif _exchange(tmp, out):
        shutil.rmtree(tmp)  # now the old folder
    else:
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.replace(out, old / out.name)
        os.replace(tmp, out)
        shutil.rmtree(old)


@contextlib.contextmanager
def staging(out: Path):
    """A hidden folder beside ``out`` to write into; removed if the block fails (a full disk: DiskFull)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.tmp"
    with writing(out, tmp):
        _remove(tmp)  # this process's own, from an earlier staging of the same output
        tmp.mkdir()
        yield tmp
