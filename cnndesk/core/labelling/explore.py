"""Exploring asks after the cold start (off by default: ``picking.EXPLORE_SHARE`` = 0; measured in
docs/benchmarks.md, "After the cold start: exploring for classes not named yet"): ProbCover's
greedy coverage of what the answers leave uncovered, and k-center greedy (the image least like
any answered one)."""

from __future__ import annotations

import numpy as np

from cnndesk.core.labelling.picking import Pick, Space, candidates, dupe_of

COVER_NEIGHBOURS = 10
COVER_SAMPLE = 3000  # the radius and the densities on at most this many images


def cover_radius(space: Space, seed: int = 0, k: int = COVER_NEIGHBOURS) -> float:
    """The similarity an image must have to an answered one to count as covered: the median over
    (a sample of) the folder of each image's similarity to its ``k``-th nearest neighbour."""
    n = len(space)
    if n < 2:
        return 1.0
    rng = np.random.default_rng(seed)
    sample = np.arange(n) if n <= COVER_SAMPLE else np.sort(rng.choice(n, COVER_SAMPLE, replace=False))
    u = space.unit[sample]
    kk = min(k, len(sample) - 1)
    kth = np.empty(len(sample), np.float32)
    for s in range(0, len(sample), 1024):
        sim = u[s:s + 1024] @ u.T
        sim[np.arange(len(sim)), np.arange(s, s + len(sim))] = -np.inf
        kth[s:s + 1024] = -np.partition(-sim, kk - 1, axis=1)[:, kk - 1]
    return float(np.median(kth))


def _best_similarity(space: Space, rows: np.ndarray, answered: np.ndarray) -> np.ndarray:
    """Each of ``rows``' cosine to its most similar answered image (blocks of 4,096 rows)."""
    out = np.empty(len(rows), np.float32)
    bank = space.unit[answered].T
    for s in range(0, len(rows), 4096):
        out[s:s + 4096] = (space.unit[rows[s:s + 4096]] @ bank).max(1)
    return out


def covered(space: Space, answered: np.ndarray, radius: float) -> np.ndarray:
    """Bool mask: within ``radius`` (cosine) of some answered image."""
    if len(answered) == 0:
        return np.zeros(len(space), bool)
    return _best_similarity(space, np.arange(len(space)), answered) >= radius


def cover_picks(space: Space, answered: np.ndarray, allowed: np.ndarray, n: int, radius: float,
                seed: int = 0, exclude: np.ndarray | None = None) -> list[Pick]:
    """ProbCover's greedy step on what the answers leave uncovered: n times, the allowed,
    uncovered image with the most uncovered images within ``radius``; its ball then counts as
    covered. Densities are counted on a sample of at most COVER_SAMPLE uncovered images."""
    cov = covered(space, answered, radius)
    cand = candidates(allowed & ~cov, exclude)
    if n <= 0 or len(cand) == 0:
        return []
    rng = np.random.default_rng(seed)
    open_ = np.nonzero(~cov)[0]
    if len(open_) > COVER_SAMPLE:
        open_ = np.sort(rng.choice(open_, COVER_SAMPLE, replace=False))
    if len(cand) > COVER_SAMPLE:
        cand = np.sort(rng.choice(cand, COVER_SAMPLE, replace=False))
    ball = (space.unit[cand] @ space.unit[open_].T) >= radius  # (candidates, uncovered)
    alive = np.ones(len(open_), bool)
    picks: list[Pick] = []
    taken = np.zeros(len(space), bool)
    while len(picks) < n:
        gain = ball[:, alive].sum(1) if alive.any() else np.zeros(len(cand), int)
        gain[taken[cand]] = -1
        j = int(np.argmax(gain))
        if gain[j] <= 0:
            break
        i = int(cand[j])
        taken[i] = True
        if not dupe_of(space, i, taken & (np.arange(len(space)) != i)):
            picks.append(Pick(i, "explore", int(gain[j])))
        alive &= ~ball[j]
    return picks


def far_picks(space: Space, answered: np.ndarray, allowed: np.ndarray, n: int,
              exclude: np.ndarray | None = None) -> list[Pick]:
    """k-center greedy (Sener & Savarese 2018): n times, the allowed image least similar to every
    answered or already picked image."""
    cand = candidates(allowed, exclude)
    if n <= 0 or len(cand) == 0:
        return []
    near = _best_similarity(space, cand, answered) if len(answered) else np.full(len(cand), -np.inf, np.float32)
    picks: list[Pick] = []
    for _ in range(min(n, len(cand))):
        j = int(np.argmin(near))
        i = int(cand[j])
        picks.append(Pick(i, "explore", 0))
        near = np.maximum(near, space.unit[cand] @ space.unit[i])
        near[j] = np.inf
    return picks
