"""Which images to ask about, and the folder's visual groups (numpy + scikit-learn's k-means).

The space: the embeddings standardized (:func:`cnndesk.core.trust.scores.standardizer`) and rotated onto
their top 128 principal axes, fitted on the whole folder (no labels needed), then scaled by one
number (not per axis: whitening the axes would blow up the noise in the weak ones). The classifier learns
on these values; cosine similarity of them finds near-duplicates and typical images.

* Cold start (TypiClust, Hacohen et al. 2022, on graph-merged groups): k = labelled + asked
  groups; from the biggest groups that hold no answered image, the most typical member (the
  densest: smallest mean distance to its nearest neighbours) of the group's biggest piece. The
  groups (:func:`merged_groups`): k-means into 5 k pieces, merged along the 10-nearest-neighbour
  graph (average linkage) down to k. Plain k-means with k cells (TypiClust's own) cuts a big,
  spread-out class into several cells and folds small classes into them, so on imbalanced folders
  the first k asks went to the big classes several times; neighbours in the features are of the
  same class far more often than k-means cells are (objects folders: 10-NN class agreement 86 %,
  the k cells' NMI with the classes 0.6). First k asks, tuning folders (seeds 0-1, 6 k-means
  seeds each): classes hit 61 -> 66 % on the imbalanced objects, 92 -> 96 % symbols, 94 -> 99 %
  shapes, 96 -> 100 % textures.
* Later: margin-uncertain images (top two class probabilities close), diversified by k-means over
  the most uncertain candidates so one batch does not ask ten times about the same confusion; each
  cluster gives its most typical member (uncertainty balanced with typicality). An exploring
  share (:data:`EXPLORE_SHARE`, :data:`EXPLORE`: ProbCover-style cover, unanswered groups,
  k-center) is possible but off: on the bench folders it did not find the classes not named yet
  sooner (docs/benchmarks.md, "After the cold start").
* Never: images already answered, unreadable files (they are not in the space) or near-duplicates
  of answered images or of each other (cosine >= :data:`DUPLICATE_SIMILARITY`).

Measured on small grey symbols (DESIGN.md): this beat random picks by 16/18/6/8 points of
accuracy at 10/20/50/100 labels of 1,200. Qt-free and torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnndesk.core.trust import scores as trust

DIM = 128
COARSE_DIM = 32  # groups and cold-start clusters: the top axes only (first K asks hit 94 % of the
# classes on the tuning folders, vs 92 % on all 128 axes)
Z_NORM = 4.0  # the rows' RMS length: one global scale, so the classifier's regularisation fits any network
PCA_SAMPLE = 2000  # principal axes from at most this many images (time; memory at 50,000 images)
DUPLICATE_SIMILARITY = 0.97  # embeddings (cosine in the space)
# thumbnails (cnndesk.core.doctor.duplicates.search_vectors): resized + JPEG copies measured >= 0.987,
# different generated images at most 0.98 for 99 % (small grey symbols, the most alike)
PIXEL_DUPLICATE_SIMILARITY = 0.985
TYPICAL_NEIGHBOURS = 20
TYPICAL_REF = 3000  # a cluster's density is measured against at most this many of its members
TYPICAL_CANDIDATES = 200  # big clusters: the typical image is sought among the members nearest the centre,
TYPICAL_REF_BIG = 1000  # its density measured against this many members (folders of 1,200: never reached)
# After the cold start (tuned on the seed-0/1 symbol folders, batches of 10; accuracy at 20/50/100
# labels: this 0.895/0.955/0.994, with 20 % typical picks of unanswered groups 0.878/0.944/0.990,
# typical-only until 2 labels per class 0.886/0.952/0.993, random 0.687/0.912/0.939):
TYPICAL_PER_CLASS = 0  # only typical picks until this many labels per known class
EXPLORE_SHARE = 0.0  # of a batch: typical images of groups with no answers (classes not seen yet)
# Exploration after the cold start (issue 22, classes the user has not named yet): EXPLORE picks
# EXPLORE_SHARE x n x (uncovered share of the folder) of each batch, so it fades as the answers
# cover the folder. "cover": ProbCover-style (Yehuda et al. 2022), the image with the most
# uncovered images within the radius among those no answered image covers; "groups": the typical
# images of unanswered graph-merged groups (typical_picks). Covered: cosine >= the folder's
# median similarity to its COVER_NEIGHBOURS-th nearest neighbour.
EXPLORE = "cover"  # "cover" | "groups" | "far" (| "random": a bench control, in the session)
CANDIDATES_PER_PICK = 8  # uncertain candidates per asked image, clustered for diversity
PICK_TYPICAL_IN_CLUSTER = True  # each diversity cluster gives its most typical member (else its most uncertain)
# which member a diversity cluster gives: None (by PICK_TYPICAL_IN_CLUSTER), "mixed" (the clusters
# alternate: most typical, most uncertain, ...), "far" (the one least similar to every answered image)
PICK_MEMBER: str | None = None
MAX_GROUPS = 40
# The cold start's groups (:func:`merged_groups`): k-means pieces merged along the neighbour graph.
COLD_START = "merged"  # or "typiclust": k plain k-means clusters (before 2026-12-07)
OVERCLUSTER = 5  # pieces per group
MAX_PIECES = 200  # beyond k = 40 groups fewer pieces per group (the merging is m^3 / 6 operations)
GRAPH_NEIGHBOURS = 10
GRAPH_SAMPLE = 3000  # the neighbour graph on at most this many images (an N x N similarity otherwise)


@dataclass
class Space:
    """The folder's images in the labelling space: ``z`` (N, <=DIM) and its unit rows ``unit``."""

    z: np.ndarray
    unit: np.ndarray
    coarse: np.ndarray | None = None  # unit rows of the top COARSE_DIM axes: what groups are made of
    pixels: np.ndarray | None = None  # the doctor's thumbnail search vectors (re-encoded copies >= 0.987)

    def __post_init__(self):
        if self.coarse is None:
            c = self.z[:, :COARSE_DIM]
            self.coarse = (c / (np.linalg.norm(c, axis=1, keepdims=True) + 1e-12)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.z)


def make_space(x: np.ndarray, dim: int = DIM, seed: int = 0, pixels: np.ndarray | None = None) -> Space:
    """Standardize, then project ``x`` (N, D) onto its top ``dim`` principal axes (fitted on at
    most PCA_SAMPLE rows), in chunks: memory stays near N x dim beyond the embeddings."""
    x = np.asarray(x, np.float32)
    n = len(x)
    rng = np.random.default_rng(seed)
    sample = x if n <= PCA_SAMPLE else x[np.sort(rng.choice(n, PCA_SAMPLE, replace=False))]
    mean, scale = trust.standardizer(sample)
    with trust.one_blas_thread():
        zs = (sample - mean) / scale
        centre = zs.mean(0)
        zs -= centre
        proj = top_axes(zs, min(dim, max(1, len(sample) - 1)), rng) if zs.shape[1] > dim else None
        del zs
        out_dim = proj.shape[1] if proj is not None else x.shape[1]
        z = np.empty((n, out_dim), np.float32)
        for s in range(0, n, 4096):
            part = (x[s:s + 4096] - mean) / scale - centre
            z[s:s + 4096] = part @ proj if proj is not None else part
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    z *= Z_NORM / (float(np.sqrt((norms**2).mean())) + 1e-12)
    return space_from_z(z, pixels)


def space_from_z(z: np.ndarray, pixels: np.ndarray | None = None) -> Space:
    """The Space of rows ``z`` already made by :func:`make_space` (e.g. read back from the cache)."""
    z = np.asarray(z, np.float32)
    return Space(z, (z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)).astype(np.float32), pixels=pixels)


def top_axes(zc: np.ndarray, r: int, rng: np.random.Generator, power: int = 2) -> np.ndarray:
    """The top ``r`` principal axes (D, r) of centred rows ``zc``, by a randomized range finder
    with power iterations (Halko et al. 2011): a full eigendecomposition of the 1,200 x 1,200
    Gram matrix took 3 s on a busy core, this 0.2 s."""
    k = min(r + 10, *zc.shape)
    y = zc @ rng.normal(size=(zc.shape[1], k)).astype(np.float32)
    for _ in range(power):
        y, _ = np.linalg.qr(y)
        y = zc @ (zc.T @ y)
    q, _ = np.linalg.qr(y)
    _, _, vt = np.linalg.svd(q.T @ zc, full_matrices=False)
    return np.ascontiguousarray(vt[:r].T, dtype=np.float32)


def kmeans(z: np.ndarray, k: int, seed: int = 0, iters: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """(cluster of each row, centres): k-means++ seeding then Lloyd iterations, numpy only (no
    scikit-learn import on the ask path: it cost seconds per CLI call). Beyond 20,000 rows the
    centres are fitted on a sample and every row is then assigned."""
    z = np.asarray(z, np.float32)
    if not np.isfinite(z).all():  # a NaN row made k-means++ raise (OverflowError): such rows sit at 0
        z = np.where(np.isfinite(z), z, 0.0).astype(np.float32)
    n = len(z)
    k = max(1, min(int(k), n))
    rng = np.random.default_rng(seed)
    fit_on = z if n <= 20_000 else z[rng.choice(n, 20_000, replace=False)]
    with trust.one_blas_thread():
        sq = (fit_on * fit_on).sum(1)
        centres = _kmeans_pp(fit_on, sq, k, rng)
        labels = np.zeros(len(fit_on), int)
        for it in range(iters):
            new = _assign(fit_on, sq, centres)
            if it and np.array_equal(new, labels):
                break
            labels = new
            sums = np.zeros_like(centres)
            np.add.at(sums, labels, fit_on)
            counts = np.bincount(labels, minlength=k)
            empty = counts == 0
            centres = np.where(empty[:, None], centres, sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        if fit_on is not z:
            labels = _assign(z, (z * z).sum(1), centres)
    return labels, centres


def _assign(z: np.ndarray, sq: np.ndarray, centres: np.ndarray, chunk: int = 8192) -> np.ndarray:
    out = np.empty(len(z), int)
    csq = (centres * centres).sum(1)
    for s in range(0, len(z), chunk):
        d = sq[s:s + chunk, None] - 2.0 * z[s:s + chunk] @ centres.T + csq[None, :]
        out[s:s + chunk] = d.argmin(1)
    return out


def _kmeans_pp(z: np.ndarray, sq: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (greedy: the best of 2 + log k candidates each step)."""
    n = len(z)
    tries = 2 + int(np.log(k))
    centres = np.empty((k, z.shape[1]), np.float32)
    centres[0] = z[rng.integers(n)]
    best = np.maximum(sq - 2.0 * z @ centres[0] + centres[0] @ centres[0], 0)
    for c in range(1, k):
        total = best.sum()
        if total <= 0:  # fewer distinct points than clusters
            centres[c:] = z[rng.integers(n, size=k - c)]
            break
        cand = np.searchsorted(np.cumsum(best), rng.uniform(0, total, tries))
        cand = np.minimum(cand, n - 1)
        d = np.maximum(sq[None, :] - 2.0 * z[cand] @ z.T + sq[cand][:, None], 0)
        new = np.minimum(best[None, :], d)
        j = int(new.sum(1).argmin())
        centres[c] = z[cand[j]]
        best = new[j]
    return centres


def typicality(unit: np.ndarray, members: np.ndarray, k: int = TYPICAL_NEIGHBOURS,
               candidates: np.ndarray | None = None, ref_limit: int = TYPICAL_REF) -> np.ndarray:
    """Typicality of each of ``candidates`` (default: every member) within one cluster: 1 / mean
    cosine distance to its k nearest fellow members (TypiClust's density). Beyond ``ref_limit``
    members the density is measured against a sample of them; rows go in chunks (memory)."""
    rows = members if candidates is None else np.asarray(candidates)
    if len(members) <= 1 or len(rows) == 0:
        return np.ones(len(rows), np.float32)
    if len(members) > ref_limit:  # density against a sample: the order barely changes
        ref = members[np.random.default_rng(0).choice(len(members), ref_limit, replace=False)]
    else:
        ref = members
    kk = min(k, len(ref) - 1)
    bank = unit[ref].T
    out = np.empty(len(rows), np.float32)
    for s in range(0, len(rows), 2048):
        sim = unit[rows[s:s + 2048]] @ bank
        # the kk+1 largest similarities include the point itself (1.0) when it is in ref
        dist = 1.0 - np.partition(sim, -(kk + 1), axis=1)[:, -(kk + 1):]
        mean = (dist.sum(1) - dist.min(1)) / kk
        out[s:s + 2048] = 1.0 / (mean + 1e-6)
    return out


def near_duplicates(space: Space, answered: np.ndarray) -> np.ndarray:
    """Bool mask over all rows: a near-duplicate of some row in ``answered`` (indices), by the
    embeddings or by the thumbnails (resized/re-encoded copies are not always close in features)."""
    mask = np.zeros(len(space), bool)
    if len(answered) == 0:
        return mask
    pairs = [(space.unit, DUPLICATE_SIMILARITY)]
    if space.pixels is not None:
        pairs.append((space.pixels, PIXEL_DUPLICATE_SIMILARITY))
    for vecs, threshold in pairs:
        bank = vecs[answered]
        for s in range(0, len(space), 2048):
            mask[s:s + 2048] |= (vecs[s:s + 2048] @ bank.T).max(1) >= threshold
    return mask


@dataclass
class Pick:
    index: int
    reason: str  # "typical" | "uncertain"
    group_size: int = 0
    margin: float | None = None
    between: tuple[int, int] | None = None  # the two classes it falls between (uncertain picks)


def typical_picks(space: Space, answered: np.ndarray, allowed: np.ndarray, n: int, seed: int = 0,
                  method: str | None = None) -> list[Pick]:
    """The cold start: k = len(answered) + n groups (:func:`merged_groups`, or plain k-means with
    ``method="typiclust"``); from the biggest groups that hold no answered image, the most typical
    allowed member of the group's biggest piece (TypiClust's pick). Fills up from the most typical
    of the rest when there are fewer such groups than ``n``."""
    cand = np.nonzero(allowed)[0]
    if n <= 0 or len(cand) == 0:
        return []
    k = min(len(space), len(answered) + n)
    if (method or COLD_START) == "merged" and k > 1:
        pieces, centres, group_of_piece = merged_groups(space, k, seed)
    else:
        pieces, centres = kmeans(space.coarse, k, seed)
        group_of_piece = np.arange(len(centres))
    groups = group_of_piece[pieces]
    n_groups = int(group_of_piece.max()) + 1
    covered = set(groups[answered].tolist()) if len(answered) else set()
    sizes = np.bincount(groups, minlength=n_groups)
    piece_sizes = np.bincount(pieces, minlength=len(centres))
    order = sorted((g for g in range(n_groups) if sizes[g]), key=lambda g: (g in covered, -sizes[g]))
    picks: list[Pick] = []
    taken = np.zeros(len(space), bool)
    for g in order:
        if len(picks) >= n:
            break
        # the group's pieces, biggest first: the first with an allowed, non-duplicate member gives the pick
        for c in sorted(np.nonzero(group_of_piece == g)[0], key=lambda c: -piece_sizes[c]):
            pick = _most_typical(space, np.nonzero(pieces == c)[0], allowed, centres[c], taken)
            if pick is not None:
                picks.append(Pick(pick, "typical", int(sizes[g])))
                taken[pick] = True
                break
    if len(picks) < n:  # fewer usable groups than asked: the most typical of the rest
        rest = cand[~taken[cand]]
        typ = typicality(space.unit, rest) if len(rest) else np.array([])
        for j in np.argsort(-typ):
            if len(picks) >= n:
                break
            i = int(rest[j])
            if not dupe_of(space, i, taken):
                picks.append(Pick(i, "typical", 0))
                taken[i] = True
    return picks


def _most_typical(space: Space, members: np.ndarray, allowed: np.ndarray, centre: np.ndarray,
                  taken: np.ndarray) -> int | None:
    """The most typical allowed member of one cluster that is no near-duplicate of ``taken``."""
    ok = members[allowed[members]]
    if len(ok) == 0:
        return None
    ref_limit = TYPICAL_REF
    if len(ok) > TYPICAL_CANDIDATES:  # the densest members lie near the centre: N x N work avoided
        near = space.coarse[ok] @ centre
        ok = ok[np.sort(np.argpartition(-near, TYPICAL_CANDIDATES)[:TYPICAL_CANDIDATES])]
        ref_limit = TYPICAL_REF_BIG
    typ = typicality(space.unit, members, candidates=ok, ref_limit=ref_limit)
    for j in np.argsort(-typ):
        i = int(ok[j])
        if not dupe_of(space, i, taken):
            return i
    return None


def merged_groups(space: Space, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Groups that follow the folder's neighbour graph rather than k-means' round cells:
    k-means into OVERCLUSTER x k pieces (on the top COARSE_DIM axes), then the pieces merged,
    most connected pair first, until k groups remain. Connection of two groups: the
    GRAPH_NEIGHBOURS-nearest-neighbour links between their images (cosine in the 128 axes, on a
    sample of at most GRAPH_SAMPLE images) divided by the product of their sizes (average linkage
    on the graph). A class that k-means cuts into several pieces (big classes, spread over
    backgrounds) is joined again, while a small class that k-means would fold into a big
    neighbour keeps a piece of its own and, with few links out, its own group.
    Returns (piece of each row, the pieces' centres, group of each piece: 0..groups-1)."""
    m = min(len(space), max(k, min(OVERCLUSTER * k, MAX_PIECES)))
    g = piece_graph(space, m, seed)
    group, _ = merge_pieces(g, k)
    return g.pieces, g.centres, group


@dataclass
class PieceGraph:
    """k-means pieces of a folder and the neighbour links between them (:func:`piece_graph`)."""

    pieces: np.ndarray  # piece of each row
    centres: np.ndarray
    links: np.ndarray  # (m, m) links between pieces, both directions, 0 on the diagonal
    inside: np.ndarray  # (m,) links within each piece (both directions)
    size: np.ndarray  # (m,) sampled images per piece, as the links are counted


def piece_graph(space: Space, m: int, seed: int = 0) -> PieceGraph:
    """k-means into ``m`` pieces, and the GRAPH_NEIGHBOURS-nearest-neighbour links between them
    (cosine in the 128 axes, on a sample of at most GRAPH_SAMPLE images)."""
    n = len(space)
    pieces, centres = kmeans(space.coarse, m, seed)
    m = len(centres)
    counts = np.bincount(pieces, minlength=m).astype(np.float64)
    rng = np.random.default_rng(seed)
    sample = np.arange(n) if n <= GRAPH_SAMPLE else np.sort(rng.choice(n, GRAPH_SAMPLE, replace=False))
    links = np.zeros((m, m))
    kk = min(GRAPH_NEIGHBOURS, len(sample) - 1)
    if kk >= 1:
        u = space.unit[sample]
        ps = pieces[sample]
        for s in range(0, len(sample), 1024):
            sim = u[s:s + 1024] @ u.T
            sim[np.arange(len(sim)), np.arange(s, s + len(sim))] = -np.inf  # not oneself
            nn = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
            np.add.at(links, (np.repeat(ps[s:s + 1024], kk), ps[nn].ravel()), 1.0)
    links = links + links.T
    inside = np.diag(links).copy()
    np.fill_diagonal(links, 0.0)
    return PieceGraph(pieces, centres, links, inside, counts * (len(sample) / n))


def merge_pieces(g: PieceGraph, k: int) -> tuple[np.ndarray, dict[int, float]]:
    """Merge the pieces, the pair with the most links per product of sizes first (average
    linkage on the graph), until ``k`` groups remain. Returns (group of each piece: 0..groups-1,
    the partition's modularity on the neighbour graph at every group count passed through)."""
    m = len(g.size)
    links, size = g.links.copy(), g.size.copy()
    alive = size > 0
    group = np.arange(m)
    total = float(links.sum() + g.inside.sum()) or 1.0
    deg = links.sum(1) + g.inside
    q = float(g.inside.sum() / total - ((deg / total) ** 2).sum())
    modularity = {int(alive.sum()): q}
    while alive.sum() > k:
        with np.errstate(divide="ignore", invalid="ignore"):
            score = links / np.outer(size, size)
        score[~alive, :] = -1.0
        score[:, ~alive] = -1.0
        np.fill_diagonal(score, -1.0)
        a, b = divmod(int(np.argmax(score)), m)
        q += 2.0 * links[a, b] / total - 2.0 * deg[a] * deg[b] / total**2
        deg[a] += deg[b]
        links[a] += links[b]
        links[:, a] += links[:, b]
        links[a, a] = 0.0
        links[b] = 0.0
        links[:, b] = 0.0
        size[a] += size[b]
        alive[b] = False
        group[group == b] = a
        modularity[int(alive.sum())] = q
    _, group = np.unique(group, return_inverse=True)
    return group.astype(int), modularity


def candidates(allowed: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the rows ``allowed`` and not in ``exclude`` (both bool masks)."""
    return np.nonzero(allowed if exclude is None else allowed & ~exclude)[0]


def uncertain_picks(space: Space, probs: np.ndarray, allowed: np.ndarray, n: int, seed: int = 0,
                    exclude: np.ndarray | None = None, answered: np.ndarray | None = None) -> list[Pick]:
    """Margin sampling diversified by k-means: the CANDIDATES_PER_PICK x n allowed images with
    the smallest margin between their top two probabilities (``probs``: (N, k) over all rows)
    are clustered into n groups; each group gives its most uncertain member."""
    cand = candidates(allowed, exclude)
    if n <= 0 or len(cand) == 0:
        return []
    top2 = -np.partition(-probs[cand], 1, axis=1)[:, :2] if probs.shape[1] > 1 else np.c_[probs[cand], probs[cand] * 0]
    margin = top2[:, 0] - top2[:, 1]
    m = min(len(cand), max(n * CANDIDATES_PER_PICK, n))
    keep = np.argsort(margin, kind="stable")[:m]
    pool, pool_margin = cand[keep], margin[keep]
    labels, _ = kmeans(space.z[pool], min(n, len(pool)), seed)
    picks: list[Pick] = []
    taken = np.zeros(len(space), bool)
    far = None
    if PICK_MEMBER == "far" and answered is not None and len(answered):
        far = -(space.unit[pool] @ space.unit[answered].T).max(1)
    for ci, c in enumerate(np.unique(labels)):
        idx = np.nonzero(labels == c)[0]
        order = np.argsort(pool_margin[idx], kind="stable")
        if far is not None:
            order = np.argsort(-far[idx], kind="stable")
        elif (PICK_MEMBER == "mixed" and ci % 2 == 0) or (PICK_MEMBER is None and PICK_TYPICAL_IN_CLUSTER):
            order = np.argsort(-typicality(space.unit, pool[idx]), kind="stable")
        for j in idx[order]:
            i = int(pool[j])
            if not dupe_of(space, i, taken):
                order = np.argsort(-probs[i])[:2]
                picks.append(Pick(i, "uncertain", len(idx), float(pool_margin[j]), (int(order[0]), int(order[-1]))))
                taken[i] = True
                break
    picks.sort(key=lambda p: p.margin)
    for j in np.argsort(pool_margin, kind="stable"):  # clusters lost to duplicates: fill up
        if len(picks) >= n:
            break
        i = int(pool[j])
        if not taken[i] and not dupe_of(space, i, taken):
            order = np.argsort(-probs[i])[:2]
            picks.append(Pick(i, "uncertain", 0, float(pool_margin[j]), (int(order[0]), int(order[-1]))))
            taken[i] = True
    return picks[:n]


def dupe_of(space: Space, i: int, taken: np.ndarray) -> bool:
    t = np.nonzero(taken)[0]
    if not len(t):
        return False
    if float((space.unit[t] @ space.unit[i]).max()) >= DUPLICATE_SIMILARITY:
        return True
    return space.pixels is not None and float((space.pixels[t] @ space.pixels[i]).max()) >= PIXEL_DUPLICATE_SIMILARITY
