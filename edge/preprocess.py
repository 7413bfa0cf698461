"""Image inputs: find image files, and Pillow decode -> the uint8 RGB array a bundle expects. Training
uses this very function, so the pixels a model sees on a device are the pixels it was trained on (no
train/serve skew)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

RESIZE_METHODS = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "area": Image.Resampling.BOX,
}


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class ImageError(Exception):
    """An image that cannot be decoded: one line naming the file."""


def image_files(folder: str | Path) -> Iterator[str]:
    """Image files under ``folder`` (recursively, by suffix) as strings, in ``list_images``'s order:
    a folder of 100,000 photos is 10 MB of names (as ``Path`` objects it would be 60 MB)."""
    try:
        with os.scandir(folder) as found:
            entries = sorted(found, key=lambda e: e.name)
    except PermissionError:  # an unreadable subfolder is passed over, as Path.rglob does
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from image_files(entry.path)
        elif os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES and entry.is_file():
            yield entry.path


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, by suffix), sorted."""
    return [Path(p) for p in image_files(folder)]


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode (L, LA, P, RGBA, CMYK, I;16, I, F) to 8-bit RGB."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":  # 16/32-bit greyscale: scale to 8 bits
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array * (255.0 / top), 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")


def mirror(pixels: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) photos flipped left to right: the second view of a test-time flip. Contiguous,
    because an interpreter's input copy wants a plain buffer."""
    return np.ascontiguousarray(pixels[:, :, ::-1])


def prepare(image: Image.Image, size: tuple[int, int], resize: str = "bilinear") -> np.ndarray:
    """A decoded image (a photo, or a video frame) to the (H, W, 3) uint8 array of ``size``."""
    height, width = size
    image = to_rgb(image)
    if image.size != (width, height):
        image = image.resize((width, height), RESIZE_METHODS[resize])
    return np.asarray(image, dtype=np.uint8)


def load_image(source: str | Path | BinaryIO, size: tuple[int, int], resize: str = "bilinear") -> np.ndarray:
    """Decode, apply EXIF orientation, convert to RGB and resize to ``size`` = (height, width).

    JPEG draft mode lets libjpeg decode a large photo at 1/2, 1/4 or 1/8 scale (never below ``size``),
    which is several times faster on a board and changes the result only below the resize's own blur.
    """
    height, width = size
    try:
        with Image.open(source) as image:
            image.draft("RGB", (width, height))
            return prepare(ImageOps.exif_transpose(image), size, resize)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageError(f"{source}: cannot read image ({err})") from None
