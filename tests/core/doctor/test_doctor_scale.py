"""The doctor's analysis on a few thousand synthetic images with the big-set paths switched on
(approximate neighbour search, sampled principal axes, capped folds): what was planted is found,
and the approximate search finds what the exact one finds. Runs in seconds (no decoding, no
network: thumbnails and embeddings are made here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from cnndesk.core.common import neighbours
from cnndesk.core.doctor import check as doctor
from cnndesk.core.doctor import label_check as stats

N, D, CLASSES = 3000, 96, 6


def _dataset(seed: int = 0):
    rng = np.random.default_rng(seed)
    n_copies, n_out = 30, 3
    base = N - n_copies
    low = rng.integers(0, 256, (base, 4, 4, 3))
    thumbs = np.repeat(np.repeat(low, 8, 1), 8, 2).reshape(base, -1).astype(np.int16)
    thumbs = np.clip(thumbs + rng.integers(-12, 12, thumbs.shape), 0, 255)
    src = rng.choice(base, n_copies, replace=False)
    copies = np.clip(thumbs[src] + rng.integers(-2, 3, (n_copies, thumbs.shape[1])), 0, 255)
    thumbs = np.vstack([thumbs, copies]).astype(np.uint8)
    y = np.concatenate([rng.integers(0, CLASSES, base), np.zeros(n_copies, int)])
    y[base:] = y[src]
    latent = rng.normal(0, 1.0, (CLASSES, 16))[y] + rng.normal(0, 0.45, (N, 16))
    latent[base:] = latent[src] + rng.normal(0, 0.01, (n_copies, 16))
    outl = rng.choice(np.setdiff1d(np.arange(base), src), n_out, replace=False)
    latent[outl] = rng.normal(0, 6.0, (n_out, 16))
    multi = np.maximum(latent @ rng.normal(0, 1, (16, D)) / 3 + rng.normal(0, 0.2, (N, D)), 0).astype(np.float32)
    split = np.where(np.arange(N) % 5 == 0, "val", "train")
    split[src] = "train"
    split[base:] = np.where(np.arange(n_copies) % 2 == 0, "train", "val")
    labels = y.copy()
    cand = np.setdiff1d(np.flatnonzero(split == "train"), np.concatenate([src, outl, np.arange(base, N)]))
    flips = rng.choice(cand, 60, replace=False)
    labels[flips] = (y[flips] + rng.integers(1, CLASSES, len(flips))) % CLASSES
    names = [f"c{c}" for c in range(CLASSES)]
    paths = [f"/d/{split[i]}/{names[labels[i]]}/{i:05d}.png" for i in range(N)]
    return {"paths": paths, "thumbs": thumbs, "multi": multi, "labels": {p: names[labels[i]] for i, p in enumerate(paths)},
            "split": {p: str(split[i]) for i, p in enumerate(paths)}, "names": names,
            "copies": {frozenset((paths[s], paths[base + c])) for c, s in enumerate(src)},
            "flips": {paths[i] for i in flips}, "outliers": {paths[i] for i in outl}}


def _analyse(data, monkeypatch):
    """run_checks on the arrays: the file walk, thumbnails and embeddings replaced by them."""
    paths = data["paths"]
    feats = {p: data["multi"][i, -D // 2:] for i, p in enumerate(paths)}
    multi = {p: data["multi"][i] for i, p in enumerate(paths)}
    monkeypatch.setattr(doctor.dupes, "thumbnails", lambda ps, *a, **k: (data["thumbs"], np.full((N, 2), 64, np.int32), {}))
    monkeypatch.setattr(doctor, "embed_files", lambda ps, *a, **k: (feats, multi, {}, 224, "synthetic"))
    items = [(p, data["split"][p], data["labels"][p]) for p in paths]
    files = doctor.Files(Path("/d"), "splits", data["names"], items, {c: [f"/d/train/{c}"] for c in data["names"]}, [])
    with threadpool_limits(1):
        issues, checked, _ = doctor.run_checks(files, None, None, None, "cpu")
    assert checked == N
    return [i for i in issues if i.kind not in ("imbalance", "too_few")]


@pytest.fixture(scope="module")
def data():
    return _dataset()


@pytest.fixture
def big_paths(monkeypatch):
    """The big-set paths at this size: approximate search, sampled axes, capped folds."""
    monkeypatch.setattr(neighbours, "EXACT_MAX_PAIRS", 100_000)
    monkeypatch.setattr(stats, "LABEL_SAMPLE", 600)
    monkeypatch.setattr(stats, "LABEL_TRAIN_MAX", 1500)


def test_planted_problems_are_found_on_the_big_set_paths(data, big_paths, monkeypatch):
    issues = _analyse(data, monkeypatch)
    pairs = {frozenset((i.path, i.other)): i.kind for i in issues if i.kind in ("duplicate", "leak", "overlap")}
    assert set(pairs) == data["copies"]
    for pair, kind in pairs.items():
        splits = {data["split"][p] for p in pair}
        assert kind == ("leak" if splits == {"train", "val"} else "duplicate")
    labels = {i.path for i in issues if i.kind == "label" and i.likely}
    assert len(labels & data["flips"]) >= 0.9 * len(data["flips"]), len(labels & data["flips"])
    assert len(labels & data["flips"]) >= 0.9 * len(labels)
    assert data["outliers"] <= {i.path for i in issues if i.kind == "outlier"}


def test_approximate_and_exact_searches_give_the_same_report(data, big_paths, monkeypatch):
    approx = _analyse(data, monkeypatch)
    monkeypatch.setattr(neighbours, "EXACT_MAX_PAIRS", 10**12)
    exact = _analyse(data, monkeypatch)
    key = sorted((i.kind, i.path, i.other or "") for i in approx)
    assert key == sorted((i.kind, i.path, i.other or "") for i in exact)


def test_rows_are_projected_as_the_stacked_matrix(data):
    """The block-wise PCA of Rows equals the PCA of the stacked array (same sample, same axes)."""
    x = data["multi"][:, -D // 2:]
    a = stats.project(x, 16)
    b = stats.project(stats.Rows(list(x)), 16)
    # eigenvectors are defined up to sign
    signs = np.sign((a * b).sum(0))
    assert np.allclose(a, b * signs, atol=1e-3)
