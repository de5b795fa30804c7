"""The folder's visual groups for the Label workspace: the same graph-merged groups as the cold
start (:func:`.picking.merged_groups`) and their number, chosen automatically as the count whose
partition has the highest modularity on the folder's neighbour graph.

Why modularity rather than the k-means silhouette used before (2026-12-07, docs/benchmarks.md "The
Label tab's groups"): the silhouette of round k-means cells chose 2 groups on every 10-class
photo-like objects folder and 3-6 on folders of 10 glyph classes; the modularity of the merged
groups chose 7-11 for 6-10 classes on every generated family, and at the same count the merged
groups agree better with the classes than k-means cells.
"""

from __future__ import annotations

import numpy as np

from cnndesk.core.labelling.picking import (
    GRAPH_SAMPLE,
    MAX_GROUPS,
    MAX_PIECES,
    Space,
    merge_pieces,
    merged_groups,
    piece_graph,
)
from cnndesk.core.trust.scores import one_blas_thread


def choose_group_count(space: Space, seed: int = 0, max_groups: int = MAX_GROUPS) -> int:
    """The number of visual groups (2..max_groups, at most a third of the images): the one whose
    merged groups have the highest modularity on the neighbour graph (on at most GRAPH_SAMPLE
    images, cut into at most MAX_PIECES k-means pieces first); ties go to fewer groups."""
    n = len(space)
    if n < 4:
        return 1
    if n > GRAPH_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(n, GRAPH_SAMPLE, replace=False))
        space = Space(space.z[rows], space.unit[rows], space.coarse[rows])
    with one_blas_thread():
        g = piece_graph(space, min(len(space), MAX_PIECES), seed)
        _, modularity = merge_pieces(g, 1)
    hi = max(2, min(max_groups, n // 3))
    cands = {k: q for k, q in modularity.items() if 2 <= k <= hi}
    if not cands:
        return 2
    return max(cands, key=lambda k: (round(cands[k], 9), -k))


def visual_groups(space: Space, k: int, seed: int = 0) -> np.ndarray:
    """The group (0..k-1) of every row: the cold start's graph-merged groups."""
    with one_blas_thread():
        pieces, _, group_of_piece = merged_groups(space, k, seed)
    return group_of_piece[pieces]
