"""The Label tab's visual groups: the cold start's graph-merged groups, their number chosen by the
modularity of the neighbour graph. The k-means silhouette used before chose 2 groups for folders
of 10 photo-like classes (two look-alike families of five): a user saw "2 groups" and could name
neither. Measured on generated folders in docs/benchmarks.md ("The Label tab's groups")."""

from __future__ import annotations

import numpy as np
import pytest

from cnndesk.core.labelling import grouping, picking


def families(classes_per_family=(3, 3), per_class=40, dim=64, family_gap=6.0, class_gap=1.6, noise=0.35, seed=0):
    """Classes that come in families: far apart between families, nearer (but apart) within."""
    rng = np.random.default_rng(seed)
    rows, y = [], []
    c = 0
    for n_cls in classes_per_family:
        family = rng.normal(size=dim) * family_gap / np.sqrt(dim)
        for _ in range(n_cls):
            centre = family + rng.normal(size=dim) * class_gap / np.sqrt(dim)
            rows.append(centre + rng.normal(size=(per_class, dim)) * noise / np.sqrt(dim))
            y += [c] * per_class
            c += 1
    return picking.space_from_z(np.concatenate(rows).astype(np.float32)), np.array(y)


@pytest.mark.parametrize("layout", [(3, 3), (5, 5), (2, 4, 2)])
def test_the_automatic_count_finds_the_classes_not_just_the_families(layout):
    space, y = families(layout)
    k = grouping.choose_group_count(space, 0)
    assert abs(k - sum(layout)) <= 1, (k, layout)
    # the k-means silhouette chose 2 groups for (3, 3) and 3 for (2, 4, 2): the families
    groups = grouping.visual_groups(space, k, 0)
    for c in np.unique(y):
        assert np.bincount(groups[y == c]).max() >= 0.9 * (y == c).sum()  # a class stays in one group


def test_small_and_odd_folders():
    space, _ = families((3,), per_class=1)
    assert grouping.choose_group_count(space, 0) == 1  # under 4 images: one group
    space, _ = families((1, 1), per_class=3)
    assert grouping.choose_group_count(space, 0) == 2
    one, _ = families((1,), per_class=30)
    assert 2 <= grouping.choose_group_count(one, 0) <= 10  # one blob: a few groups, never an error
    g = grouping.visual_groups(one, 3, 0)
    assert sorted(np.unique(g)) == [0, 1, 2] and len(g) == 30


def test_merge_pieces_tracks_modularity_of_every_count():
    space, y = families((3, 3))
    g = picking.piece_graph(space, 30, 0)
    group, modularity = picking.merge_pieces(g, 1)
    assert set(modularity) == set(range(1, 31)) and abs(modularity[1]) < 1e-9  # one group: 0 by definition
    assert max(modularity, key=modularity.get) in (5, 6, 7)
    # the incremental value equals the definition computed from scratch at 6 groups
    grp6, _ = picking.merge_pieces(g, 6)
    w = g.links + np.diag(g.inside)
    onehot = np.eye(grp6.max() + 1)[grp6]
    wc = onehot.T @ w @ onehot
    t = w.sum()
    assert modularity[6] == pytest.approx(np.trace(wc) / t - ((wc.sum(1) / t) ** 2).sum(), abs=1e-9)
