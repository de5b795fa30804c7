"""Outliers synthesised from a user's own training images for the novelty detector's "+synth"
term (``core.trust.novelty``): each image with its content removed — low-passed to 2-4 px and
scaled back up (smooth gradients and blobs in its colours), blurred (a 1/12-size version scaled
back up) and flattened to its mean colour with a little noise. Images that look like these
rather than like a training image are "not one of my classes" (bench/bench_unknown.py, tune look:
quick textures' smooth gradients and blobs 0.47 -> 1.00 flagged). numpy and Pillow only (quick
training stays torch-free); ``training.full_trust`` does the same on tensors for full models.
The operations are linear and per channel, so on normalized arrays they equal the same operations
on the pixels."""

from __future__ import annotations

import numpy as np
from PIL import Image

SOURCES = 60  # training images whose content-free versions are the outliers (3 each)


def _resize(a: np.ndarray, size: tuple[int, int], method) -> np.ndarray:
    """(C, H, W) float array resized per channel to ``size`` = (w, h)."""
    return np.stack([np.asarray(Image.fromarray(c.astype(np.float32), mode="F").resize(size, method)) for c in a])


def content_free(x: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Three outliers (C, H, W) from one preprocessed image ``x``."""
    _, h, w = x.shape
    k = int(rng.integers(2, 5))
    low = _resize(_resize(x, (k, k), Image.BOX), (w, h), Image.BICUBIC)
    blur = _resize(_resize(x, (max(2, w // 12), max(2, h // 12)), Image.BOX), (w, h), Image.BILINEAR)
    flat = x.mean(axis=(1, 2), keepdims=True) + 0.07 * rng.standard_normal(x.shape)
    return [a.astype(np.float32) for a in (low, blur, flat)]


def sources(paths: list[str], n: int = SOURCES) -> list[str]:
    """Up to ``n`` of ``paths``, evenly spread (every class when they are grouped by class)."""
    stride = max(1, -(-len(paths) // n))
    return paths[::stride][:n]


def quick_outliers(fx, paths: list[str], seed: int = 0, batch: int = 16) -> np.ndarray | None:
    """Features (``fx``: quick training's ``FeatureExtractor``) of the outliers synthesised from
    up to SOURCES of ``paths``; None when no image could be read."""
    from cnndesk.core.images.load import load_image

    rng = np.random.default_rng(seed)
    made: list[np.ndarray] = []
    for p in sources(paths):
        try:
            x = fx.prepare(load_image(p, min_side=fx.preprocess.resize))
        except Exception:  # unreadable since it was embedded: fewer outliers
            continue
        made += content_free(np.asarray(x, np.float32), rng)
    if not made:
        return None
    arr = np.stack(made)
    return np.concatenate([fx.embed_arrays(arr[s:s + batch]) for s in range(0, len(arr), batch)])
