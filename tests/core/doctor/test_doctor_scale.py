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


def _analyse(data, monkeypatch, rows=None, embed=None):
    """run_checks on the arrays: the file walk, thumbnails and embeddings replaced by them
    (``rows``: path -> multi-stage vector, as the embedding cache hands them over; ``embed``:
    what replaces ``embed_files`` instead)."""
    paths = data["paths"]
    multi = rows if rows is not None else {p: data["multi"][i] for i, p in enumerate(paths)}
    feats = {p: v[-D // 2:] for p, v in multi.items()}  # views, as doctor/embed.py hands them over
    del rows
    monkeypatch.setattr(doctor.dupes, "thumbnails", lambda ps, *a, **k: (data["thumbs"], np.full((N, 2), 64, np.int32), {}))
    monkeypatch.setattr(doctor, "embed_files", embed or (lambda ps, *a, **k: (feats, multi, {}, 224, "synthetic")))
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


def _compact_rows(data, tmp_path, monkeypatch):
    """The multi-stage vectors through the embedding cache as the doctor reads it: written as
    float32, read back compact (float16, one array)."""
    from cnndesk.core.predict import embeddings

    monkeypatch.setattr(embeddings, "file_key", lambda p: p)
    if not (tmp_path / "synthetic.npz").exists():
        cache = embeddings.EmbeddingCache("synthetic", folder=tmp_path)
        for p, v in zip(data["paths"], data["multi"], strict=True):
            cache.put(p, v)
        cache.save()
    compact = embeddings.EmbeddingCache("synthetic", folder=tmp_path, compact=True)
    assert compact.compact
    return {p: compact.get(p) for p in data["paths"]}


def test_compact_embeddings_give_the_same_report(data, big_paths, monkeypatch, tmp_path):
    """Issue 25: the float16 rows of the compact cache read give the float32 report."""
    rows = _compact_rows(data, tmp_path, monkeypatch)
    assert next(iter(rows.values())).dtype == np.float16
    compact = _analyse(data, monkeypatch, rows)
    full = _analyse(data, monkeypatch)
    key = sorted((i.kind, i.path, i.other or "", i.suggested or "", i.likely) for i in compact)
    assert key == sorted((i.kind, i.path, i.other or "", i.suggested or "", i.likely) for i in full)


def test_embeddings_are_let_go_before_the_pair_search(data, big_paths, monkeypatch, tmp_path):
    """The label check runs first; the pair search (the thumbnails' turn) runs without them."""
    import gc
    import weakref

    refs = []

    def embed_files(ps, *a, **k):  # as doctor/embed.py: nothing else keeps the vectors
        rows = _compact_rows(data, tmp_path, monkeypatch)
        refs.append(weakref.ref(next(iter(rows.values())).base))
        return {p: v[-D // 2:] for p, v in rows.items()}, rows, {}, 224, "synthetic"

    alive = []
    real = doctor.pair_issues

    def pair_issues(*a, **k):
        gc.collect()
        alive.append(refs[0]() is not None)
        return real(*a, **k)

    monkeypatch.setattr(doctor, "pair_issues", pair_issues)
    issues = _analyse(data, monkeypatch, embed=embed_files)
    assert len(refs) == 1 and alive == [False]
    assert {frozenset((i.path, i.other)) for i in issues if i.kind in ("duplicate", "leak")} == data["copies"]


def test_analyse_still_takes_plain_arguments(data, monkeypatch):
    """analyse called the old way (feats and multi as arguments, not handed over) works the same."""
    paths = data["paths"][:400]
    multi = {p: data["multi"][i] for i, p in enumerate(paths)}
    feats = {p: v[-D // 2:] for p, v in multi.items()}
    labels = {p: data["labels"][p] for p in paths}
    split = {p: data["split"][p] for p in paths}
    thumbs, sizes = data["thumbs"][:400], np.full((400, 2), 64, np.int32)
    with threadpool_limits(1):
        a = doctor.analyse(paths, labels, split, thumbs, sizes, feats, 224, data["names"], data["names"], None, multi)
        b = doctor.analyse(paths, labels, split, thumbs, sizes, [feats, multi], 224, data["names"], data["names"], None)
    assert sorted((i.kind, i.path, i.other or "") for i in a) == sorted((i.kind, i.path, i.other or "") for i in b)
    assert feats and multi  # the caller's own dicts are left alone


@pytest.mark.parametrize("seed", range(40))
def test_predicted_neq_given_is_cleanlabs(seed):
    """The quick label check's ranking without cleanlab's import: the same indices, same order."""
    filt = pytest.importorskip("cleanlab.filter")
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(5, 2000)), int(rng.integers(2, 12))
    p = rng.dirichlet(np.ones(k) * rng.uniform(0.1, 3), n)
    if seed % 3 == 0:
        p = p.astype(np.float32)
    if seed % 4 == 0:  # ties and near-ties with the given label
        p = np.round(p, 2) + 1e-7 * (rng.random(p.shape) < 0.1)
        p /= p.sum(1, keepdims=True)
    y = rng.integers(0, k, n)
    y[:k] = np.arange(k)
    want = filt.find_label_issues(labels=y, pred_probs=p, filter_by="predicted_neq_given",
                                  return_indices_ranked_by="self_confidence", n_jobs=1)
    assert np.array_equal(stats.predicted_neq_given(y, p), want)
