"""Small generated folders for the labelling tests, and a fast stand-in for the CNN embeddings
(grey 12x12 thumbnails: the session's logic is under test here, not the network)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("disc", "bar", "ring", "cross")


def draw(kind: str, rng: random.Random, size: int = 48) -> Image.Image:
    paper = rng.randint(200, 255)
    img = Image.new("L", (size, size), paper)
    d = ImageDraw.Draw(img)
    c = size / 2 + rng.uniform(-3, 3)
    r = size * rng.uniform(0.28, 0.36)
    ink = rng.randint(0, 60)
    if kind == "disc":
        d.ellipse([c - r, c - r, c + r, c + r], fill=ink)
    elif kind == "ring":
        d.ellipse([c - r, c - r, c + r, c + r], outline=ink, width=4)
    elif kind == "bar":
        d.rectangle([c - r, c - r / 4, c + r, c + r / 4], fill=ink)
    else:
        d.line([(c - r, c - r), (c + r, c + r)], fill=ink, width=5)
        d.line([(c - r, c + r), (c + r, c - r)], fill=ink, width=5)
    arr = np.asarray(img, np.float32) + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 6, (size, size))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8)).convert("RGB")


def make_pile(root: Path, per_class: int = 8, classes=CLASSES, seed: int = 0, subfolders: bool = False) -> dict[str, str]:
    """Write ``per_class`` images of each class under ``root`` (flat, or in class subfolders);
    returns {absolute path: true class}."""
    rng = random.Random(seed)
    truth = {}
    for kind in classes:
        folder = root / kind if subfolders else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            p = folder / f"{kind}_{seed}_{i:03d}.png"
            draw(kind, rng).save(p)
            truth[str(p.resolve())] = kind
    return truth


def fake_embed(paths, progress=None, cancel=None, errors=None) -> np.ndarray:
    """A 144-value "embedding" per image (its grey 12x12 thumbnail); NaN rows for bad files."""
    from cnndesk.core.common.errors import ImageLoadError
    from cnndesk.core.common.progress import check
    from cnndesk.core.images.load import load_image

    out = np.full((len(paths), 144), np.nan, np.float32)
    for i, p in enumerate(paths):
        check(cancel)
        try:
            img = load_image(p).convert("L").resize((12, 12))
            out[i] = np.asarray(img, np.float32).ravel() / 255.0
        except ImageLoadError as exc:
            if errors is not None:
                errors.append((p, str(exc)))
        if progress is not None:
            progress(i + 1, len(paths), "embedding")
    return out
