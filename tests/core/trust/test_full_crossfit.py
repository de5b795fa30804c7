"""Full models' threshold from more held-out in-class scores (issue 23, sixth step): the training
images' scores cross-fitted (each fold scored by a detector fitted as the final one on the other
folds and the validation images) join the validation images' scores. 42 validation scores put
a 95th percentile above 10 % of new own images about one time in five; five times more scores
narrow that spread."""

from __future__ import annotations

import numpy as np
import pytest

from cnndesk.core.trust import novelty as novelty_fit


def _rows(rng, n, k=3, lead=6, e=14, d=30):
    """multi_early rows: the early stages (``e`` columns, the first ``lead`` of them read by the
    early detector only), then the late ones; ``k`` classes."""
    y = np.arange(n) % k
    centres = np.random.default_rng(99).normal(0, 3, (k, e + d))
    x = centres[y] + rng.normal(0, 1, (n, e + d))
    return x.astype(np.float32), y


def _fit(x, y, val, y_val, out, folds):
    from cnndesk.core.training import full_trust

    return full_trust.fit_trust(x, val, np.zeros((len(val), 3), np.float32), y_val, y_train=y,
                                features="multi_early", outliers=out, early=(6, 14), cross_folds=folds)


def test_threshold_pools_the_validation_and_cross_fitted_training_scores():
    pytest.importorskip("torch")
    from cnndesk.core.training import full_trust
    from cnndesk.core.trust import scores as trust

    rng = np.random.default_rng(0)
    x, y = _rows(rng, 150)
    val, y_val = _rows(rng, 30)
    out = (x.mean(0) + rng.normal(0, 0.3, (60, x.shape[1]))).astype(np.float32)
    old, _, _, held_old = _fit(x, y, val, y_val, out, 0)
    new, _, calib, held = _fit(x, y, val, y_val, out, None)
    assert held_old.shape == (30,) and held.shape == (30 + 150,)
    np.testing.assert_allclose(held[:30], held_old)  # the validation images' scores come first, unchanged
    cross = full_trust.cross_fitted_scores(x, y, val, y_val, 0, out, (6, 14))
    np.testing.assert_allclose(held[30:], cross, rtol=1e-5, atol=1e-6)
    assert new.threshold == pytest.approx(float(np.quantile(held, 0.95)))
    assert new.table == trust.threshold_table(held) and new.threshold_for(0.05) == pytest.approx(new.threshold)
    assert "cross-fitted" in calib["novelty_held_out"] and "novelty_held_out" not in _fit(x, y, val, y_val, out, 0)[2]
    # the detector itself is the same: only the threshold and its table come from more scores
    np.testing.assert_array_equal(new.bank, old.bank)
    np.testing.assert_allclose(new.score(val), old.score(val))
    # too few training images for the folds, or the late detector alone: the validation scores alone
    few = _fit(x[:8], y[:8], val, y_val, out, None)[3]
    assert few.shape == (30,)


def test_many_validation_images_set_the_threshold_alone(monkeypatch):
    pytest.importorskip("torch")
    from cnndesk.core.training import full_trust

    rng = np.random.default_rng(1)
    x, y = _rows(rng, 60)
    val, y_val = _rows(rng, 30)
    monkeypatch.setattr(full_trust, "CROSS_FIT_BELOW", 30)
    nov, _, calib, held = _fit(x, y, val, y_val, None, None)
    assert held.shape == (30,) and "novelty_held_out" not in calib
    assert nov.threshold == pytest.approx(float(np.quantile(held, 0.95)))


def test_more_held_out_scores_keep_new_own_images_flagged_near_five_percent():
    """Over 12 draws (24 validation images, 150 training images, 3,000 new own images each): the
    validation scores alone put the threshold above more than 10 % of new own images on some
    draws; pooled with the cross-fitted training scores, never, and the spread narrows."""
    pytest.importorskip("torch")
    old_rates, new_rates = [], []
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        x, y = _rows(rng, 150)
        val, y_val = _rows(rng, 24)
        own, _ = _rows(rng, 3000)
        out = (x.mean(0) + rng.normal(0, 0.3, (60, x.shape[1]))).astype(np.float32)
        for folds, rates in ((0, old_rates), (None, new_rates)):
            nov = _fit(x, y, val, y_val, out, folds)[0]
            rates.append(float(nov.flags(nov.score(own)).mean()))
    assert max(old_rates) > 0.10 >= max(new_rates)
    assert np.std(new_rates) < 0.7 * np.std(old_rates)
    assert abs(np.mean(new_rates) - 0.05) < 0.02


def test_a_wide_gap_takes_the_larger_upper_bound_of_the_validation_and_pooled_scores():
    from cnndesk.core.trust import scores as trust

    rng = np.random.default_rng(3)
    held = rng.normal(size=44) * 0.6
    pool = np.concatenate([held, rng.normal(size=200) * 0.6 + 0.3])
    top = float(max(held.max(), pool.max()))
    far = rng.uniform(3 * top, 6 * top, 120)
    for p, want in ((None, novelty_fit.upper_quantile(held, 0.95)),
                    (pool, max(novelty_fit.upper_quantile(held, 0.95), novelty_fit.upper_quantile(pool, 0.95)))):
        nov = trust.Novelty(np.zeros(2, np.float32), np.ones(2, np.float32), np.zeros((1, 2), np.float32), 0.0,
                            0.95, "multi_early")
        nov.table = trust.threshold_table(held if p is None else p)
        assert novelty_fit.widen_if_separated(nov, held, far, pool=p)
        assert nov.threshold == pytest.approx(want) and nov.threshold_for(0.05) == pytest.approx(want)
        assert [d for _, d in nov.table] == sorted(d for _, d in nov.table)
    # the gap is judged on the validation scores: a pool reaching the outliers does not undo it
    nov = trust.Novelty(np.zeros(2, np.float32), np.ones(2, np.float32), np.zeros((1, 2), np.float32), 0.0)
    assert novelty_fit.widen_if_separated(nov, held, far, pool=np.concatenate([pool, [far.min()]]))
