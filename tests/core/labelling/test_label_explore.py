"""Exploration after the cold start (issue 22; off by default: picking.EXPLORE_SHARE = 0, it did not
find unseen classes sooner on the bench folders): the switches still do what they say."""

from __future__ import annotations

import numpy as np
import pytest

from cnndesk.core.labelling import LabelSession, explore, picking


def two_blobs_and_a_far_one(seed: int = 0):
    """Two big classes (answered) and a third, far from both, that nobody has named."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 64)) * 3
    y = np.repeat([0, 1, 2], [200, 200, 40])
    x = centres[y] + rng.normal(size=(len(y), 64))
    return x.astype(np.float32), y


@pytest.mark.parametrize("pick", ["cover", "far"])
def test_exploration_picks_land_where_no_answer_is_near(pick):
    x, y = two_blobs_and_a_far_one()
    space = picking.make_space(x, seed=0)
    answered = np.r_[np.nonzero(y == 0)[0][:5], np.nonzero(y == 1)[0][:5]]
    allowed = np.ones(len(y), bool)
    allowed[answered] = False
    if pick == "cover":
        picks = explore.cover_picks(space, answered, allowed, 1, explore.cover_radius(space))
    else:
        picks = explore.far_picks(space, answered, allowed, 1)
    assert len(picks) == 1 and y[picks[0].index] == 2 and picks[0].reason == "explore"


def test_the_share_fades_once_answers_cover_the_folder(tmp_path, monkeypatch):
    x, y = two_blobs_and_a_far_one(1)
    s = LabelSession(tmp_path, [str(tmp_path / f"{i}.png") for i in range(len(y))], x)
    monkeypatch.setattr(picking, "EXPLORE_SHARE", 0.5)
    few = np.r_[0, 200]
    assert s._explore_count(10, few) >= 4  # two answers cover little of the folder
    assert s._explore_count(10, np.arange(len(y))) == 0
    monkeypatch.setattr(picking, "EXPLORE_SHARE", 0.0)
    assert s._explore_count(10, few) == 0


def test_default_asks_after_the_cold_start_are_uncertain_only(tmp_path):
    x, y = two_blobs_and_a_far_one(2)
    s = LabelSession(tmp_path, [str(tmp_path / f"{i}.png") for i in range(len(y))], x)
    for i in np.r_[np.nonzero(y == 0)[0][:3], np.nonzero(y == 1)[0][:3]]:
        s.answer(int(i), f"c{y[i]}")
    assert picking.EXPLORE_SHARE == 0.0
    assert {q.kind for q in s.ask(5)} == {"uncertain"}
