"""A generated dataset: three classes of rendered shapes (circle, square, triangle) with random
colours, sizes, positions and noisy backgrounds."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")


def draw(kind: str, rng: random.Random, size: int = 96) -> Image.Image:
    bg = tuple(rng.randint(0, 255) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    for _ in range(6):  # background clutter
        x, y = rng.randint(0, size), rng.randint(0, size)
        d.line([(x, y), (x + rng.randint(-20, 20), y + rng.randint(-20, 20))],
               fill=tuple(rng.randint(0, 255) for _ in range(3)), width=1)
    fg = tuple((c + rng.randint(90, 165)) % 256 for c in bg)
    r = rng.randint(size // 5, size // 3)
    cx, cy = rng.randint(r, size - r), rng.randint(r, size - r)
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif kind == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    return img


def make_dataset(root: Path, per_class=(40, 40, 40), seed: int = 0, size: int = 96) -> Path:
    rng = random.Random(seed)
    for kind, n in zip(CLASSES, per_class, strict=True):
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            draw(kind, rng, size).save(folder / f"{kind}_{i:03d}.jpg", quality=90)
    return root
