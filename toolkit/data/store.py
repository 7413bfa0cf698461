"""Arrays kept on disk instead of in memory: a split's decoded photos and a frozen prefix's maps, as
memory-mapped .npy files in a folder of the run, so memory stays flat whatever the number of photos
(the kernel keeps the rows in use in its page cache: a split that fits is read as fast as from memory).

A file is written under a temporary name with its space reserved first (posix_fallocate: a full disk
is one line before the work, never a SIGBUS from a page of a sparse file), flushed and renamed into
place; its key, what it was made from, is written last beside it and removed first when it is made
again. Only a file whose key matches is reused, so a killed write is never a trusted cache.

The files are mapped by this module, not by np.memmap: once a second their pages leave the process's
page tables (madvise MADV_DONTNEED). They stay in the kernel's page cache, where the next read finds
them (a minor fault, no disk read), and the kernel drops them when memory is short; the process's
resident size counts only what it holds itself, so it too stays flat whatever the number of photos."""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from toolkit.atomic import disk_full, is_disk_full, require_space, write_json, writing

VERSION = 1  # of the layout: a cache of another version is made again


def digest(*parts) -> str:
    """A short stable name for the inputs of a cache (JSON-able parts)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def files_digest(paths: list[str]) -> str:
    """The paths with each file's size and change time: a photo replaced in place makes a new cache."""
    h = hashlib.sha256()
    for path in paths:
        try:
            st = os.stat(path)
            h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:  # unreadable now: decoding says so, or skips it
            h.update(f"{path}\0-\n".encode())
    return h.hexdigest()[:32]


RELEASE_EVERY = 1.0  # seconds between two releases of the mapped pages
_MAPPED: weakref.WeakSet = weakref.WeakSet()  # the live mappings of this process's cache files
_RELEASER: list[threading.Thread] = []
_LOCK = threading.Lock()


def _release_pages() -> None:
    while True:
        time.sleep(RELEASE_EVERY)
        for mapping in list(_MAPPED):
            with contextlib.suppress(ValueError, OSError):  # closed meanwhile
                mapping.madvise(mmap.MADV_DONTNEED)  # a shared file mapping: written pages are kept


def _open(path: Path, writable: bool) -> tuple[np.ndarray, mmap.mmap]:
    """The array of a .npy file over a mapping of ours, and the mapping (released every second)."""
    with open(path, "r+b" if writable else "rb") as f:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = header(f)
        offset = f.tell()
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
    with _LOCK:
        _MAPPED.add(mapping)
        if not _RELEASER:
            _RELEASER.append(threading.Thread(target=_release_pages, name="cache-pages", daemon=True))
            _RELEASER[0].start()
    array = np.frombuffer(mapping, dtype, count=int(np.prod(shape)), offset=offset)
    return array.reshape(shape, order="F" if fortran else "C"), mapping


def open_array(path: Path) -> np.ndarray:
    """A .npy file's array, read-only and mapped (its pages are the page cache's, not the process's)."""
    return _open(path, writable=False)[0]


def new_array(path: Path, shape: tuple[int, ...], dtype, shown: Path | None = None) -> tuple[np.ndarray, mmap.mmap]:
    """A new .npy file of ``shape``, its space reserved (a full disk is DiskFull, naming ``shown`` or
    ``path``, now; never a SIGBUS from a page of a sparse file later): the writable array and its
    mapping, to flush once filled."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    header_only = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)  # a sparse file
    del header_only
    try:
        with open(path, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, os.path.getsize(path))
    except OSError as err:
        if is_disk_full(err):
            raise disk_full(shown or path, nbytes) from None
        raise
    return _open(path, writable=True)


class Store:
    """The cache folder: ``name.npy`` (the array) and ``name.json`` (its key and what the writer noted)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _paths(self, name: str) -> tuple[Path, Path]:
        return self.folder / f"{name}.npy", self.folder / f"{name}.json"

    def load(self, name: str, key: str) -> tuple[np.ndarray, dict] | None:
        """The array (read-only, memory-mapped) and its notes, when it was made from ``key``."""
        array, meta = self._paths(name)
        try:
            notes = json.loads(meta.read_text())
            if notes.get("key") != key or notes.get("version") != VERSION:
                return None
            return open_array(array), notes
        except (OSError, ValueError, AttributeError):
            return None

    @contextlib.contextmanager
    def create(self, name: str, key: str, shape: tuple[int, ...], dtype, notes: dict | None = None
               ) -> Iterator[np.ndarray]:
        """A writable memory-mapped array to fill; on leaving the block it is flushed and put in place
        with its key (``notes`` filled in the block go with it). Any failure removes it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        array_path, meta = self._paths(name)
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        require_space(array_path, nbytes)
        tmp = array_path.with_name(f".{array_path.name}.{os.getpid()}.tmp")
        with writing(array_path, tmp):
            meta.unlink(missing_ok=True)  # from here until the new key is written, nothing is trusted
            out, mapping = new_array(tmp, shape, dtype, shown=array_path)
            yield out
            mapping.flush()
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, array_path)
            write_json(meta, {"key": key, "version": VERSION, **(notes or {})})
