"""Nearest neighbours of row vectors: exact (numpy, chunked) where the set is small, approximate
(faiss: a shortlist on the principal axes, ranked again on every value, recall-checked against
the exact answer) where it is big.

The one place cnndesk searches neighbours in embedding or pixel space (the dataset doctor's
duplicates, leaks and outliers; later the labelling session and novelty). Qt-free, torch-free;
numpy and, for big sets only, ``faiss`` (faiss-cpu, imported on first use: about 0.3-2 s, so it
never sits on the classify path's start-up).

* :func:`knn` — the ``k`` nearest rows of ``base`` for every row of ``queries``:
  ``(dist, idx)``, each ``(len(queries), k)``, nearest first; ties go to the lower index, so the
  answer is the same every run. Where there are fewer than ``k`` candidates the rest of the row
  is ``idx = -1``, ``dist = inf`` (``k > len(base)``, an empty base).
* :func:`close_pairs` — the pairs ``(i, j)``, ``i < j``, of rows of one set where ``j`` is among
  the ``k`` nearest of ``i`` (or ``i`` of ``j``) within ``max_dist``: candidate duplicates, found
  in ``O(N log N)``-ish time and ``O(N k)`` memory instead of ``N × N``.

Distances: ``metric="cosine"``: ``1 - cos(a, b)`` (rows need not be unit length; zero rows are
at distance 1 from everything); ``metric="l2"``: the Euclidean distance.

Exact or approximate: exact when ``len(queries) * len(base)`` is at most :data:`EXACT_MAX_PAIRS`
(about 2 s of one core at 256 dims) or when ``exact=True``. The approximate search
shortlists ``SHORTLIST × k`` candidates per query with faiss's exact search on the base's top
``dims`` principal axes (through the origin), then ranks them again on every value. It is
checked on every call: :data:`RECALL_SAMPLE` queries are answered exactly as well, and while the
shortlist answers of those queries find less than :data:`MIN_RECALL` of their exact top-k,
``dims`` is doubled (from :data:`START_DIMS`; at the full width faiss's exact search answers);
then all queries are answered with that ``dims``. Why not an inverted-file or graph index
(faiss IVF, HNSW; usearch): at these sizes and widths they needed 30-100 % of an exact search's
time for 0.99 recall, and a graph built on several threads is not the same twice
(bench/bench_neighbours.py, docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np

METRICS = ("cosine", "l2")
EXACT_MAX_PAIRS = 40_000_000  # queries × base rows below which the exact search is used
MIN_RECALL = 0.99  # of the exact top-k, on RECALL_SAMPLE queries, or the search is repeated wider
RECALL_SAMPLE = 512
CHUNK_BYTES = 8 << 20  # memory of one block of the exact search's similarity matrix (its top-k
# takes about 4× that more; issue 25: the doctor at 50,000 images within 1 GB)
# the approximate search (bench/bench_neighbours.py): a shortlist of SHORTLIST × k per query from
# an exact search on the top START_DIMS axes (doubled until the recall check passes), axes fitted
# on AXES_SAMPLE rows
START_DIMS, SHORTLIST, AXES_SAMPLE = 32, 4, 8192


def knn(queries: np.ndarray, base: np.ndarray, k: int, metric: str = "cosine", exclude_self: bool = False, *,
        exact: bool | None = None, threads: int = 1, cancel=None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``base`` for each row of ``queries``: ``(dist, idx)`` (float32,
    int64; shape ``(len(queries), k)``, nearest first, ties to the lower index; ``-1`` / ``inf``
    where fewer than ``k`` exist). ``exclude_self``: ``queries`` are ``base`` itself (same rows,
    same order) and row ``i`` is not its own neighbour (a copy of it elsewhere still is).
    ``exact``: force the exact (True) or the approximate (False) search; None picks by size.
    ``threads``: for the approximate search (the exact one runs on numpy's BLAS threads).
    ``cancel``: a :class:`~cnndesk.core.common.progress.CancelToken`, checked between blocks."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    q, b = _rows(queries), _rows(base)
    if q.shape[1] != b.shape[1] and len(q) and len(b):
        raise ValueError(f"queries have {q.shape[1]} values per row, the base {b.shape[1]}")
    if exclude_self and len(q) != len(b):
        raise ValueError(f"exclude_self needs the queries to be the base itself ({len(q)} vs {len(b)} rows)")
    k = int(k)
    if k < 0:
        raise ValueError(f"k must be at least 0, not {k}")
    dist = np.full((len(q), k), np.inf, np.float32)
    idx = np.full((len(q), k), -1, np.int64)
    kk = min(k, len(b) - (1 if exclude_self else 0))
    if kk <= 0 or not len(q):
        return dist, idx
    same = exclude_self or queries is base
    if metric == "cosine":  # on unit rows the nearest is the largest inner product
        q = _unit(q)
        b = q if same else _unit(b)
    if exact is None:
        exact = len(q) * len(b) <= EXACT_MAX_PAIRS or b.shape[1] <= START_DIMS
    s, i = (_exact(q, b, kk, metric, exclude_self, cancel) if exact
            else _checked_approx(q, b, kk, metric, exclude_self, threads, cancel))
    if metric == "cosine":
        dist[:, :kk] = np.clip(1.0 - s, 0.0, 2.0)
        idx[:, :kk] = i
    else:  # the distances again from the vectors (|q|² - 2 q·b + |b|² loses digits for near rows)
        ok = i >= 0
        dl = np.full(i.shape, np.inf, np.float32)
        for start in range(0, len(q), 2048):  # memory: 2048 × k × d at a time
            part = slice(start, start + 2048)
            diff = (q[part, None, :] - b[np.where(ok[part], i[part], 0)]).astype(np.float64)
            dl[part] = np.where(ok[part], np.sqrt((diff * diff).sum(-1)), np.inf)
        order = np.lexsort((np.where(ok, i, np.iinfo(np.int64).max), dl), axis=1)
        dist[:, :kk] = np.take_along_axis(dl, order, 1)
        idx[:, :kk] = np.where(np.isfinite(dist[:, :kk]), np.take_along_axis(i, order, 1), -1)
    return dist, idx


def close_pairs(x: np.ndarray, max_dist: float, k: int = 4, metric: str = "cosine", *, exact: bool | None = None,
                threads: int = 1, cancel=None) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of rows of ``x`` at most ``max_dist`` apart where one is among the other's ``k``
    nearest: ``(pairs, dist)``, pairs ``(P, 2)`` int64 with ``i < j``, unique, sorted; dist
    ``(P,)`` float32. The ``k`` cap keeps it linear: a picture copied 1,000 times gives each copy
    ``k`` partners, not a million pairs (group exact copies first where that matters)."""
    d, i = knn(x, x, k, metric, exclude_self=True, exact=exact, threads=threads, cancel=cancel)
    return pairs_from_knn(d, i, max_dist)


def pairs_from_knn(dist: np.ndarray, idx: np.ndarray, max_dist: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`close_pairs` from a :func:`knn` answer of a set against itself (one search can serve
    both the pairs and e.g. an outlier score)."""
    rows, cols = np.nonzero((dist <= max_dist) & (idx >= 0))
    if not len(rows):
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    a, b = rows.astype(np.int64), idx[rows, cols]
    pairs = np.stack([np.minimum(a, b), np.maximum(a, b)], 1)
    pairs, first = np.unique(pairs, axis=0, return_index=True)
    return pairs, dist[rows, cols][first]


# -- inside ----------------------------------------------------------------------------------------


def _rows(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    if v.ndim == 1:
        v = v.reshape(0 if v.size == 0 else 1, -1) if v.size else v.reshape(0, 0)
    if v.ndim != 2:
        raise ValueError(f"expected rows of vectors (2-D), got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("the vectors hold NaN or infinite values")
    return np.ascontiguousarray(v)


def _unit(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero): one float32 copy."""
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.where(n > 0, n, 1)).astype(np.float32, copy=False)


def _scores(q: np.ndarray, b: np.ndarray, metric: str, b_sq: np.ndarray | None) -> np.ndarray:
    """Larger is nearer: inner products of unit rows (cosine) or 2 q·b - |b|² (l2)."""
    s = q @ b.T
    if metric == "l2":
        s *= 2
        s -= b_sq
    return s


def _exact(q, b, k, metric, exclude_self, cancel, rows: np.ndarray | None = None):
    """Exact top-k scores and indices, in row blocks of at most CHUNK_BYTES. ``rows``: the
    queries' own row numbers in ``b`` (to leave out with ``exclude_self``)."""
    from cnndesk.core.common.progress import check

    b_sq = (b.astype(np.float64) ** 2).sum(1).astype(np.float32)[None] if metric == "l2" else None
    step = max(1, CHUNK_BYTES // (4 * max(1, len(b))))
    out_s = np.empty((len(q), k), np.float32)
    out_i = np.empty((len(q), k), np.int64)
    own = np.arange(len(q)) if rows is None else rows
    for start in range(0, len(q), step):
        check(cancel)
        s = _scores(q[start:start + step], b, metric, b_sq)
        if exclude_self:
            s[np.arange(len(s)), own[start:start + step]] = -np.inf
        out_s[start:start + step], out_i[start:start + step] = _top(s, k)
    return out_s, out_i


def _top(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest per row, ordered by (-score, column): a tie goes to the lower column."""
    n, m = s.shape
    if m > k:
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(s, part, 1)
        kth = top.min(1)
        ties = np.flatnonzero((s >= kth[:, None]).sum(1) > k)  # rows where the k-th place is shared
        for r in ties:
            cand = np.flatnonzero(s[r] >= kth[r])
            part[r] = cand[np.lexsort((cand, -s[r, cand]))[:k]]
            top[r] = s[r, part[r]]
    else:
        part = np.broadcast_to(np.arange(m), (n, m)).copy()
        top = s.copy()
    order = np.lexsort((part, -top), axis=1)
    return np.take_along_axis(top, order, 1), np.take_along_axis(part, order, 1)


def _checked_approx(q, b, k, metric, exclude_self, threads, cancel):
    """The approximate top-k, its recall checked first on a sample of the queries: a shortlist of
    SHORTLIST × k from a search on the top ``dims`` axes (faiss, exact on those axes), ranked
    again on every value. ``dims`` is doubled until the sample finds MIN_RECALL of its exact
    top-k, then all queries are answered with it; when it reaches the full width, faiss's exact
    search on every value answers."""
    from cnndesk.core.common.progress import check

    d = b.shape[1]
    b_sq = (b.astype(np.float64) ** 2).sum(1).astype(np.float32) if metric == "l2" else None
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(len(q), min(len(q), RECALL_SAMPLE), replace=False))
    own = sample if exclude_self else None
    truth_s, truth_i = _exact(q[sample], b, k, metric, exclude_self, cancel, rows=own)
    axes = _axes(b)
    dims = min(START_DIMS, d)
    index = None
    while dims < d:
        check(cancel)
        index = None  # the last width's index goes before the next is built
        index = _flat(b @ axes[:, :dims], metric, threads)
        s, i = _shortlist(index, axes[:, :dims], q[sample], b, b_sq, k, metric, own, threads, cancel)
        if recall(s, i, truth_s, truth_i) >= MIN_RECALL:
            return _shortlist(index, axes[:, :dims], q, b, b_sq, k, metric,
                              np.arange(len(q)) if exclude_self else None, threads, cancel)
        dims *= 2
    index = None
    # every value: faiss's exact search (blocked products and heaps: about 2x numpy's here)
    return _shortlist(_flat(b, metric, threads), None, q, b, b_sq, k, metric,
                      np.arange(len(q)) if exclude_self else None, threads, cancel)


def recall(s, i, truth_s, truth_i) -> float:
    """Share of the exact top-k (``truth_s``, ``truth_i``: scores, larger is nearer, and indices)
    that an answer (``s``, ``i``) found; an answer tied with the exact k-th score counts as found."""
    found = (i[:, :, None] == truth_i[:, None, :]).any(2) | (s >= truth_s[:, -1:] - 1e-6)
    return float(found.sum()) / max(1, truth_i.size)


def _axes(b: np.ndarray) -> np.ndarray:
    """The base's principal axes through the origin (eigenvectors of bᵀb on a fixed sample of at
    most AXES_SAMPLE rows), strongest first: inner products and distances on the first few are
    the best few-value stand-ins for those on all values."""
    rng = np.random.default_rng(0)
    rows = b[np.sort(rng.choice(len(b), min(len(b), AXES_SAMPLE), replace=False))].astype(np.float64)
    _, vecs = np.linalg.eigh(rows.T @ rows)
    return np.ascontiguousarray(vecs[:, ::-1], np.float32)


def _faiss(threads: int):
    import faiss

    faiss.omp_set_num_threads(max(1, int(threads)))
    return faiss


def _flat(x: np.ndarray, metric: str, threads: int):
    """A faiss exact index of ``x`` (its blocked matrix products and top-k heaps)."""
    faiss = _faiss(threads)
    index = faiss.IndexFlatIP(x.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(x, np.float32))
    return index


def _shortlist(index, axes, q, b, b_sq, k, metric, own, threads, cancel):
    """SHORTLIST × k candidates per query from ``index`` (the base on ``axes``), scored again on
    every value (as the exact search scores them) and ordered by (-score, index). ``own``: the
    queries' row numbers in ``b``, left out of their answers (exclude_self), or None."""
    from cnndesk.core.common.progress import check

    _faiss(threads)
    want = min(index.ntotal, SHORTLIST * k + (1 if own is not None else 0))
    out_s = np.empty((len(q), k), np.float32)
    out_i = np.empty((len(q), k), np.int64)
    step = 2048  # memory: step × want × d for the exact scores of the candidates
    for start in range(0, len(q), step):
        check(cancel)
        qq = q[start:start + step]
        _, cand = index.search(np.ascontiguousarray(qq if axes is None else qq @ axes), want)
        if own is not None:
            cand[cand == own[start:start + len(qq), None]] = -1
        ok = cand >= 0
        safe = np.where(ok, cand, 0)
        s = np.einsum("nd,nkd->nk", qq, b[safe])
        if metric == "l2":
            s = 2 * s - b_sq[safe]
        s = np.where(ok, s, -np.inf).astype(np.float32)
        order = np.lexsort((np.where(ok, cand, np.iinfo(np.int64).max), -s), axis=1)[:, :k]
        out_s[start:start + step] = np.take_along_axis(s, order, 1)
        out_i[start:start + step] = np.where(np.isfinite(out_s[start:start + step]), np.take_along_axis(cand, order, 1), -1)
    return out_s, out_i
