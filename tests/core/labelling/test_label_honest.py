"""Honest confidence when the user labels in their own order (issue 22, docs/benchmarks.md
"Honest confidence in the user's own order"): a temperature that does not run to its floor when
every out-of-fold answer is right, and no calibrated claim on a visual group no answer came from."""

from __future__ import annotations

import numpy as np

from cnndesk.core.labelling import LabelSession, fit_suggester, suggest
from cnndesk.core.labelling.suggest import FitInput
from cnndesk.core.trust import scores as trust


def _clusters(k: int, per: int, d: int = 24, spread: float = 0.35, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 2.0
    y = np.repeat(np.arange(k), per)
    return (centres[y] + rng.normal(size=(len(y), d)) * spread).astype(np.float32), y


def test_all_right_out_of_fold_answers_do_not_sharpen_the_temperature_to_its_floor():
    logits = np.array([[4.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 2.5], [3.5, 0.5, 0.0]] * 5)
    y = np.array([0, 1, 2, 0] * 5)
    assert trust.fit_temperature(logits, y) < 0.06  # the plain fit: every answer right, so T -> floor
    t = trust.fit_temperature(logits, y, prior=(1.0, 0.15))
    assert 0.5 < t < 1.0  # sharpened a little, as far as 20 answers can vouch for
    # many answers, some wrong: the evidence wins over the prior (drawn with T = 0.3)
    rng = np.random.default_rng(1)
    big = rng.normal(size=(2000, 3)) * 3
    yb = np.array([rng.choice(3, p=np.exp(r / 0.3) / np.exp(r / 0.3).sum()) for r in big])
    assert trust.fit_temperature(big, yb, prior=(1.0, 0.15)) < 0.4


def test_suggester_fitted_on_few_all_right_answers_keeps_a_temperature_near_one():
    z, y = _clusters(4, 5)  # 20 answers, 5 a class: calibrated, and every out-of-fold answer right
    m = fit_suggester(FitInput(z, y, ["a", "b", "c", "d"]))
    assert m.calibrated and m.estimated_accuracy == 1.0
    assert m.temperature > 0.5  # the old fit ran to 0.05: every image then showed at ~100 %


def test_images_in_a_visual_group_without_answers_get_no_calibrated_claim(tmp_path):
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 24)) * 2.0
    # two kinds the user never names, each a look-alike of a named one (apart enough to be groups)
    centres = np.concatenate([centres, centres[:2] + rng.normal(size=(2, 24)) * 1.5])
    y = np.repeat(np.arange(6), 40)
    z = (centres[y] + rng.normal(size=(len(y), 24)) * 0.25).astype(np.float32)
    paths = [str(tmp_path / f"img{i:03d}.png") for i in range(len(y))]
    s = LabelSession(tmp_path, paths, z, seed=0)
    names = ["a", "b", "c", "d", "e", "f"]
    for c in range(4):  # the user labels four of the six kinds of image
        for i in np.nonzero(y == c)[0][:5]:
            s.answer(paths[i], names[c])
    rep = s.suggestions()
    assert rep.calibrated
    score = {r.index: r.score for r in rep.rows}
    unnamed = [i for i in range(len(y)) if y[i] >= 4]
    raw = s.model().probs(s.space.z[unnamed]).max(1)
    assert (raw >= suggest.SHOWN).mean() > 0.5  # the model alone claims most of them at >= 90 %
    assert max(score[i] for i in unnamed) <= suggest.UNCALIBRATED_CAP + 1e-6
    named = [r.score for r in rep.rows if y[r.index] < 4]
    assert np.mean(np.array(named) >= suggest.SHOWN) > 0.5  # the labelled kinds are still shown
    grouped = s.in_labelled_group()
    assert grouped[y < 4].all() and not grouped[y >= 4].any()  # the groups are the six kinds
