"""Generated data sets for the "models you can trust" tests and benchmark (no downloads).

* ``textures``: 3 classes of procedural textures (stripes, dots, cells) at 160 px;
* ``symbols``: 10 classes of small drawn glyphs (including left/right arrows, which a horizontal
  flip swaps) rendered at 22 px and upscaled to 112 px, like small scanned symbols, or genuinely
  small files (``size=32``: drawn at 28 px, stored at 32 px);
* ``unrelated``: images that belong to neither: random crops of the sample photos with colour
  changes, portrait-like drawings and handwriting-like scribbles on paper.

Every generator takes a seed, so a test set drawn with another seed is held out.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

TEXTURES = ("stripes", "dots", "cells")
SYMBOLS = ("circle", "square", "triangle", "cross", "plus", "arrow_left", "arrow_right", "star", "bar", "ring")


def _colour(rng: random.Random, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    return tuple(rng.randint(lo, hi) for _ in range(3))


def texture(kind: str, rng: random.Random, size: int = 160) -> Image.Image:
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    a, b = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
    if kind == "stripes":
        theta = rng.uniform(0, math.pi)
        freq = rng.uniform(0.08, 0.35)
        wobble = rng.uniform(0, 3) * np.sin(yy * rng.uniform(0.02, 0.1))
        t = 0.5 + 0.5 * np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * freq + wobble)
    elif kind == "dots":
        t = np.zeros((size, size), np.float32)
        step = rng.randint(10, 28)
        r = rng.uniform(0.2, 0.42) * step
        jitter = rng.uniform(0, 0.3) * step
        for cy in range(0, size + step, step):
            for cx in range(0, size + step, step):
                jx, jy = nrng.normal(0, jitter + 1e-3, 2)
                t = np.maximum(t, ((xx - cx - jx) ** 2 + (yy - cy - jy) ** 2 < r * r).astype(np.float32))
    else:  # cells: Voronoi-like borders
        n = rng.randint(12, 45)
        pts = nrng.uniform(0, size, (n, 2))
        d = np.sqrt((xx[..., None] - pts[:, 0]) ** 2 + (yy[..., None] - pts[:, 1]) ** 2)
        d.sort(axis=-1)
        t = np.clip((d[..., 1] - d[..., 0]) / rng.uniform(3, 8), 0, 1)
    t = np.clip(t + nrng.normal(0, rng.uniform(0.02, 0.15), t.shape), 0, 1)
    img = a * t[..., None] + b * (1 - t[..., None])
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def symbol(kind: str, rng: random.Random, small: int = 22, size: int = 112) -> Image.Image:
    """A glyph drawn at ``small`` px (thin strokes, jitter, noise), upscaled to ``size``."""
    s = small * 4  # draw at 4x, then shrink: anti-aliased small glyphs
    paper = rng.randint(150, 255)
    ink = rng.randint(0, max(0, paper - 110))
    tint = _colour(rng, -25, 25)
    img = Image.new("L", (s, s), paper)
    d = ImageDraw.Draw(img)
    w = rng.randint(6, 14)
    c = s / 2 + rng.uniform(-0.12, 0.12) * s
    cy = s / 2 + rng.uniform(-0.12, 0.12) * s
    r = rng.uniform(0.22, 0.36) * s
    if kind == "circle":
        d.ellipse([c - r, cy - r, c + r, cy + r], fill=ink)
    elif kind == "ring":
        d.ellipse([c - r, cy - r, c + r, cy + r], outline=ink, width=w)
    elif kind == "square":
        d.rectangle([c - r, cy - r, c + r, cy + r], outline=ink, width=w)
    elif kind == "triangle":
        d.polygon([(c, cy - r), (c - r, cy + r), (c + r, cy + r)], outline=ink, width=w)
    elif kind == "cross":
        d.line([(c - r, cy - r), (c + r, cy + r)], fill=ink, width=w)
        d.line([(c - r, cy + r), (c + r, cy - r)], fill=ink, width=w)
    elif kind == "plus":
        d.line([(c - r, cy), (c + r, cy)], fill=ink, width=w)
        d.line([(c, cy - r), (c, cy + r)], fill=ink, width=w)
    elif kind in ("arrow_left", "arrow_right"):
        sgn = 1 if kind == "arrow_right" else -1
        d.line([(c - sgn * r, cy), (c + sgn * r, cy)], fill=ink, width=w)
        d.line([(c + sgn * r, cy), (c + sgn * r * 0.3, cy - r * 0.6)], fill=ink, width=w)
        d.line([(c + sgn * r, cy), (c + sgn * r * 0.3, cy + r * 0.6)], fill=ink, width=w)
    elif kind == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            ang = -math.pi / 2 + i * math.pi / 5
            pts.append((c + rad * math.cos(ang), cy + rad * math.sin(ang)))
        d.polygon(pts, fill=ink)
    elif kind == "bar":
        d.rectangle([c - r, cy - r * 0.25, c + r, cy + r * 0.25], fill=ink)
    img = img.rotate(rng.uniform(-12, 12), resample=Image.BILINEAR, fillcolor=paper)
    img = img.resize((small, small), Image.LANCZOS)
    arr = np.asarray(img, np.float32) + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 8, (small, small))
    rgb = np.stack([arr + t for t in tint], -1).clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgb).resize((size, size), Image.BILINEAR)


def photo_crop(photos: list[Image.Image], rng: random.Random, size: int = 160) -> Image.Image:
    img = rng.choice(photos)
    w, h = img.size
    side = int(min(w, h) * rng.uniform(0.3, 1.0))
    x, y = rng.randint(0, w - side), rng.randint(0, h - side)
    out = img.crop((x, y, x + side, y + side)).resize((size, size), Image.BILINEAR)
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    out = ImageEnhance.Color(out).enhance(rng.uniform(0.3, 1.5))
    return ImageEnhance.Brightness(out).enhance(rng.uniform(0.7, 1.3))


def portrait(rng: random.Random, size: int = 160) -> Image.Image:
    img = Image.new("RGB", (size, size), _colour(rng, 60, 230))
    d = ImageDraw.Draw(img)
    cx, cy = size / 2 + rng.uniform(-15, 15), size / 2 + rng.uniform(-5, 15)
    fw, fh = rng.uniform(35, 55), rng.uniform(45, 65)
    d.rectangle([cx - fw * 1.4, cy + fh * 0.8, cx + fw * 1.4, size], fill=_colour(rng))  # shoulders
    d.ellipse([cx - fw * 1.05, cy - fh * 1.15, cx + fw * 1.05, cy + fh * 0.3], fill=_colour(rng, 0, 120))  # hair
    skin = (rng.randint(120, 240), rng.randint(90, 200), rng.randint(60, 170))
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=skin)
    for sx in (-1, 1):
        ex = cx + sx * fw * 0.4
        d.ellipse([ex - 6, cy - fh * 0.2 - 4, ex + 6, cy - fh * 0.2 + 4], fill="white")
        d.ellipse([ex - 3, cy - fh * 0.2 - 3, ex + 3, cy - fh * 0.2 + 3], fill=_colour(rng, 0, 90))
    d.arc([cx - fw * 0.4, cy + fh * 0.2, cx + fw * 0.4, cy + fh * 0.6], 10, 170, fill=(120, 30, 30), width=3)
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.5)))


def handwriting(rng: random.Random, size: int = 160) -> Image.Image:
    paper = (rng.randint(215, 255), rng.randint(210, 250), rng.randint(190, 240))
    img = Image.new("RGB", (size, size), paper)
    d = ImageDraw.Draw(img)
    ink = rng.choice([(20, 20, 90), (10, 10, 10), (90, 20, 20)])
    y = rng.uniform(15, 30)
    while y < size - 10:
        x = rng.uniform(5, 20)
        if rng.random() < 0.5:
            d.line([(0, y + 8), (size, y + 8)], fill=(150, 170, 220), width=1)  # ruled paper
        while x < size - 15:
            pts = []
            for _ in range(rng.randint(4, 14)):
                pts.append((x, y + rng.uniform(-7, 7)))
                x += rng.uniform(2, 6)
            d.line(pts, fill=ink, width=rng.randint(1, 3), joint="curve")
            x += rng.uniform(5, 12)
        y += rng.uniform(18, 30)
    return img


def _photos() -> list[Image.Image]:
    from cnndesk.core.common.paths import sample_images
    from cnndesk.core.images.load import load_image

    return [load_image(p, min_side=320) for p in sample_images()]


def make_set(root: Path, kind: str, per_class: int, seed: int, size: int | None = None) -> Path:
    """Write ``per_class`` images of every class of ``kind`` ("textures" | "symbols") under root.
    ``size``: the symbols' file size (default 112 px, upscaled from 22 px); 32 gives genuinely small
    files (drawn at 28 px, like small scans or icons)."""
    rng = random.Random(f"{kind}-{seed}")
    classes = TEXTURES if kind == "textures" else SYMBOLS
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            if kind == "textures":
                img = texture(name, rng)
            elif size is not None and size < 64:
                img = symbol(name, rng, small=min(28, size), size=size)
            else:
                img = symbol(name, rng, size=size or 112)
            img.save(folder / f"{name}_{seed}_{i:04d}.png")
    return root


def make_unrelated(root: Path, n: int, seed: int = 99) -> list[str]:
    """``n`` unrelated images: a third photo crops, a third portraits, a third handwriting."""
    rng = random.Random(f"unrelated-{seed}")
    photos = _photos()
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        which = i % 3
        img = photo_crop(photos, rng) if which == 0 else portrait(rng) if which == 1 else handwriting(rng)
        p = root / f"unrelated_{which}_{i:04d}.jpg"
        img.save(p, quality=90)
        out.append(str(p))
    return out
