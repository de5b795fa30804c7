"""The quick head must not hang its answers on values that barely vary among the training images:
a last-layer channel that is almost always 0 would otherwise be blown up by 1/spread, and tiny
changes there (int8 rounding, re-encoding) would swing the answer."""

import numpy as np

from cnndesk.core.training import head as quickfit

CENTRES = np.random.default_rng(42).normal(0, 1, (3, 8))


def _data(rng, n=240):
    y = rng.integers(0, 3, n)
    centres = CENTRES
    informative = centres[y] + rng.normal(0, 0.6, (n, 8))
    other = rng.normal(0, 1, (n, 60))  # ordinary values that say nothing about the class
    quiet = rng.normal(0, 1e-5, (n, 20))  # near-constant values (almost dead channels)
    return np.hstack([informative, other, quiet]).astype(np.float32), y


def test_head_ignores_tiny_changes_in_near_constant_values():
    rng = np.random.default_rng(0)
    x, y = _data(rng)
    val = np.zeros(len(y), bool)
    val[::5] = True
    res = quickfit.fit_quick(x, y, 3, val, features="last")
    x_test, y_test = _data(np.random.default_rng(1))
    # the same images with a change of 1e-3 in the quiet values: 100x their spread, but a tiny
    # fraction of the informative values' spread (about 1)
    noisy = x_test.copy()
    noisy[:, 68:] += np.random.default_rng(2).normal(0, 1e-3, noisy[:, 68:].shape)
    clean_pred = (x_test @ res.weight.T + res.bias).argmax(1)
    noisy_pred = (noisy @ res.weight.T + res.bias).argmax(1)
    assert (clean_pred == y_test).mean() > 0.8  # the head learned the task
    assert (clean_pred == noisy_pred).mean() >= 0.99
    # no value of the folded head is weighted absurdly more than the informative ones
    w = np.abs(res.weight)
    assert w[:, 68:].max() <= 10 * w[:, :8].max()


def test_basis_floor_keeps_varied_values_standardized():
    rng = np.random.default_rng(3)
    x = np.hstack([rng.normal(5, 2, (50, 4)), rng.normal(0, 1e-6, (50, 4))]).astype(np.float32)
    b = quickfit.make_basis(x)
    spread = x.std(0)
    np.testing.assert_allclose(b.scale[:4], spread[:4] + 1e-6, rtol=1e-5)  # real spreads kept
    assert (b.scale[4:] >= quickfit.SCALE_FLOOR * np.median(spread)).all()  # floored
