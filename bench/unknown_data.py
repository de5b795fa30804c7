"""Generated data for the unknown-detection benchmark (bench_unknown.py); no downloads.

User data sets (what a user trains on), each drawn with a seed so a test set is held out:

* ``digits``: 10 classes of small grey hand-stroked digits (drawn at 28 px, stored at 64 px);
* ``textures``: 3 classes of procedural textures (tests/core/trust_data.py), stored at 96 px;
* ``objects``: 4 classes of shaded colour objects (ball, box, cup, flower) on plain/gradient
  backgrounds, 96 px.

Unrelated families, each in two *looks*: "tune" (used while choosing the detector) and "report"
(other source photos, other alphabets, other texture kinds, other blur/noise; only for the
numbers in docs/benchmarks.md), so the reported rates are not tuned to the images they measure:

* ``grey_patches``: small grey blurred natural patches (crops of the sample photos, grey,
  blurred, 100 px) — the "same look, different content" case for small grey glyph models;
* ``other_glyphs``: grey glyphs of other alphabets (Greek / Cyrillic, Hebrew, Armenian...) drawn
  with a font, small and grey like the digits;
* ``colour_photos``: colour crops of the sample photos;
* ``textures``: procedural textures of other kinds (checks, marble / wood, weave, bricks);
* ``noise``: noise and gradients.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "core"))
import trust_data  # noqa: E402

FAMILIES = ("grey_patches", "other_glyphs", "colour_photos", "textures", "noise")
KINDS = ("digits", "textures", "objects")

# stroke digits on a unit square (polylines)
_DIGITS = {
    "0": [[(0.5, 0.05), (0.8, 0.2), (0.85, 0.5), (0.8, 0.8), (0.5, 0.95), (0.2, 0.8), (0.15, 0.5), (0.2, 0.2), (0.5, 0.05)]],
    "1": [[(0.35, 0.2), (0.55, 0.05), (0.55, 0.95)]],
    "2": [[(0.2, 0.25), (0.4, 0.07), (0.7, 0.1), (0.78, 0.35), (0.2, 0.92), (0.85, 0.92)]],
    "3": [[(0.2, 0.12), (0.75, 0.12), (0.45, 0.45), (0.8, 0.65), (0.6, 0.93), (0.2, 0.85)]],
    "4": [[(0.65, 0.95), (0.65, 0.05), (0.15, 0.65), (0.88, 0.65)]],
    "5": [[(0.8, 0.07), (0.25, 0.07), (0.2, 0.45), (0.65, 0.42), (0.82, 0.7), (0.55, 0.94), (0.2, 0.86)]],
    "6": [[(0.72, 0.08), (0.3, 0.4), (0.2, 0.75), (0.45, 0.95), (0.75, 0.8), (0.7, 0.55), (0.4, 0.52), (0.22, 0.7)]],
    "7": [[(0.15, 0.08), (0.85, 0.08), (0.4, 0.95)]],
    "8": [[(0.5, 0.5), (0.2, 0.28), (0.5, 0.06), (0.8, 0.28), (0.5, 0.5), (0.18, 0.74), (0.5, 0.95), (0.82, 0.74), (0.5, 0.5)]],
    "9": [[(0.78, 0.3), (0.55, 0.48), (0.25, 0.35), (0.35, 0.08), (0.7, 0.1), (0.78, 0.3), (0.6, 0.95)]],
}
OBJECTS = ("ball", "box", "cup", "flower")
ALPHABETS = {"tune": "αβγδεζηθλμξπσφψωΓΔΘΛΞΠΣΦΨΩ",
             "report": "бвгджзийлфцчшщъыэюяБГДЖЗЛПФЦЧШЩЭЮЯאבגדהוזחטכלמנסעפצקרשתԱԲԳԴԵԶԷԹԺԻԼԽԾԿՀՁՂՃՄ"}


def _font(size: int):
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _small_grey(img: Image.Image, rng: random.Random, small: int, size: int) -> Image.Image:
    img = img.resize((small, small), Image.LANCZOS)
    arr = np.asarray(img, np.float32) + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 6, (small, small))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8)).convert("RGB").resize((size, size), Image.BILINEAR)


def digit(name: str, rng: random.Random, small: int = 28, size: int = 64) -> Image.Image:
    s = small * 4
    paper = rng.randint(170, 255)
    ink = rng.randint(0, max(0, paper - 120))
    img = Image.new("L", (s, s), paper)
    d = ImageDraw.Draw(img)
    sx, sy = rng.uniform(0.5, 0.7) * s, rng.uniform(0.6, 0.78) * s
    ox, oy = (s - sx) / 2 + rng.uniform(-0.06, 0.06) * s, (s - sy) / 2 + rng.uniform(-0.06, 0.06) * s
    slant = rng.uniform(-0.25, 0.25)
    for line in _DIGITS[name]:
        pts = [(ox + (x + slant * (0.5 - y)) * sx + rng.uniform(-3, 3), oy + y * sy + rng.uniform(-3, 3)) for x, y in line]
        d.line(pts, fill=ink, width=rng.randint(7, 14), joint="curve")
    img = img.rotate(rng.uniform(-10, 10), resample=Image.BILINEAR, fillcolor=paper)
    return _small_grey(img, rng, small, size)


def colour_object(name: str, rng: random.Random, size: int = 96) -> Image.Image:
    s = size * 2
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    a, b = np.array(trust_data._colour(rng, 40, 250), np.float32), np.array(trust_data._colour(rng, 40, 250), np.float32)
    t = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) % 1.0
    bg = a * t[..., None] + b * (1 - t[..., None]) + nrng.normal(0, 4, (s, s, 1))
    img = Image.fromarray(bg.clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    col = np.array(trust_data._colour(rng, 30, 255))
    dark, light = tuple((col * 0.55).astype(int)), tuple(np.minimum(col * 1.3 + 30, 255).astype(int))
    cx, cy, r = s / 2 + rng.uniform(-0.1, 0.1) * s, s / 2 + rng.uniform(-0.1, 0.1) * s, rng.uniform(0.22, 0.34) * s
    if name == "ball":
        for i in range(12, 0, -1):  # shading: concentric discs towards the highlight
            k = i / 12
            c = tuple(int(v) for v in (np.array(dark) * k + np.array(light) * (1 - k)))
            off = (1 - k) * r * 0.35
            d.ellipse([cx - r * k - off, cy - r * k - off, cx + r * k - off, cy + r * k - off], fill=c)
    elif name == "box":
        dx, dy = r * 0.5, -r * 0.4
        d.polygon([(cx - r, cy - r), (cx + r * 0.6, cy - r), (cx + r * 0.6 + dx, cy - r + dy), (cx - r + dx, cy - r + dy)], fill=light)
        d.polygon([(cx + r * 0.6, cy - r), (cx + r * 0.6 + dx, cy - r + dy), (cx + r * 0.6 + dx, cy + r + dy), (cx + r * 0.6, cy + r)], fill=dark)
        d.rectangle([cx - r, cy - r, cx + r * 0.6, cy + r], fill=tuple(int(v) for v in col))
    elif name == "cup":
        d.rectangle([cx - r * 0.7, cy - r * 0.8, cx + r * 0.5, cy + r], fill=tuple(int(v) for v in col))
        d.ellipse([cx - r * 0.7, cy - r, cx + r * 0.5, cy - r * 0.6], fill=dark)
        d.arc([cx + r * 0.2, cy - r * 0.5, cx + r * 1.0, cy + r * 0.5], -90, 90, fill=tuple(int(v) for v in col), width=max(3, int(r * 0.15)))
    else:  # flower: petals around a centre, a stem
        d.line([(cx, cy), (cx + rng.uniform(-10, 10), s)], fill=(40, 120, 40), width=max(3, int(r * 0.12)))
        n = rng.randint(5, 9)
        for i in range(n):
            ang = 2 * math.pi * i / n
            px, py = cx + math.cos(ang) * r * 0.6, cy + math.sin(ang) * r * 0.6
            d.ellipse([px - r * 0.38, py - r * 0.38, px + r * 0.38, py + r * 0.38], fill=tuple(int(v) for v in col))
        d.ellipse([cx - r * 0.3, cy - r * 0.3, cx + r * 0.3, cy + r * 0.3], fill=(230, 200, 40))
    return img.resize((size, size), Image.LANCZOS).filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))


def make_user_set(root: Path, kind: str, per_class: int, seed: int) -> Path:
    if kind in EXTRA_KINDS:
        return _extra_user_set(root, kind, per_class, seed)
    rng = random.Random(f"user-{kind}-{seed}")
    classes = list(_DIGITS) if kind == "digits" else trust_data.TEXTURES if kind == "textures" else OBJECTS
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            if kind == "digits":
                img = digit(name, rng)
            elif kind == "textures":
                img = trust_data.texture(name, rng).resize((96, 96), Image.BILINEAR)
            else:
                img = colour_object(name, rng)
            img.save(folder / f"{name}_{seed}_{i:04d}.png")
    return root


# Held-out user kinds added after the detector was chosen (2026-12-07, late; not in the default run):
# the labelling bench's small grey symbols (tests/core/trust_data: 22 px drawings upscaled, the
# issue's "small grey symbols") and coloured shapes on cluttered backgrounds (bench/label_data).
EXTRA_KINDS = ("symbols", "shapes")


def _extra_user_set(root: Path, kind: str, per_class: int, seed: int) -> Path:
    import label_data  # imports this module: loaded here, not at the top

    rng = random.Random(f"user-{kind}-{seed}")
    classes = trust_data.SYMBOLS if kind == "symbols" else label_data.SHAPES
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = trust_data.symbol(name, rng) if kind == "symbols" else label_data.shape(name, rng)
            img.save(folder / f"{name}_{seed}_{i:04d}.png")
    return root


# -- unrelated families ---------------------------------------------------------------------------


def _photos(look: str) -> list[Image.Image]:
    from cnndesk.core.common.paths import sample_images
    from cnndesk.core.images.load import load_image

    paths = sorted(str(p) for p in sample_images())
    paths = paths[:3] if look == "tune" else paths[3:]  # different source photos per look
    return [load_image(p, min_side=400) for p in paths]


def _crop(photos, rng: random.Random, lo: float, hi: float) -> Image.Image:
    img = rng.choice(photos)
    w, h = img.size
    side = int(min(w, h) * rng.uniform(lo, hi))
    x, y = rng.randint(0, w - side), rng.randint(0, h - side)
    out = img.crop((x, y, x + side, y + side))
    return out.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else out


def grey_patch(photos, rng: random.Random, look: str) -> Image.Image:
    out = ImageOps.grayscale(_crop(photos, rng, 0.15, 0.5))
    blur = rng.uniform(1.0, 2.0) if look == "tune" else rng.uniform(1.5, 3.0)
    small = rng.randint(24, 40)
    out = out.resize((small, small), Image.BILINEAR).filter(ImageFilter.GaussianBlur(blur * small / 100))
    return ImageOps.autocontrast(out, cutoff=rng.uniform(0, 3)).convert("RGB").resize((100, 100), Image.BILINEAR)


def other_glyph(rng: random.Random, look: str) -> Image.Image:
    s = 112
    paper = rng.randint(170, 255)
    ink = rng.randint(0, max(0, paper - 120))
    img = Image.new("L", (s, s), paper)
    d = ImageDraw.Draw(img)
    ch = rng.choice(ALPHABETS[look])
    font = _font(rng.randint(60, 85))
    d.text((s / 2 + rng.uniform(-6, 6), s / 2 + rng.uniform(-6, 6)), ch, fill=ink, font=font, anchor="mm")
    img = img.rotate(rng.uniform(-10, 10), resample=Image.BILINEAR, fillcolor=paper)
    return _small_grey(img, rng, 28, 64)


def colour_photo(photos, rng: random.Random, look: str) -> Image.Image:
    size = 160 if look == "tune" else 128
    return _crop(photos, rng, 0.3, 1.0).resize((size, size), Image.BILINEAR)


def other_texture(rng: random.Random, look: str, size: int = 128) -> Image.Image:
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    a, b = np.array(trust_data._colour(rng), np.float32), np.array(trust_data._colour(rng), np.float32)
    kind = rng.choice(("checks", "marble") if look == "tune" else ("wood", "weave", "bricks"))
    if kind == "checks":
        p = rng.randint(8, 30)
        t = (((xx // p) + (yy // p)) % 2).astype(np.float32)
    elif kind == "marble":
        n = _smooth_noise(nrng, size, rng.uniform(4, 12))
        t = 0.5 + 0.5 * np.sin(xx * rng.uniform(0.03, 0.1) + 8 * n)
    elif kind == "wood":
        cx, cy = nrng.uniform(-size, 2 * size, 2)
        n = _smooth_noise(nrng, size, 10)
        t = 0.5 + 0.5 * np.sin(np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) * rng.uniform(0.2, 0.5) + 4 * n)
    elif kind == "weave":
        p = rng.randint(6, 16)
        h = 0.5 + 0.5 * np.sin(xx * 2 * math.pi / p)
        v = 0.5 + 0.5 * np.sin(yy * 2 * math.pi / p)
        t = np.where(((xx // p + yy // p) % 2) == 0, h, v)
    else:  # bricks
        bh, bw = rng.randint(8, 20), rng.randint(20, 44)
        row = yy // bh
        off = (row % 2) * bw / 2
        t = (((yy % bh) < 2) | (((xx + off) % bw) < 2)).astype(np.float32)
    t = np.clip(t + nrng.normal(0, 0.05, t.shape), 0, 1)
    img = a * t[..., None] + b * (1 - t[..., None])
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def tune2_texture(rng: random.Random, size: int = 128) -> Image.Image:
    """The "tune2" look's other textures (issue 23, third step: the tune look's checks and marble
    no longer told detectors apart): zigzags, plaids, honeycombs, fish scales."""
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    a, b = np.array(trust_data._colour(rng), np.float32), np.array(trust_data._colour(rng), np.float32)
    kind = rng.choice(("zigzag", "plaid", "honeycomb", "scales"))
    p = rng.uniform(10, 28)
    if kind == "zigzag":
        tri = np.abs((xx / p) % 2 - 1) * p * rng.uniform(0.5, 1.5)
        t = 0.5 + 0.5 * np.sign(np.sin(2 * math.pi * (yy + tri) / p))
    elif kind == "plaid":
        q = rng.uniform(6, 20)
        t = 0.25 * (2 + np.sin(2 * math.pi * xx / p) + np.sin(2 * math.pi * yy / q))
    elif kind == "honeycomb":
        r = p / 2
        u, v = xx / (r * math.sqrt(3)), yy / (1.5 * r)
        row = np.floor(v)
        u = u - 0.5 * (row % 2)
        du, dv = u - np.round(u), (v - row - 0.5) * 1.5 * r / (r * math.sqrt(3))
        t = (np.maximum(np.abs(du), np.abs(du) * 0.5 + np.abs(dv) * 0.87) > 0.42).astype(np.float32)
    else:  # fish scales: overlapping half discs in offset rows
        row = np.floor(yy / (p / 2))
        cx = (np.floor((xx + (row % 2) * p / 2) / p) + 0.5) * p - (row % 2) * p / 2
        cy = (row + 1) * p / 2
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / (p / 2)
        t = ((d > 0.8) & (d < 1.0)).astype(np.float32)
    t = np.clip(t + nrng.normal(0, 0.05, t.shape), 0, 1)
    img = a * t[..., None] + b * (1 - t[..., None])
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def tune2_noise(rng: random.Random, size: int = 128) -> Image.Image:
    """The "tune2" look's noise: fractal noise (three octaves) or a soft two-colour split."""
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a, b = np.array(trust_data._colour(rng), np.float32), np.array(trust_data._colour(rng), np.float32)
    if rng.random() < 0.5:
        t = sum(_smooth_noise(nrng, size, s) / (i + 1) for i, s in enumerate((12, 4, 1.5))) * 0.2 + 0.5
    else:
        ang = rng.uniform(0, 2 * math.pi)
        d = (xx - 0.5) * math.cos(ang) + (yy - 0.5) * math.sin(ang) - rng.uniform(-0.2, 0.2)
        t = 1 / (1 + np.exp(-d * rng.uniform(20, 80)))
    t = np.clip(t, 0, 1)
    img = a * t[..., None] + b * (1 - t[..., None])
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def make_tune2(root: Path, per_family: int, seed: int) -> dict[str, list[str]]:
    """The "tune2" look: other textures and noise only (families "textures" and "noise")."""
    out: dict[str, list[str]] = {}
    for fam, make in (("textures", tune2_texture), ("noise", tune2_noise)):
        rng = random.Random(f"unrelated-{fam}-tune2-{seed}")
        folder = root / fam
        folder.mkdir(parents=True, exist_ok=True)
        out[fam] = []
        for i in range(per_family):
            p = folder / f"{fam}_tune2_{i:04d}.png"
            make(rng).save(p)
            out[fam].append(str(p))
    return out


def _smooth_noise(nrng, size: int, blur: float) -> np.ndarray:
    n = Image.fromarray((nrng.uniform(0, 255, (size, size))).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur))
    n = np.asarray(n, np.float32)
    return (n - n.mean()) / (n.std() + 1e-6)


def noise_or_gradient(rng: random.Random, look: str, size: int = 128) -> Image.Image:
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a, b = np.array(trust_data._colour(rng), np.float32), np.array(trust_data._colour(rng), np.float32)
    kind = rng.choice(("uniform", "linear") if look == "tune" else ("blobs", "radial", "flat"))
    if kind == "uniform":
        return Image.fromarray(nrng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    if kind == "linear":
        ang = rng.uniform(0, 2 * math.pi)
        t = ((xx - 0.5) * math.cos(ang) + (yy - 0.5) * math.sin(ang)) + 0.5
    elif kind == "blobs":
        t = _smooth_noise(nrng, size, rng.uniform(3, 10)) * 0.25 + 0.5
    elif kind == "radial":
        t = np.sqrt((xx - rng.random()) ** 2 + (yy - rng.random()) ** 2)
    else:
        t = np.zeros_like(xx) + nrng.normal(0, 0.03, xx.shape)
    t = np.clip(t, 0, 1)
    img = a * t[..., None] + b * (1 - t[..., None])
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def make_unrelated(root: Path, look: str, per_family: int, seed: int) -> dict[str, list[str]]:
    """``per_family`` images of every family in ``look`` ("tune" | "report"): family -> paths."""
    photos = _photos(look)
    out: dict[str, list[str]] = {}
    for fam in FAMILIES:
        rng = random.Random(f"unrelated-{fam}-{look}-{seed}")
        folder = root / fam
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(per_family):
            if fam == "grey_patches":
                img = grey_patch(photos, rng, look)
            elif fam == "other_glyphs":
                img = other_glyph(rng, look)
            elif fam == "colour_photos":
                img = colour_photo(photos, rng, look)
            elif fam == "textures":
                img = other_texture(rng, look)
            else:
                img = noise_or_gradient(rng, look)
            p = folder / f"{fam}_{look}_{i:04d}.png"
            img.save(p)
            paths.append(str(p))
        out[fam] = paths
    return out


DIGITS = tuple(_DIGITS)  # the digit classes, for other benchmarks (bench/label_data.py)
