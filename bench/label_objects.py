"""A harder labelling family for bench/label_data.py: ``objects`` — photo-like colour scenes of
one shaded object each, **fine-grained** classes (the same three bodies, told apart only by their
surface pattern or a small detail) and **imbalanced** class sizes (240 down to 15 images), on
varied backgrounds (smooth colour fields, gradients, blurred clutter, sensor noise). Random picks
miss the rare classes and confuse the look-alikes, so they do not saturate at 50-200 labels the
way shapes and textures do. Generated with numpy and Pillow; nothing is downloaded.
"""

from __future__ import annotations

import colorsys
import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# body x detail: ball / box / bottle, each plain, striped, spotted; plus a ball with a cap (a small
# top detail) and a box with a handle. Sizes: a long tail, the rare classes last.
CLASSES = ("ball_plain", "box_plain", "bottle_plain", "ball_striped", "box_striped", "bottle_striped",
           "ball_spotted", "box_spotted", "ball_capped", "box_handle")
SIZES = (240, 170, 120, 90, 65, 50, 38, 28, 20, 15)  # 836 images
SIZE = 112


def _background(rng: random.Random, nrng: np.random.Generator) -> np.ndarray:
    """A smooth colour field (blurred low-resolution noise) or a two-colour gradient, with blurred
    clutter shapes and grain: like an out-of-focus photo background."""
    s = SIZE
    if rng.random() < 0.5:
        small = nrng.uniform(0, 255, (4, 4, 3)).astype(np.uint8)
        bg = np.asarray(Image.fromarray(small).resize((s, s), Image.BICUBIC), np.float32)
    else:
        a = np.array([rng.randint(0, 255) for _ in range(3)], np.float32)
        b = np.array([rng.randint(0, 255) for _ in range(3)], np.float32)
        th = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
        t = np.clip(0.5 + (xx - 0.5) * math.cos(th) + (yy - 0.5) * math.sin(th), 0, 1)[..., None]
        bg = a * t + b * (1 - t)
    img = Image.fromarray(bg.clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 7)):
        x, y, r = rng.randint(0, s), rng.randint(0, s), rng.randint(4, 22)
        col = tuple(rng.randint(0, 255) for _ in range(3))
        if rng.random() < 0.5:
            d.ellipse([x - r, y - r, x + r, y + r], fill=col)
        else:
            d.rectangle([x - r, y - r // 2, x + r, y + r // 2], fill=col)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(2.0, 5.0)))
    return np.asarray(img, np.float32)


def _mask(body: str, cx: float, cy: float, r: float, yy, xx) -> np.ndarray:
    if body == "ball":
        return ((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r
    if body == "box":
        return (np.abs(xx - cx) <= r * 0.9) & (np.abs(yy - cy) <= r * 0.75)
    # bottle: a tall body and a neck
    body_m = (np.abs(xx - cx) <= r * 0.5) & (yy >= cy - r * 0.4) & (yy <= cy + r)
    neck = (np.abs(xx - cx) <= r * 0.2) & (yy >= cy - r) & (yy < cy - r * 0.4)
    return body_m | neck


def objects_image(kind: str, rng: random.Random) -> Image.Image:
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    body, detail = kind.split("_")
    s = SIZE
    img = _background(rng, nrng)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    r = rng.uniform(s * 0.2, s * 0.32)
    cx, cy = rng.uniform(r + 4, s - r - 4), rng.uniform(r + 4, s - r - 4)
    m = _mask(body, cx, cy, r, yy, xx)
    h = rng.random()
    base = np.array(colorsys.hsv_to_rgb(h, rng.uniform(0.4, 1.0), rng.uniform(0.5, 1.0)), np.float32) * 255
    other = np.array(colorsys.hsv_to_rgb((h + rng.uniform(0.3, 0.7)) % 1, rng.uniform(0.3, 1.0),
                                         rng.uniform(0.2, 1.0)), np.float32) * 255
    # shading: light from a random side
    lx, ly = math.cos(rng.uniform(0, 2 * math.pi)), math.sin(rng.uniform(0, 2 * math.pi))
    shade = np.clip(1.0 - 0.45 * (((xx - cx) * lx + (yy - cy) * ly) / r), 0.45, 1.35)[..., None]
    colour = np.broadcast_to(base, (s, s, 3)).copy()
    if detail == "striped":
        th = rng.uniform(0, math.pi)
        f = rng.uniform(0.35, 0.6)
        stripe = np.sin(((xx - cx) * math.cos(th) + (yy - cy) * math.sin(th)) * f) > 0.2
        colour[stripe] = other
    elif detail == "spotted":
        spots = np.zeros((s, s), bool)
        for _ in range(rng.randint(5, 10)):
            sx, sy = cx + rng.uniform(-r, r), cy + rng.uniform(-r, r)
            sr = rng.uniform(r * 0.1, r * 0.2)
            spots |= ((xx - sx) ** 2 + (yy - sy) ** 2) <= sr * sr
        colour[spots] = other
    img[m] = (colour * shade)[m].clip(0, 255)
    pil = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(pil)
    col = tuple(int(v) for v in other)
    if detail == "capped":  # a small cap on top of the ball
        d.rectangle([cx - r * 0.25, cy - r - r * 0.3, cx + r * 0.25, cy - r * 0.85], fill=col)
    elif detail == "handle":  # a handle arc above the box
        d.arc([cx - r * 0.5, cy - r * 1.25, cx + r * 0.5, cy - r * 0.35], 180, 360, fill=col, width=max(2, int(r * 0.12)))
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.8)))
    arr = np.asarray(pil, np.float32) + nrng.normal(0, rng.uniform(2, 9), (s, s, 3))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))
