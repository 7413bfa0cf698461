"""A split decoded into memory, once per run: images as uint8 at the model's size (VOC 2007 at 100x100
is 150 MB), labels and the loss mask, and for distillation the teacher's fixed views. Decoding uses the
edge's own preprocessing, so training sees exactly the pixels a device will."""

from __future__ import annotations

import logging
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


@dataclass
class SplitArrays:
    ids: list[str]
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N, C) float32 in {0, 1}
    mask: np.ndarray  # (N, C) float32: 0 where the label is left out of the loss
    views: Views | None = None  # fixed augmented views (and a teacher's logits on them)
    source: str | None = None  # what the images were decoded from and how (a cache of maps of them keys on it)

    def concat(self, other: SplitArrays) -> SplitArrays:
        """Both as one set (without views: a teacher scores the whole set afterwards)."""
        return SplitArrays(self.ids + other.ids, np.concatenate([self.images, other.images]),
                           np.concatenate([self.labels, other.labels]), np.concatenate([self.mask, other.mask]),
                           source=digest(self.source, other.source))


def load_arrays(data: Split, size: int, *, difficult: str = "ignore", on_bad_image: str = "error",
                resize: str = "bilinear", limit: int | None = None, store: Store | None = None) -> SplitArrays:
    """Decode a split's images (threads: Pillow releases the GIL while decoding). With ``store`` they
    stream: decoded once into a memory-mapped file of the run's cache, reused while the photos, the
    size and the resize are the same (toolkit/data/store.py)."""
    if on_bad_image not in ("error", "skip"):
        raise UserError(f"--on-bad-image must be error or skip, not {on_bad_image!r}")
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
    return SplitArrays(ids=[ids[k] for k in keep], images=images[:n], labels=y[keep], mask=mask[keep], source=key)


def _decode(data: Split, paths: list[str], images: np.ndarray, on_bad_image: str, resize: str) -> np.ndarray:
    """Fill ``images`` with the readable photos in order, packed from row 0 (a view of the first rows
    is the split without the unreadable ones, and nothing is copied); returns which were readable."""
    size = images.shape[1]

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
    progress = Progress(f"decoding {data.split}", len(paths))
    row = 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        for k, image in enumerate(pool.map(decode, paths)):
            if image is not None:
                images[row], readable[k] = image, True
                row += 1
    progress.close()
    return readable
