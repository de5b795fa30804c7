"""Generated datasets with planted problems for the dataset doctor (tests and bench/bench_doctor.py).

Ten classes: six of small symbol-like images (64 px shapes and glyphs with random colours, sizes,
positions, rotations and clutter) and four of textures (96 px stripes, checks, dots, blobs). Then,
like the held-out set the targets are measured on:

* ``flip_share`` of the training images are moved to a wrong class folder;
* ``n_dupes`` near-duplicate copies inside train (resized, re-encoded, cropped by 1-3 px);
* ``n_leaks`` such copies placed in val (same class);
* ``n_outliers`` unrelated photos (the sample photos, resized) dropped into classes.

``manifest.json`` (outside the dataset folder) records what was planted.
"""

from __future__ import annotations

import io
import json
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

SYMBOLS = ("circle", "square", "triangle", "star", "cross", "glyph_A")
TEXTURES = ("stripes", "checks", "dots", "blobs")
CLASSES = SYMBOLS + TEXTURES
SAMPLES = Path(__file__).resolve().parent.parent / "resources" / "samples"


def _colour(rng):
    return tuple(rng.randint(0, 255) for _ in range(3))


def _contrast(rng, bg):
    return tuple((c + rng.randint(90, 165)) % 256 for c in bg)


def symbol(kind: str, rng: random.Random, size: int = 64) -> Image.Image:
    bg = _colour(rng)
    big = size * 2
    img = Image.new("RGB", (big, big), bg)
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 6)):
        x, y = rng.randint(0, big), rng.randint(0, big)
        d.line([(x, y), (x + rng.randint(-40, 40), y + rng.randint(-40, 40))], fill=_colour(rng), width=2)
    fg = _contrast(rng, bg)
    r = rng.randint(big // 6, big // 3)
    cx, cy = rng.randint(r, big - r), rng.randint(r, big - r)
    rot = rng.uniform(0, 2 * math.pi)

    def poly(points):
        return [(cx + x * math.cos(rot) - y * math.sin(rot), cy + x * math.sin(rot) + y * math.cos(rot)) for x, y in points]

    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif kind == "square":
        d.polygon(poly([(-r, -r), (r, -r), (r, r), (-r, r)]), fill=fg)
    elif kind == "triangle":
        d.polygon(poly([(0, -r), (-r, r * 0.8), (r, r * 0.8)]), fill=fg)
    elif kind == "star":
        pts = []
        for i in range(10):
            rr = r if i % 2 == 0 else r * 0.45
            a = i * math.pi / 5
            pts.append((rr * math.sin(a), -rr * math.cos(a)))
        d.polygon(poly(pts), fill=fg)
    elif kind == "cross":
        w = r * 0.35
        d.polygon(poly([(-w, -r), (w, -r), (w, r), (-w, r)]), fill=fg)
        d.polygon(poly([(-r, -w), (r, -w), (r, w), (-r, w)]), fill=fg)
    else:
        font = ImageFont.load_default(size=int(r * 2))
        d.text((cx - r * 0.6, cy - r), "A", fill=fg, font=font)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def texture(kind: str, rng: random.Random, size: int = 96) -> Image.Image:
    a, b = _colour(rng), _colour(rng)
    img = Image.new("RGB", (size, size), a)
    d = ImageDraw.Draw(img)
    if kind == "stripes":
        period = rng.randint(6, 16)
        ang = rng.uniform(0, math.pi)
        dx, dy = math.cos(ang), math.sin(ang)
        for k in range(-3 * size // period, 3 * size // period):
            ox, oy = size / 2 + k * period * dy, size / 2 - k * period * dx
            d.line([(ox - 2 * size * dx, oy - 2 * size * dy), (ox + 2 * size * dx, oy + 2 * size * dy)],
                   fill=b, width=max(1, period // 2 - rng.randint(0, 2)))
    elif kind == "checks":
        s = rng.randint(6, 18)
        off = rng.randint(0, s)
        for i in range(-1, size // s + 2):
            for j in range(-1, size // s + 2):
                if (i + j) % 2:
                    d.rectangle([i * s - off, j * s - off, (i + 1) * s - off - 1, (j + 1) * s - off - 1], fill=b)
    elif kind == "dots":
        r = rng.randint(2, 6)
        for _ in range(rng.randint(25, 70)):
            x, y = rng.randint(0, size), rng.randint(0, size)
            d.ellipse([x - r, y - r, x + r, y + r], fill=b)
    else:  # blobs: smoothed noise, two colours
        noise = Image.effect_noise((size, size), 120).filter(ImageFilter.GaussianBlur(rng.uniform(3, 6)))
        noise = noise.point(lambda v: 255 if v > 128 else 0).convert("L")
        img = Image.composite(Image.new("RGB", (size, size), b), img, noise)
    return img.filter(ImageFilter.GaussianBlur(0.4))


def draw(kind: str, rng: random.Random) -> Image.Image:
    return symbol(kind, rng) if kind in SYMBOLS else texture(kind, rng)


def near_copy(img: Image.Image, rng: random.Random) -> Image.Image:
    """Resized, cropped by 1-3 px on some sides, re-encoded as JPEG at another quality."""
    w, h = img.size
    left, top = rng.randint(0, 3), rng.randint(0, 3)
    right, bottom = w - rng.randint(0, 3), h - rng.randint(0, 3)
    c = img.crop((left, top, right, bottom))
    scale = rng.choice([0.75, 0.8, 1.25, 1.5, 2.0])
    c = c.resize((max(8, int(c.width * scale)), max(8, int(c.height * scale))), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    c.save(buf, "JPEG", quality=rng.randint(55, 85))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _save(img: Image.Image, path: Path, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if rng.random() < 0.5:
        img.save(path.with_suffix(".png"))
    else:
        img.save(path.with_suffix(".jpg"), quality=rng.randint(80, 95))


def make(root: Path, per_class: int = 150, val_share: float = 0.2, flip_share: float = 0.05,
         n_dupes: int = 15, n_leaks: int = 15, n_outliers: int = 0, seed: int = 0,
         classes: tuple[str, ...] = CLASSES) -> dict:
    """Write the dataset under ``root`` (train/ and val/) and return the manifest (also written
    next to it as ``root.name + '.manifest.json'``). Paths in the manifest are relative to root."""
    rng = random.Random(seed)
    root = Path(root)
    files: dict[str, list[tuple[str, str]]] = {"train": [], "val": []}  # (relative path, class)
    for cls in classes:
        n_val = int(round(per_class * val_share))
        for i in range(per_class):
            split = "val" if i < n_val else "train"
            img = draw(cls, rng)
            stem = root / split / cls / f"{cls}_{i:05d}"
            _save(img, stem, rng)
            path = next(p for p in (stem.with_suffix(".png"), stem.with_suffix(".jpg")) if p.exists())
            files[split].append((str(path.relative_to(root)), cls))
    # copies first (from clean train images), then label flips among the other train images
    train = list(files["train"])
    rng.shuffle(train)
    sources = train[: n_dupes + n_leaks]
    dupes, leaks = [], []
    for k, (rel, cls) in enumerate(sources):
        src = root / rel
        split = "train" if k < n_dupes else "val"
        with Image.open(src) as im:
            copy = near_copy(im.convert("RGB"), rng)
        target = root / split / cls / f"{cls}_copy{k:03d}.jpg"
        copy.save(target, quality=rng.randint(60, 90))
        (dupes if split == "train" else leaks).append([rel, str(target.relative_to(root))])
    planted_copies = {p for pair in dupes + leaks for p in pair}
    flippable = [t for t in train[n_dupes + n_leaks:] if t[0] not in planted_copies]
    n_flip = int(round(flip_share * len(files["train"])))
    flips = []
    for rel, cls in flippable[:n_flip]:
        wrong = rng.choice([c for c in classes if c != cls])
        src = root / rel
        target = root / "train" / wrong / src.name
        src.rename(target)
        flips.append({"path": str(target.relative_to(root)), "true": cls, "labelled": wrong})
    outliers = []
    photos = sorted(SAMPLES.glob("*.jpg"))
    for k in range(n_outliers):
        cls = rng.choice(classes)
        with Image.open(photos[k % len(photos)]) as im:
            im = im.convert("RGB")
            im.thumbnail((rng.randint(80, 140),) * 2)
        target = root / "train" / cls / f"photo_{k:03d}.jpg"
        im.save(target, quality=88)
        outliers.append(str(target.relative_to(root)))
    manifest = {"root": str(root), "classes": list(classes), "flips": flips, "dupes": dupes, "leaks": leaks,
                "outliers": outliers, "n_train": len(files["train"]) + n_dupes + n_outliers,
                "n_val": len(files["val"]) + n_leaks}
    root.with_name(root.name + ".manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("root")
    p.add_argument("--per-class", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--outliers", type=int, default=0)
    a = p.parse_args()
    m = make(Path(a.root), a.per_class, seed=a.seed, n_outliers=a.outliers)
    print(f"{m['n_train']} train + {m['n_val']} val images, {len(m['flips'])} flips")
