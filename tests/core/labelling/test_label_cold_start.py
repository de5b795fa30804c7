"""The cold start on imbalanced folders: groups follow the neighbour graph (issue 22).

The stand-in folder: one big class spread along an arc (300 images whose look varies
continuously, like one object on many backgrounds) and three small, tight classes (15 images
each) beside it. Plain k-means with k = 4 cuts the arc into pieces and folds the small classes
into them, so the first four asks land on the big class; the pieces merged along the
nearest-neighbour graph give one group per class.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnndesk.core.labelling import LabelSession, picking

NO_ANSWERS = np.array([], int)


def arc_and_blobs(seed: int, big: int = 300, small: int = 15, blobs=(240, 280, 320)):
    """Embeddings (N, 200) and their classes: 0 = the arc (0..200 degrees), 1.. = the blobs."""
    rng = np.random.default_rng(seed)
    angles = [rng.uniform(0, 200, big)] + [rng.normal(a, 3, small) for a in blobs]
    y = np.concatenate([np.full(len(a), i) for i, a in enumerate(angles)])
    a = np.deg2rad(np.concatenate(angles))
    x = np.c_[np.cos(a), np.sin(a)] @ rng.normal(size=(2, 200)) + 0.3 * rng.normal(size=(len(a), 200))
    return x.astype(np.float32), y


def first_asks(x, y, method, n=None, seed=0):
    space = picking.make_space(x, seed=0)
    n = n or int(y.max()) + 1
    picks = picking.typical_picks(space, NO_ANSWERS, np.ones(len(x), bool), n, seed, method=method)
    return [p.index for p in picks]


@pytest.mark.parametrize("seed", range(4))
def test_first_k_asks_cover_every_class_of_an_imbalanced_folder(seed):
    x, y = arc_and_blobs(seed)
    new = first_asks(x, y, "merged")
    assert len(new) == 4 and len(set(new)) == 4
    assert set(y[new]) == {0, 1, 2, 3}
    # the picks before: k plain k-means cells, the biggest first -> the arc asked about several times
    old = first_asks(x, y, "typiclust")
    assert len(set(y[old])) < 4


def test_the_session_cold_start_uses_the_merged_groups(tmp_path):
    x, y = arc_and_blobs(7)
    paths = [str(tmp_path / f"img_{i:04d}.png") for i in range(len(x))]
    s = LabelSession(tmp_path, paths, x)
    assert picking.COLD_START == "merged"
    qs = s.ask(4)
    assert {int(y[q.index]) for q in qs} == {0, 1, 2, 3}
    assert all(q.kind == "typical" and "typical" in q.reason for q in qs)


def test_groups_with_an_answer_go_last():
    x, y = arc_and_blobs(1)
    space = picking.make_space(x, seed=0)
    arc = int(np.nonzero(y == 0)[0][0])
    allowed = np.ones(len(x), bool)
    allowed[arc] = False
    picks = picking.typical_picks(space, np.array([arc]), allowed, 3, 0)
    assert sorted(int(y[p.index]) for p in picks) == [1, 2, 3]


def test_merged_groups_shape_and_small_inputs():
    x, _ = arc_and_blobs(2)
    space = picking.make_space(x, seed=0)
    pieces, centres, group_of_piece = picking.merged_groups(space, 4, 0)
    assert pieces.shape == (len(x),) and len(centres) == len(group_of_piece)
    assert len(np.unique(group_of_piece[pieces])) == 4  # exactly k non-empty groups
    assert len(centres) == picking.OVERCLUSTER * 4
    tiny = picking.make_space(x[:6], seed=0)  # fewer images than pieces wanted
    pieces, centres, group_of_piece = picking.merged_groups(tiny, 4, 0)
    assert len(np.unique(group_of_piece[pieces])) <= 4
    picks = picking.typical_picks(tiny, NO_ANSWERS, np.ones(6, bool), 6, 0)
    assert sorted(p.index for p in picks) == list(range(6))


def test_the_neighbour_graph_on_a_sample_of_a_big_folder(monkeypatch):
    monkeypatch.setattr(picking, "GRAPH_SAMPLE", 600)  # the folder (1,380 images) is "big" here
    x, y = arc_and_blobs(3, big=1200, small=60)
    assert set(y[first_asks(x, y, "merged")]) == {0, 1, 2, 3}
