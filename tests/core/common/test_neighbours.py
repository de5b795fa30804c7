"""cnndesk.core.common.neighbours: exact and approximate nearest neighbours agree, edge cases
(k > n, empty base, bad input) have clear answers, the pairs helper finds planted copies, and the
same input gives the same answer every time."""

from __future__ import annotations

import numpy as np
import pytest

from cnndesk.core.common import neighbours as nb


def _clustered(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.normal(0, 1, (20, 8))[rng.integers(0, 20, n)] + rng.normal(0, 0.5, (n, 8))
    return (latent @ rng.normal(0, 1, (8, d)) + rng.normal(0, 0.3, (n, d))).astype(np.float32)


def _brute(q, b, k, metric, exclude_self):
    if metric == "cosine":
        qu = q / np.linalg.norm(q, axis=1, keepdims=True)
        bu = b / np.linalg.norm(b, axis=1, keepdims=True)
        dist = 1 - qu.astype(np.float64) @ bu.T.astype(np.float64)
    else:
        dist = np.sqrt(((q[:, None, :].astype(np.float64) - b[None].astype(np.float64)) ** 2).sum(-1))
    if exclude_self:
        np.fill_diagonal(dist, np.inf)
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, idx, 1), idx


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_exact_search_matches_brute_force(metric):
    x = _clustered(300)
    q = x[:40] + 0.01
    d, i = nb.knn(q, x, 7, metric, exact=True)
    bd, bi = _brute(q, x, 7, metric, False)
    assert np.array_equal(i, bi)
    assert np.allclose(d, bd, atol=1e-4)
    d, i = nb.knn(x, x, 5, metric, exclude_self=True, exact=True)
    bd, bi = _brute(x, x, 5, metric, True)
    assert np.array_equal(i, bi) and np.allclose(d, bd, atol=1e-4)
    assert (i != np.arange(len(x))[:, None]).all()


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_approximate_search_agrees_with_exact(metric):
    x = _clustered(6000, 24)
    de, ie = nb.knn(x, x, 10, metric, exclude_self=True, exact=True)
    da, ia = nb.knn(x, x, 10, metric, exclude_self=True, exact=False)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ia.tolist(), ie.tolist(), strict=True)])
    assert recall >= nb.MIN_RECALL, recall
    same = (ia == ie).all(1)
    assert np.allclose(da[same], de[same], atol=1e-5)  # found rows are scored exactly as the exact search does
    assert (ia != np.arange(len(x))[:, None]).all()


def test_approximate_search_widens_until_the_recall_check_passes(monkeypatch):
    """Two axes at first: the sample's recall fails and the shortlist search uses more."""
    monkeypatch.setattr(nb, "START_DIMS", 2)
    seen = []
    real = nb.recall
    monkeypatch.setattr(nb, "recall", lambda *a: seen.append(real(*a)) or seen[-1])
    x = _clustered(5000, 48, seed=2)
    _, ie = nb.knn(x, x, 10, exclude_self=True, exact=True)
    _, ia = nb.knn(x, x, 10, exclude_self=True, exact=False)
    assert seen[0] < nb.MIN_RECALL <= seen[-1] and len(seen) >= 2, seen
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ia.tolist(), ie.tolist(), strict=True)])
    assert recall >= 0.985, recall  # checked on a 512-query sample at >= 0.99


def test_more_neighbours_asked_than_there_are():
    x = _clustered(5)
    d, i = nb.knn(x, x, 8, exclude_self=True)
    assert i.shape == (5, 8) and d.dtype == np.float32 and i.dtype == np.int64
    assert (i[:, :4] >= 0).all() and (i[:, 4:] == -1).all() and np.isinf(d[:, 4:]).all()
    assert all(set(i[r, :4]) == set(range(5)) - {r} for r in range(5))
    d, i = nb.knn(x[:2], x, 8)
    assert (i[:, :5] >= 0).all() and (i[:, 5:] == -1).all()
    d, i = nb.knn(x[:1], x[:1], 3, exclude_self=True)
    assert (i == -1).all() and np.isinf(d).all()


def test_empty_base_and_empty_queries():
    q = _clustered(3)
    d, i = nb.knn(q, np.zeros((0, 32), np.float32), 4)
    assert d.shape == i.shape == (3, 4) and (i == -1).all() and np.isinf(d).all()
    d, i = nb.knn(np.zeros((0, 32), np.float32), q, 4)
    assert d.shape == i.shape == (0, 4)
    d, i = nb.knn(q, q, 0)
    assert d.shape == (3, 0)
    pairs, dist = nb.close_pairs(np.zeros((0, 8), np.float32), 0.1)
    assert pairs.shape == (0, 2) and dist.shape == (0,)


def test_bad_input_is_refused_clearly():
    x = _clustered(10)
    with pytest.raises(ValueError, match="metric"):
        nb.knn(x, x, 2, metric="manhattan")
    with pytest.raises(ValueError, match="values per row"):
        nb.knn(x[:, :5], x, 2)
    with pytest.raises(ValueError, match="NaN"):
        nb.knn(np.full((2, 32), np.nan, np.float32), x, 2)
    with pytest.raises(ValueError, match="exclude_self"):
        nb.knn(x[:3], x, 2, exclude_self=True)
    with pytest.raises(ValueError, match="k must"):
        nb.knn(x, x, -1)


def test_close_pairs_finds_planted_copies_and_nothing_else():
    x = _clustered(2000, 32, seed=1)
    rng = np.random.default_rng(5)
    src = rng.choice(len(x), 25, replace=False)
    copies = x[src] * 1.3 + rng.normal(0, 0.002, (25, 32)).astype(np.float32)  # same direction, rescaled
    both = np.vstack([x, copies])
    for exact in (True, False):
        pairs, dist = nb.close_pairs(both, 1e-4, k=3, exact=exact)
        planted = {(int(s), len(x) + c) for c, s in enumerate(src)}
        assert planted <= {tuple(p) for p in pairs.tolist()}
        assert (pairs[:, 0] < pairs[:, 1]).all() and (dist <= 1e-4).all()
        assert len(pairs) == len(planted)  # the clustered rows are never that close to each other


def test_exact_copies_tie_to_the_lower_index():
    base = np.vstack([np.eye(4, dtype=np.float32)] * 3)  # rows 0, 4, 8 are the same vector
    d, i = nb.knn(base[:1], base, 3)
    assert i.tolist() == [[0, 4, 8]] and np.allclose(d, 0)
    d, i = nb.knn(base, base, 2, exclude_self=True)
    assert i[0].tolist() == [4, 8] and i[4].tolist() == [0, 8] and i[8].tolist() == [0, 4]


def test_the_same_input_gives_the_same_answer():
    x = _clustered(6000, 24, seed=3)
    first = nb.knn(x, x, 6, exclude_self=True, exact=False)
    again = nb.knn(x.copy(), x.copy(), 6, exclude_self=True, exact=False)
    assert np.array_equal(first[1], again[1]) and np.array_equal(first[0], again[0])
    e1 = nb.knn(x[:500], x, 6, exact=True)
    e2 = nb.knn(x[:500], x, 6, exact=True)
    assert np.array_equal(e1[1], e2[1]) and np.array_equal(e1[0], e2[0])


def test_zero_rows_are_at_cosine_distance_one():
    x = np.vstack([np.zeros((1, 4), np.float32), np.eye(4, dtype=np.float32)])
    d, i = nb.knn(x[:1], x[1:], 2)
    assert np.allclose(d, 1.0) and i.tolist() == [[0, 1]]


def test_faiss_is_imported_only_when_a_big_set_is_searched():
    """faiss takes 0.4-2 s to import here: never at start-up, never for small sets."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from cnndesk.core.common import neighbours as nb; import cnndesk.core.doctor.check;"
            "nb.knn(np.eye(50, dtype=np.float32), np.eye(50, dtype=np.float32), 3); print('faiss' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "False", out.stderr
