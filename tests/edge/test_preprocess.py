"""Pillow preprocessing: every image mode to RGB, EXIF orientation, draft decoding, clear errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from edge.preprocess import IMAGE_SUFFIXES, ImageError, image_files, list_images, load_image


def gradient(w=64, h=48) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.uint8)[:, None, None].repeat(w, 1)
    return Image.fromarray(np.concatenate([x, y, 255 - x], axis=2))


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "1"])
def test_modes_become_rgb(tmp_path, mode):
    image = gradient()
    if mode in ("I;16", "I"):
        image = Image.fromarray(np.asarray(image.convert("L"), np.uint16) * 257)  # 16-bit greyscale
        if mode == "I":
            image = image.convert("I")
    else:
        image = image.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I") else "x.png")
    image.save(path)
    out = load_image(path, (16, 20))
    assert out.shape == (16, 20, 3) and out.dtype == np.uint8
    if mode in ("I;16", "I", "L"):
        reference = load_image(_saved(gradient().convert("L"), tmp_path / "l.png"), (16, 20))
        assert np.abs(out.astype(int) - reference).max() <= 1  # 16 bits scaled to the same 8-bit picture


def _saved(image, path):
    image.save(path)
    return path


def test_exif_orientation_is_applied(tmp_path):
    image = gradient(60, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "o.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "o.jpg", (60, 30))
    upright = load_image(_saved(image.transpose(Image.Transpose.ROTATE_270), tmp_path / "u.png"), (60, 30))
    assert np.abs(out.astype(int) - upright).mean() < 8


def test_draft_mode_decodes_large_photos_close_to_full(tmp_path):
    big = gradient(1600, 1200)
    big.save(tmp_path / "big.jpg", quality=92)
    fast = load_image(tmp_path / "big.jpg", (100, 100))
    with Image.open(tmp_path / "big.jpg") as im:
        full = np.asarray(im.convert("RGB").resize((100, 100), Image.Resampling.BILINEAR))
    assert np.abs(fast.astype(int) - full).mean() < 3


def test_file_objects_work():
    buf = io.BytesIO()
    gradient().save(buf, format="JPEG")
    buf.seek(0)
    assert load_image(buf, (8, 8)).shape == (8, 8, 3)


def test_unreadable_image_names_the_file(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ImageError, match="bad.jpg: cannot read image"):
        load_image(tmp_path / "bad.jpg", (8, 8))
    gradient().save(tmp_path / "cut.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "cut.jpg").read_bytes()[:300])
    with pytest.raises(ImageError, match="cut.jpg"):
        load_image(tmp_path / "cut.jpg", (8, 8))


def test_image_files_lists_a_tree_as_sorted_paths_would(tmp_path):
    """Folders and files interleaved by name, suffixes in any case, no hidden suffix-only name, no
    symlinked folder: the order of ``sorted(Path.rglob(...))`` without holding Path objects."""
    for rel in ["a.jpg", "a/b.jpg", "a-b/c.PNG", "notes.txt", ".jpg", "b/c/d.jpeg", "a0.jpg", "A.jpg"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "a", target_is_directory=True)
    expected = sorted(p for p in tmp_path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    assert [str(p) for p in expected] == list(image_files(tmp_path))
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == [
        "A.jpg", "a/b.jpg", "a-b/c.PNG", "a.jpg", "a0.jpg", "b/c/d.jpeg"]
