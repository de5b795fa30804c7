"""The "not one of my classes" detector (core.novelty fits it, core.trust scores it): images close
to some training image yet off the directions the classes vary in are flagged; the file round
trip and the exported network give the same scores."""

from __future__ import annotations

import numpy as np
import pytest

from cnndesk.core.trust import novelty
from cnndesk.core.trust import scores as trust


def _data(rng, n, centres, spread):
    """Classes varying in the first dims only (``spread``); tiny noise elsewhere."""
    y = rng.integers(0, len(centres), n)
    x = centres[y] + rng.normal(0, 1, (n, centres.shape[1])) * spread
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(3)
    d = 96
    spread = np.full(d, 0.05)
    spread[:12] = 1.0
    centres = np.zeros((4, d))
    centres[:, :12] = rng.normal(0, 3, (4, 12))
    x, y = _data(rng, 500, centres, spread)
    own, _ = _data(rng, 400, centres, spread)
    # same look, other content: an in-class-like point moved along directions no class varies in
    look_alike, _ = _data(rng, 200, centres, spread)
    look_alike[:, 12:] += rng.normal(0, 0.35, (200, d - 12))
    return x, y, own, look_alike


def test_flags_look_alikes_the_nearest_neighbour_distance_accepts(setup):
    x, y, own, look_alike = setup
    folds = np.arange(len(x)) % 5
    old, _ = trust.fit_novelty_oof(x, folds)
    new, oof = novelty.fit_novelty_oof(x, y, folds)
    assert new.metric == "knn+maha" and oof.shape == (len(x),)
    s_own, s_out = new.score(own), new.score(look_alike)
    assert trust.auroc(s_own, s_out) > 0.99
    assert trust.auroc(s_own, s_out) > trust.auroc(old.score(own), old.score(look_alike))
    assert 0.01 <= new.flags(s_own).mean() <= 0.10
    assert new.flags(s_out).mean() >= 0.95
    # the flag-rate setting still moves the threshold the right way
    assert new.threshold_for(0.01) > new.threshold_for(0.05) > new.threshold_for(0.2)


def test_held_out_variant_and_file_round_trip(setup):
    x, y, own, look_alike = setup
    nov, held = novelty.fit_novelty_heldout(x[:400], y[:400], x[400:], y_held=y[400:])
    assert held.shape == (100,) and nov.metric == "knn+maha"
    tensors = {k: np.asarray(v) for k, v in nov.tensors().items()}
    back = trust.Novelty.from_file(nov.info(), tensors)
    np.testing.assert_allclose(back.score(own), nov.score(own), rtol=1e-3, atol=1e-3)
    assert back.threshold == pytest.approx(nov.threshold, rel=1e-5)
    # a file whose class statistics are missing is refused (the app then runs without the flag)
    del tensors["novelty.icov"]
    with pytest.raises(KeyError):
        trust.Novelty.from_file(nov.info(), tensors)


def test_older_detector_files_score_as_before(setup):
    x, _, own, _ = setup
    old, _ = trust.fit_novelty_oof(x, np.arange(len(x)) % 5)
    info = old.info()
    assert info["metric"] == "cosine-nn" and "norm" not in info
    back = trust.Novelty.from_file(info, old.tensors())
    assert back.metric == "cosine-nn"
    np.testing.assert_allclose(back.score(own), old.score(own), atol=2e-3)


def test_exported_network_scores_like_the_app(setup):
    torch = pytest.importorskip("torch")
    from cnndesk.core.export.trustnet import TrustNet

    x, y, own, look_alike = setup
    nov, _ = novelty.fit_novelty_oof(x, y, np.arange(len(x)) % 5)
    nov = trust.Novelty.from_file(nov.info(), nov.tensors())  # as stored (float16 bank and axes)
    k = int(y.max()) + 1
    net = TrustNet(torch.nn.Identity(), np.zeros((k, x.shape[1])), np.zeros(k), 1.0, nov, nov.threshold).eval()
    feats = np.concatenate([own[:50], look_alike[:50]])
    with torch.no_grad():
        _, _, score, unknown = net(torch.from_numpy(feats))
    np.testing.assert_allclose(score.numpy(), nov.score(feats), rtol=1e-4, atol=1e-3)
    assert (unknown.numpy() == nov.flags(nov.score(feats))).mean() >= 0.99


def test_synth_term_flags_what_looks_like_the_synthesised_outliers(setup):
    """The "+synth" term: points nearer the synthesised outliers (here: the class content removed,
    only the shared mean left, plus noise) than any training point are flagged, out of fold and
    held out alike; the file and the exported network give the same scores; a detector missing
    its outliers or with an unknown metric is refused."""
    torch = pytest.importorskip("torch")
    from cnndesk.core.export.trustnet import TrustNet

    x, y, own, _ = setup
    rng = np.random.default_rng(5)
    outliers = (x.mean(0) + rng.normal(0, 0.3, x.shape)).astype(np.float32)[:150]
    content_free = (x.mean(0) + rng.normal(0, 0.3, x.shape)).astype(np.float32)[150:250]
    plain, _ = novelty.fit_novelty_oof(x, y, np.arange(len(x)) % 5)
    nov, oof = novelty.fit_novelty_oof(x, y, np.arange(len(x)) % 5, outliers=outliers)
    assert nov.metric == "knn+maha+synth" and len(nov.norm) == 6 and nov.outliers.shape == (150, nov.bank.shape[1])
    assert 0.01 <= nov.flags(nov.score(own)).mean() <= 0.10
    assert nov.flags(nov.score(content_free)).mean() >= plain.flags(plain.score(content_free)).mean()
    assert nov.flags(nov.score(content_free)).mean() >= 0.95
    held_nov, held = novelty.fit_novelty_heldout(x[:400], y[:400], x[400:], y_held=y[400:], outliers=outliers)
    assert held_nov.metric == "knn+maha+synth" and held.shape == (100,)
    tensors = {k: np.asarray(v) for k, v in nov.tensors().items()}
    back = trust.Novelty.from_file(nov.info(), tensors)
    assert back.metric == "knn+maha+synth"
    np.testing.assert_allclose(back.score(own), nov.score(own), rtol=1e-3, atol=2e-3)
    k = int(y.max()) + 1
    net = TrustNet(torch.nn.Identity(), np.zeros((k, x.shape[1])), np.zeros(k), 1.0, back, back.threshold).eval()
    feats = np.concatenate([own[:50], content_free[:50]])
    with torch.no_grad():
        score = net(torch.from_numpy(feats))[2].numpy()
    np.testing.assert_allclose(score, back.score(feats), rtol=1e-4, atol=1e-3)
    del tensors["novelty.outliers"]
    with pytest.raises(KeyError):
        trust.Novelty.from_file(nov.info(), tensors)
    with pytest.raises(ValueError, match="unknown metric"):
        trust.Novelty.from_file({**nov.info(), "metric": "something-newer"}, nov.tensors())


def test_early_stage_detector_flags_what_the_late_stages_miss():
    """Full models' "multi_early" rows: [early stages | late stages + penultimate]. Images whose
    late columns look like a class (fine-tuning maps them there) but whose early columns are off
    are flagged by the early-stage detector, which the late-stage one misses; own images stay near
    5 %; the score is the mean of the two, the same after the file/bundle round trip and in the
    exported network (issue 23)."""
    torch = pytest.importorskip("torch")
    from cnndesk.core.export.trustnet import TrustNet
    from cnndesk.core.training import full_trust

    rng = np.random.default_rng(11)
    k, e, lead, d = 4, 24, 16, 96
    centres_e = rng.normal(0, 2, (k, e))
    centres_l = np.zeros((k, d))
    centres_l[:, :12] = rng.normal(0, 3, (k, 12))
    spread_l = np.full(d, 0.05)
    spread_l[:12] = 1.0

    def rows(n, off=0.0):
        y = rng.integers(0, k, n)
        early = centres_e[y] + rng.normal(0, 0.5, (n, e))
        early[:, :lead] += off * rng.normal(0, 1, (n, lead))  # off in the stages only the early detector reads
        late = centres_l[y] + rng.normal(0, 1, (n, d)) * spread_l
        late[:, : e - lead] = early[:, lead:]  # the stage both detectors read
        return np.concatenate([early[:, :lead], late], 1).astype(np.float32), y

    x, y = rows(500)
    val, y_val = rows(120)
    own, _ = rows(300)
    other, _ = rows(200, off=4.0)  # the late stages alike, the early ones not
    outliers = (x.mean(0) + rng.normal(0, 0.3, (150, x.shape[1]))).astype(np.float32)
    nov, _, _, held = full_trust.fit_trust(x, val, rng.normal(0, 1, (len(val), k)), y_val, y_train=y,
                                           features="multi_early", outliers=outliers, early=(lead, e))
    assert nov.features == "multi_early" and nov.early is not None and nov.lead == lead
    assert len(nov.mean) == x.shape[1] - lead and len(nov.early.mean) == e
    # held out: the validation images' scores, then the training images' cross-fitted ones (issue 23)
    assert held.shape == (len(val) + len(x),) and nov.threshold == pytest.approx(float(np.quantile(held, nov.quantile)))
    parts = (nov._score(other[:, lead:]), nov.early.score(other[:, :e]))
    np.testing.assert_allclose(nov.score(other), (parts[0] + parts[1]) / 2, rtol=1e-6)
    late_only = nov._score(other[:, lead:]) > nov._score(val[:, lead:]).max()
    assert late_only.mean() <= 0.2  # the late stages alone see the look-alikes as a class
    assert nov.flags(nov.score(other)).mean() >= 0.95
    assert 0.01 <= nov.flags(nov.score(own)).mean() <= 0.10
    # the bundle's novelty.npz turns the first "." of each name into "_" (export_kit/predict.py)
    stored = {k_.replace(".", "_"): np.asarray(v) for k_, v in nov.tensors().items()}
    back = trust.Novelty.from_file(nov.info(), {k_.replace("_", ".", 1): v for k_, v in stored.items()})
    assert back.early is not None and back.lead == lead and back.info()["early"]["metric"] == "knn+maha+synth"
    feats = np.concatenate([own[:50], other[:50]])
    np.testing.assert_allclose(back.score(feats), nov.score(feats), rtol=1e-2, atol=1e-2)  # float16 bank, axes
    net = TrustNet(torch.nn.Identity(), np.zeros((k, x.shape[1])), np.zeros(k), 1.0, back, back.threshold).eval()
    with torch.no_grad():
        score = net(torch.from_numpy(feats))[2].numpy()
    np.testing.assert_allclose(score, back.score(feats), rtol=1e-4, atol=1e-3)
    del stored["novelty_early_bank"]
    with pytest.raises(KeyError):
        trust.Novelty.from_file(nov.info(), {k_.replace("_", ".", 1): v for k_, v in stored.items()})
    # fewer than 10 validation images: the late-stage ("multi") detector alone, on the row's tail
    small, _, _, held = full_trust.fit_trust(x, val[:5], rng.normal(0, 1, (5, k)), y_val[:5], y_train=y,
                                             features="multi_early", outliers=outliers, early=(lead, e))
    assert small.features == "multi" and small.early is None and len(small.mean) == x.shape[1] - lead and held is None


def test_more_held_out_rows_pool_into_the_threshold_only():
    """``fit_novelty_heldout(more_held=)`` (the augmented-threshold experiment, issue 23): extra
    held-out rows join the normalisation and the threshold, never the bank or the class statistics;
    without them the detector is the one before."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(0, 1, (120, 30)).astype(np.float32), rng.integers(0, 3, 120)
    val, y_val = rng.normal(0, 1, (30, 30)).astype(np.float32), rng.integers(0, 3, 30)
    far = rng.normal(0, 3, (30, 30)).astype(np.float32)
    base, held = novelty.fit_novelty_heldout(x, y, val, features="multi", y_held=y_val)
    more, held2 = novelty.fit_novelty_heldout(x, y, val, features="multi", y_held=y_val, more_held=far)
    np.testing.assert_array_equal(base.bank, more.bank)
    np.testing.assert_array_equal(base.means, more.means)
    assert held2.shape == (60,) and more.threshold == pytest.approx(float(np.quantile(held2, more.quantile)))
    assert (held2[:30] > more.threshold).mean() < (held > base.threshold).mean()  # far rows: fewer own flagged
    again, held3 = novelty.fit_novelty_heldout(x, y, val, features="multi", y_held=y_val, more_held=far[:0])
    np.testing.assert_array_equal(held3, held)
    assert again.threshold == base.threshold
