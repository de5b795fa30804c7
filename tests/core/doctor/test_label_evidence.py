"""The label check's evidence on look-alike classes (issue 23 item 2): rightly labelled images of
fine-grained classes (a capped and a plain ball) were reported at 0.05-0.17 for their own class;
small classes get a held-out head that sees more of them for longer."""

from __future__ import annotations

import numpy as np

from cnndesk.core.doctor import label_check as stats


def test_a_look_alike_needs_its_own_class_at_most_a_tenth():
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.15, 0.85],   # own class 0.15: a hard look-alike, not reported
                      [0.04, 0.96],   # own class 0.04: reported
                      [0.5, 0.5], [0.1, 0.9]])
    neighbours = np.array([[2, 3, 1], [2, 3, 0], [3, 0, 1], [2, 0, 1]])  # 0 and 1 sit among class 1
    strong = stats.strong_evidence(probs, y, neighbours)
    assert strong.tolist() == [False, True, False, False]


def _fits(monkeypatch, counts, d=256):  # fewer images than values (the big-set path differs)
    from cnndesk.core.training import head as quickfit

    calls = []
    real = quickfit.fit_linear

    def spy(z, y, k, **kw):
        calls.append((len(y), kw.get("epochs")))
        return real(z, y, k, **kw)

    monkeypatch.setattr(quickfit, "fit_linear", spy)
    rng = np.random.default_rng(0)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    x = (rng.normal(0, 1, (len(counts), d))[y] + rng.normal(0, 1, (len(y), d))).astype(np.float32)
    probs = stats.quick_oof_probs(x, y, len(counts))
    assert probs.shape == (len(y), len(counts)) and np.allclose(probs.sum(1), 1, atol=1e-5)
    return calls


def test_small_classes_get_ten_folds_of_longer_training(monkeypatch):
    # 30 a class: ten held-out heads, each trained on 90 % (27 a class) for 200 epochs
    calls = _fits(monkeypatch, [30, 30, 30])
    assert len(calls) == stats.LABEL_FOLDS_SMALL == 10
    assert {e for _, e in calls} == {stats.LABEL_EPOCHS_SMALL}
    assert all(n == 81 for n, _ in calls)


def test_bigger_classes_keep_five_folds(monkeypatch):
    calls = _fits(monkeypatch, [60, 60, 60])
    assert len(calls) == 5 and {e for _, e in calls} == {stats.LABEL_EPOCHS}
    # a class too small for ten folds caps them (every fold needs one of each)
    calls = _fits(monkeypatch, [30, 30, 4])
    assert len(calls) == 4


def test_surely_not_its_class_even_when_the_model_cannot_tell_which():
    """A box put among the balls, which the held-out model cannot place between two look-alike
    box classes (0.50 / 0.47): its class at 0.03 and none of its neighbours in it -> reported."""
    y = np.array([0, 0, 0, 1, 2])
    probs = np.array([[0.03, 0.50, 0.47],   # among boxes: reported
                      [0.03, 0.50, 0.47],   # one neighbour is a ball: not
                      [0.08, 0.50, 0.42],   # its class at 0.08: not
                      [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    neighbours = np.array([[3, 4], [3, 2], [3, 4], [4, 0], [3, 0]])
    strong = stats.strong_evidence(probs, y, neighbours)
    assert strong.tolist() == [True, False, False, False, False]
    assert not stats.strong_evidence(probs, y)[0]  # without neighbours: the model alone is unsure


def test_a_big_folder_of_small_classes_costs_what_it_did(monkeypatch):
    monkeypatch.setattr(stats, "SMALL_SET", 80)  # 90 images of 30 a class: above the cap
    calls = _fits(monkeypatch, [30, 30, 30])
    assert len(calls) == 5 and {e for _, e in calls} == {stats.LABEL_EPOCHS}
