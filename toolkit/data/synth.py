"""A synthetic dataset in VOC layout whose label statistics follow VOC 2007.

Each class is a distinct pattern (shape x colour x texture) drawn at random positions and scales over
varied, noisy backgrounds with grey distractors, so a small CNN has something real to learn while
rare classes stay rare and classes co-occur as in VOC (person+bicycle, chair+diningtable, cat+sofa).
Everything derives from the seed: the same seed gives the same files.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from toolkit.atomic import replace_dir, staging
from toolkit.data.voc import VOC_CLASSES
from toolkit.errors import UserError
from toolkit.outputs import check_output_folder, mark

# Images containing each class in VOC 2007 trainval (5,011 images): the sampling weights.
VOC_IMAGE_COUNTS = dict(zip(VOC_CLASSES, (
    238, 243, 330, 181, 244, 186, 713, 337, 445, 141, 200, 421, 287, 245, 2008, 245, 96, 229, 261, 256,
)))  # fmt: skip

# (given class) -> [(companion, probability)]: VOC's frequent co-occurrences.
COMPANIONS: dict[str, list[tuple[str, float]]] = {
    "bicycle": [("car", 0.15)],
    "motorbike": [("car", 0.2)],
    "bus": [("car", 0.45)],
    "car": [("bus", 0.05), ("motorbike", 0.04)],
    "diningtable": [("chair", 0.75), ("bottle", 0.25), ("pottedplant", 0.1)],
    "chair": [("diningtable", 0.3), ("sofa", 0.12), ("tvmonitor", 0.12)],
    "sofa": [("chair", 0.35), ("cat", 0.12), ("dog", 0.1), ("tvmonitor", 0.1)],
    "cat": [("sofa", 0.2), ("chair", 0.05)],
    "dog": [("sofa", 0.08), ("car", 0.04)],
    "tvmonitor": [("chair", 0.35), ("sofa", 0.1)],
    "pottedplant": [("chair", 0.2), ("sofa", 0.1)],
    "cow": [("sheep", 0.08), ("horse", 0.05)],
    "sheep": [("cow", 0.1)],
    "horse": [("cow", 0.04)],
    "boat": [("bird", 0.05)],
}
PERSON_WITH = {"bicycle": 0.7, "motorbike": 0.7, "horse": 0.5, "boat": 0.3, "bottle": 0.35, "chair": 0.3,
               "diningtable": 0.4, "car": 0.2, "bus": 0.2, "sofa": 0.3, "tvmonitor": 0.25, "train": 0.1}
PERSON_OTHERWISE = 0.07
NO_PRIMARY = 0.2  # images holding only people
MAX_LABELS = 4

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring", "star", "hexagon")
COLOURS = ((220, 30, 30), (30, 170, 40), (30, 60, 220), (240, 220, 20),
           (210, 40, 200), (20, 200, 210), (250, 130, 10), (245, 245, 245))  # fmt: skip
TEXTURES = ("solid", "stripes", "dots", "checker")


def class_pattern(k: int) -> tuple[str, tuple[int, int, int], str]:
    """Class k's (shape, colour, texture): shape/colour pairs are unique over 24 classes."""
    block = k // len(SHAPES)
    shape = SHAPES[k % len(SHAPES)]
    colour = COLOURS[(k + 3 * block) % len(COLOURS)]
    texture = TEXTURES[(k + block) % len(TEXTURES)]
    return shape, colour, texture


def sample_labels(rng: np.random.Generator) -> list[str]:
    """One image's label set, following VOC's marginals and co-occurrences."""
    others = [c for c in VOC_CLASSES if c != "person"]
    weights = np.array([VOC_IMAGE_COUNTS[c] for c in others], dtype=float)
    labels: list[str] = []
    if rng.random() >= NO_PRIMARY:
        primary = others[rng.choice(len(others), p=weights / weights.sum())]
        labels.append(primary)
        for companion, p in COMPANIONS.get(primary, []):
            if rng.random() < p and companion not in labels:
                labels.append(companion)
        if rng.random() < max(PERSON_WITH.get(c, PERSON_OTHERWISE) for c in labels):
            labels.append("person")
    else:
        labels.append("person")
    return labels[:MAX_LABELS]


def _shape_polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    def ring(n: int, radius: float, offset: float = 0.0) -> list[tuple[float, float]]:
        return [(cx + radius * math.cos(angle + offset + 2 * math.pi * i / n),
                 cy + radius * math.sin(angle + offset + 2 * math.pi * i / n)) for i in range(n)]

    if shape == "triangle":
        return ring(3, r)
    if shape == "square":
        return ring(4, r, math.pi / 4)
    if shape == "diamond":
        return [(cx, cy - r), (cx + 0.6 * r, cy), (cx, cy + r), (cx - 0.6 * r, cy)]
    if shape == "hexagon":
        return ring(6, r)
    if shape == "star":
        outer, inner = ring(5, r), ring(5, 0.42 * r, math.pi / 5)
        return [p for pair in zip(outer, inner) for p in pair]
    if shape == "cross":
        a = 0.33 * r
        return [(cx - a, cy - r), (cx + a, cy - r), (cx + a, cy - a), (cx + r, cy - a), (cx + r, cy + a),
                (cx + a, cy + a), (cx + a, cy + r), (cx - a, cy + r), (cx - a, cy + a), (cx - r, cy + a),
                (cx - r, cy - a), (cx - a, cy - a)]
    raise ValueError(shape)


def _texture(size: int, colour: tuple[int, int, int], texture: str, rng: np.random.Generator) -> Image.Image:
    base = np.array(colour, dtype=np.float32)
    dark = base * 0.35
    yy, xx = np.mgrid[0:size, 0:size]
    period = max(3, size // 6)
    if texture == "stripes":
        on = ((xx + yy) // period) % 2 == 0
    elif texture == "dots":
        on = ~(((xx % period) - period / 2) ** 2 + ((yy % period) - period / 2) ** 2 < (period / 3) ** 2)
    elif texture == "checker":
        on = ((xx // period) + (yy // period)) % 2 == 0
    else:
        on = np.ones((size, size), bool)
    pixels = np.where(on[..., None], base, dark) * rng.uniform(0.85, 1.1)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _background(size: int, rng: np.random.Generator) -> Image.Image:
    a, b = rng.uniform(50, 170, 3), rng.uniform(50, 170, 3)
    t = np.linspace(0, 1, size)[:, None, None]
    grad = a * (1 - t) + b * t
    if rng.random() < 0.5:
        grad = grad.transpose(1, 0, 2)
    img = np.broadcast_to(grad, (size, size, 3)) + rng.normal(0, 12, (size, size, 3))
    image = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 6)):  # grey distractors: outlines that are no class
        x, y, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(0.05, 0.2) * size]
        grey = int(rng.uniform(60, 200))
        draw.ellipse([x - r, y - r, x + r, y + r], outline=(grey, grey, grey), width=max(1, size // 64))
    return image


def _draw_object(image: Image.Image, k: int, scale: float, rng: np.random.Generator) -> tuple[int, ...]:
    size = image.width
    shape, colour, texture = class_pattern(k)
    r = scale * size / 2
    cx, cy = rng.uniform(r * 0.6, size - r * 0.6, 2)
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    box = [cx - r, cy - r, cx + r, cy + r]
    if shape == "circle":
        draw.ellipse(box, fill=255)
    elif shape == "ring":
        draw.ellipse(box, fill=255)
        draw.ellipse([cx - 0.55 * r, cy - 0.55 * r, cx + 0.55 * r, cy + 0.55 * r], fill=0)
    else:
        draw.polygon(_shape_polygon(shape, cx, cy, r, rng.uniform(-0.3, 0.3)), fill=255)
    image.paste(_texture(size, colour, texture, rng), (0, 0), mask)
    x0, y0 = max(0, int(cx - r)), max(0, int(cy - r))
    return x0, y0, min(size - 1, int(cx + r)), min(size - 1, int(cy + r))


def render_image(rng: np.random.Generator, size: int, labels: list[str]) -> tuple[Image.Image, list]:
    """Draw one image; returns it and its objects as (class, difficult, box)."""
    image = _background(size, rng)
    objects = []
    for name in labels:
        k = VOC_CLASSES.index(name)
        n = 1 + int(rng.random() < (0.4 if name == "person" else 0.15))
        for _ in range(n):
            difficult = rng.random() < 0.04  # tiny instances: VOC's "difficult"
            scale = rng.uniform(0.1, 0.14) if difficult else rng.uniform(0.22, 0.5)
            objects.append((name, difficult, _draw_object(image, k, scale, rng)))
    return image, objects


def _annotation_xml(image_id: str, size: int, objects: list) -> str:
    parts = [f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>",
             f"<size><width>{size}</width><height>{size}</height><depth>3</depth></size>"]
    for name, difficult, (x0, y0, x1, y1) in objects:
        parts.append(f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
                     f"<difficult>{int(difficult)}</difficult><bndbox><xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin>"
                     f"<xmax>{x1 + 1}</xmax><ymax>{y1 + 1}</ymax></bndbox></object>")
    parts.append("</annotation>\n")
    return "\n".join(parts)


SPLIT_FRACTIONS = {"train": 0.5, "val": 0.25, "test": 0.25}


def make_synthetic_voc(out: str | Path, images: int = 1000, size: int = 128, seed: int = 0,
                       force: bool = False) -> Path:
    """Write ``out/VOC2007/{JPEGImages,Annotations,ImageSets/Main}``; returns the VOC2007 folder.

    Written into a temporary folder beside ``out`` and renamed at the end, so an interrupted run leaves
    nothing half-written; only an earlier dataset of ours is replaced, and only with ``force``.
    """
    out = Path(out)
    if images < 8:
        raise UserError(f"--images must be at least 8, not {images}")
    if size < 16:
        raise UserError(f"--size must be at least 16, not {size}")
    check_output_folder(out, "dataset", force)
    with staging(out) as tmp:
        _write_voc(tmp / "VOC2007", images, size, seed)
        mark(tmp, "dataset")
        replace_dir(tmp, out)
    return out / "VOC2007"


def _write_voc(voc: Path, images: int, size: int, seed: int) -> None:
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)

    ids = [f"{i + 1:06d}" for i in range(images)]
    raw = np.full((images, len(VOC_CLASSES)), -1, dtype=np.int8)
    for i, image_id in enumerate(ids):
        rng = np.random.default_rng([seed, i])
        image, objects = render_image(rng, size, sample_labels(rng))
        image.save(voc / "JPEGImages" / f"{image_id}.jpg", quality=90)
        (voc / "Annotations" / f"{image_id}.xml").write_text(_annotation_xml(image_id, size, objects))
        for name, difficult, _ in objects:
            k = VOC_CLASSES.index(name)
            raw[i, k] = 1 if not difficult else max(raw[i, k], 0)

    order = np.random.default_rng([seed, images, 1]).permutation(images)
    cut1 = int(images * SPLIT_FRACTIONS["train"])
    cut2 = cut1 + int(images * SPLIT_FRACTIONS["val"])
    members = {"train": sorted(order[:cut1]), "val": sorted(order[cut1:cut2]), "test": sorted(order[cut2:])}
    members["trainval"] = sorted(order[:cut2])
    main = voc / "ImageSets" / "Main"
    for split, rows in members.items():
        (main / f"{split}.txt").write_text("".join(f"{ids[r]}\n" for r in rows))
        for k, name in enumerate(VOC_CLASSES):
            (main / f"{name}_{split}.txt").write_text("".join(f"{ids[r]} {raw[r, k]:2d}\n" for r in rows))

