"""A split decoded: images as uint8 at the model's size, labels and the loss mask, and for distillation
the teacher's fixed views. Training decodes once into memory-mapped files of the run's cache (a
cluster worker its own shard); what reads every photo once decodes a chunk at a time; either way
memory stays flat whatever the number of photos. Decoding uses the edge's own preprocessing, so
training sees exactly the pixels a device will."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from edge.predictor import sigmoid
from edge.preprocess import ImageError, load_image
from toolkit.data.dataset import Split
from toolkit.data.store import Store, digest, files_digest
from toolkit.errors import UserError
from toolkit.progress import Progress

log = logging.getLogger(__name__)
CHUNK = 1024  # photos copied at a time between memory-mapped files
CHUNK_BYTES = 256 << 20  # of pixels decoded at a time when a split is read once, chunk by chunk


@dataclass
class Views:
    """Fixed views of each training photo, one drawn a photo an epoch: a distilled student's, with the
    teacher's logits on each, or the cached maps of a pretrained start's augmented photos."""

    images: np.ndarray  # (V, N, ...): pixels (uint8, at the student's size) or the cached maps of a pretrained start
    logits: np.ndarray | None = None  # (V, N, C) float32: the teacher's logits on each view, in the run's class order

    @property
    def taught(self) -> bool:
        return self.logits is not None

    def targets(self, temperature: float, columns: list[int] | None = None) -> np.ndarray:
        """The teacher's probabilities at temperature T, (V, N, C')."""
        logits = self.logits if columns is None else self.logits[..., columns]
        return sigmoid(logits / temperature).astype(np.float32)


@dataclass(frozen=True)
class Shard:
    """A cluster worker's part of a split: rows ``index``, ``index + count``, ... Each worker decodes,
    caches and trains on its own part only (toolkit/train/multiworker.py)."""

    index: int
    count: int
    total: int  # photos of the whole split, the same on every worker: they agree on steps an epoch

    @property
    def suffix(self) -> str:
        """What the worker's cache files are named with."""
        return f"-w{self.index}of{self.count}"


@dataclass
class SplitArrays:
    ids: list[str]
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N, C) float32 in {0, 1}
    mask: np.ndarray  # (N, C) float32: 0 where the label is left out of the loss
    views: Views | None = None  # fixed augmented views (and a teacher's logits on them)
    source: str | None = None  # what the images were decoded from and how (a cache of maps of them keys on it)
    shard: Shard | None = None  # a cluster worker's part of the split; None: all of it

    @property
    def total(self) -> int:
        """Photos of the whole split (over every worker when sharded): what steps and schedules count."""
        return self.shard.total if self.shard else len(self.ids)

    def concat(self, other: SplitArrays, store: Store | None = None) -> SplitArrays:
        """Both as one set (without views: a teacher scores the whole set afterwards); with ``store``,
        copied into a memory-mapped file of it, a chunk at a time, instead of into memory."""
        source = digest(self.source, other.source)
        shape = (len(self.ids) + len(other.ids), *self.images.shape[1:])
        if store is None:
            images = np.concatenate([self.images, other.images])
        else:
            name = f"pixels-{source}"
            if store.load(name, source) is None:
                with store.create(name, source, shape, self.images.dtype) as out:
                    for offset, part in ((0, self.images), (len(self.ids), other.images)):
                        for a in range(0, len(part), CHUNK):
                            rows = part[a : a + CHUNK]
                            out[offset + a : offset + a + len(rows)] = rows
            images = store.load(name, source)[0]
        shard = None if self.shard is None else Shard(self.shard.index, self.shard.count, self.total + other.total)
        return SplitArrays(self.ids + other.ids, images, np.concatenate([self.labels, other.labels]),
                           np.concatenate([self.mask, other.mask]), source=source, shard=shard)


def load_arrays(data: Split, size: int, *, difficult: str = "ignore", on_bad_image: str = "error",
                resize: str = "bilinear", limit: int | None = None, store: Store | None = None,
                shard: tuple[int, int] | None = None) -> SplitArrays:
    """Decode a split's images (threads: Pillow releases the GIL while decoding). With ``store`` they
    stream: decoded once into a memory-mapped file of the run's cache, reused while the photos, the
    size and the resize are the same (toolkit/data/store.py). ``shard`` (index, count): only that
    worker's rows of the split."""
    if on_bad_image not in ("error", "skip"):
        raise UserError(f"--on-bad-image must be error or skip, not {on_bad_image!r}")
    part = None
    if shard is not None:
        part = Shard(*shard, total=len(data.ids[:limit] if limit else data.ids))
        data = data.subset(range(part.index, part.total, part.count))
        data.split += part.suffix
    ids = data.ids[:limit] if limit else data.ids
    paths = [str(p) for p in (data.paths[:limit] if limit else data.paths)]
    shape = (len(paths), size, size, 3)
    key = digest(ids, files_digest(paths), size, resize, on_bad_image)
    if store is None:
        images = np.empty(shape, dtype=np.uint8)
        readable = _decode(data, paths, images, on_bad_image, resize)
    else:
        name = f"pixels-{data.split}-{size}-{resize}"
        found = store.load(name, key)
        if found is None:
            notes: dict = {}
            with store.create(name, key, shape, np.uint8, notes) as images:
                readable = _decode(data, paths, images, on_bad_image, resize)
                notes["readable"] = np.flatnonzero(readable).tolist() if not readable.all() else None
            found = store.load(name, key)
        images, notes = found
        readable = np.ones(len(paths), bool)
        if notes["readable"] is not None:
            readable[:] = False
            readable[notes["readable"]] = True
    n = int(readable.sum())
    if not n:
        raise UserError(f"{data.root}: no readable image in split {data.split!r}")
    keep = np.flatnonzero(readable)
    y, mask = data.targets(difficult)
    return SplitArrays(ids=[ids[k] for k in keep], images=images[:n], labels=y[keep], mask=mask[keep], source=key,
                       shard=part)


def load_chunks(data: Split, size: int, *, difficult: str = "ignore", on_bad_image: str = "error",
                resize: str = "bilinear", limit: int | None = None) -> Iterator[SplitArrays]:
    """The split decoded a chunk of photos at a time (about CHUNK_BYTES of pixels each), for what reads
    every photo once (evaluation, an export's check): memory stays flat whatever the split's size."""
    if on_bad_image not in ("error", "skip"):
        raise UserError(f"--on-bad-image must be error or skip, not {on_bad_image!r}")
    count = min(limit, len(data.ids)) if limit else len(data.ids)
    rows = max(1, CHUNK_BYTES // (size * size * 3))
    progress = Progress(f"decoding {data.split}", count)
    readable = 0
    for start in range(0, count, rows):
        part = data.subset(range(start, min(start + rows, count)))
        images = np.empty((len(part.ids), size, size, 3), np.uint8)
        found = _decode(part, [str(p) for p in part.paths], images, on_bad_image, resize, progress)
        keep = np.flatnonzero(found)
        if len(keep):
            y, mask = part.targets(difficult)
            readable += len(keep)
            ids = part.ids
            yield SplitArrays([ids[k] for k in keep], images[: len(keep)], y[keep], mask[keep])
    progress.close()
    if not readable:
        raise UserError(f"{data.root}: no readable image in split {data.split!r}")


def _decode(data: Split, paths: list[str], images: np.ndarray, on_bad_image: str, resize: str,
            progress: Progress | None = None) -> np.ndarray:
    """Fill ``images`` with the readable photos in order, packed from row 0 (a view of the first rows
    is the split without the unreadable ones, and nothing is copied); returns which were readable.
    ``progress``: a count this adds to (one over several chunks); else one of its own."""
    size = images.shape[1]
    own = progress is None

    def decode(path):
        try:
            return load_image(path, (size, size), resize)
        except ImageError as err:
            if on_bad_image == "error":
                raise UserError(str(err)) from None
            log.warning("skipping %s", err)
            return None
        finally:
            progress.update()

    readable = np.zeros(len(paths), dtype=bool)
    progress = Progress(f"decoding {data.split}", len(paths)) if own else progress
    row = 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        for k, image in enumerate(pool.map(decode, paths)):
            if image is not None:
                images[row], readable[k] = image, True
                row += 1
    if own:
        progress.close()
    return readable
