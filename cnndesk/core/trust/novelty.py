"""Fitting the "not one of my classes" detector (numpy only; the scoring lives in ``core.trust``,
which export bundles vendor).

The score is the larger of two distances, each put on the scale of its own held-out in-class
values ((value - median) / (95th percentile - median)):

* the cosine distance to the nearest training image (standardized features on their principal
  axes), which knows every training image but treats all directions alike;
* the squared Mahalanobis distance to the nearest class mean on the same axes, with the shared
  within-class covariance (shrunk towards its mean variance, SHRINK), which knows which
  directions the classes vary in. Images that look alike at low level but differ in content
  (small grey blurred photo patches against small grey digits, glyphs of another alphabet) sit
  close to some training image in cosine terms yet far along directions in which the classes
  never vary (bench/bench_unknown.py; docs/benchmarks.md).

The threshold is the ``quantile`` of the combined held-out scores (out-of-fold for quick models,
the validation images for full ones), so about 5 % of a model's own kind of images are flagged.
"""

from __future__ import annotations

import math

import numpy as np

from cnndesk.core.trust import scores as trust

SHRINK = 0.1  # covariance + SHRINK x its mean variance x I


def class_gaussians(z: np.ndarray, y: np.ndarray, shrink: float = SHRINK) -> tuple[np.ndarray, np.ndarray]:
    """(class means [k, r], inverse shared within-class covariance [r, r]) of coordinates z; only
    the classes present in y."""
    z = np.asarray(z, np.float64)
    classes = np.unique(y)
    means = np.stack([z[y == c].mean(0) for c in classes])
    w = z - means[np.searchsorted(classes, y)]
    cov = w.T @ w / max(len(z), 1)
    cov += (shrink * np.trace(cov) / len(cov) + 1e-6) * np.eye(len(cov))
    return means.astype(np.float32), np.linalg.inv(cov).astype(np.float32)


def _norm(values: np.ndarray, quantile: float) -> tuple[float, float]:
    centre = float(np.median(values))
    return centre, max(float(np.quantile(values, quantile)) - centre, 1e-6)


def _finish(nov: trust.Novelty, knn: np.ndarray, maha: np.ndarray, quantile: float,
            synth: np.ndarray | None = None) -> np.ndarray:
    """Normalisation, threshold and quantile table from held-out (knn, maha[, synth]); returns
    the held-out combined scores."""
    c0, s0 = _norm(knn, quantile)
    c1, s1 = _norm(maha, quantile)
    nov.norm = (c0, s0, c1, s1)
    held = np.maximum((knn - c0) / s0, (maha - c1) / s1).astype(np.float32)
    if synth is not None:
        c2, s2 = _norm(synth, quantile)
        nov.norm += (c2, s2)
        held = np.maximum(held, (synth - c2) / s2).astype(np.float32)
    nov.threshold = float(np.quantile(held, quantile))
    nov.table = trust.threshold_table(held)
    return held


def _coords(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    mean, scale = trust.standardizer(x)
    zs = (np.asarray(x, np.float32) - mean) / scale
    proj = trust.principal_axes(zs)
    return mean, scale, proj, (zs @ proj if proj is not None else zs)


def fit_novelty_oof(x: np.ndarray, y: np.ndarray, folds: np.ndarray, quantile: float = trust.DEFAULT_QUANTILE,
                    features: str = "multi", seed: int = 0,
                    outliers: np.ndarray | None = None) -> tuple[trust.Novelty, np.ndarray]:
    """Quick models: held-out scores out of fold, each fold scored on principal axes and class
    statistics of the other folds alone (axes that a held-out image helped to choose make it look
    *less* typical than a new image: on 400 digits the threshold then flagged 0 % instead of about
    5 % of new images); the final detector holds every image. ``outliers``: features of
    synthesised outliers (``training.synth``), the "+synth" term, each fold's own held-out ratio
    on its own axes. Returns the detector and the out-of-fold scores."""
    x = np.asarray(x, np.float32)
    y = np.asarray(y)
    nov, _ = _fit(x, y, quantile, features, seed)
    zs = (x - nov.mean) / nov.scale  # (the standardization is shared by the folds: a small leak)
    zo = None if outliers is None or not len(outliers) else (np.asarray(outliers, np.float32) - nov.mean) / nov.scale
    knn = np.empty(len(x), np.float32)
    maha = np.empty(len(x), np.float32)
    synth = np.empty(len(x), np.float32) if zo is not None else None
    for held, z_fit, z_held, z_out in _fold_coords(zs, folds, trust.PCA_DIM, zo):
        u_held = trust.normalize_rows(z_held)
        knn[held] = trust.nearest_distance(u_held, trust.normalize_rows(z_fit))
        means, icov = class_gaussians(z_fit, y[~held])
        maha[held] = trust.mahalanobis(z_held, means, icov)
        if synth is not None:
            synth[held] = trust.synth_ratio(knn[held], trust.nearest_distance(u_held, trust.normalize_rows(z_out)))
    nov.bank = trust.subsample_bank(nov.bank, seed)
    if zo is not None:
        nov.outliers = _keep_outliers(trust.normalize_rows(nov.coords(outliers)), seed)
    return nov, _finish(nov, knn, maha, quantile, synth)


def _keep_outliers(u: np.ndarray, seed: int) -> np.ndarray:
    if len(u) <= MAX_OUTLIERS:
        return u
    return u[np.sort(np.random.default_rng(seed).choice(len(u), MAX_OUTLIERS, replace=False))]


def top_eigh(m: np.ndarray, r: int, iters: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The r largest eigenvalues (descending) and eigenvectors of a symmetric positive
    semi-definite matrix, by randomized subspace iteration (Halko et al. 2011): a few products
    with an (n, r + 16) block instead of a full eigendecomposition (on 2 busy cores 0.2 s instead
    of 2.5-14 s for n = 960; only the held-out scores use it, the final axes are exact)."""
    n = len(m)
    k = min(n, r + 16)
    q = np.linalg.qr(m @ np.random.default_rng(0).standard_normal((n, k)))[0]
    for _ in range(iters):
        q = np.linalg.qr(m @ q)[0]
    evals, w = np.linalg.eigh(q.T @ m @ q)
    order = np.argsort(evals)[::-1][: min(r, n)]
    evals, vecs = evals[order], q @ w[:, order]
    keep = evals > max(evals[0], 1e-12) * 1e-9
    return evals[keep], vecs[:, keep]


def _fold_coords(zs: np.ndarray, folds: np.ndarray, r: int, extra: np.ndarray | None = None):
    """Per fold: (held mask, coordinates of the other rows, coordinates of the held rows,
    coordinates of the ``extra`` rows or None) on the top ``r`` principal axes of the other rows
    (centred on their mean). One Gram matrix (fewer rows than values) or one covariance matrix
    serves every fold."""
    zs = np.asarray(zs, np.float32)
    n, d = zs.shape
    gram = zs @ zs.T if n < d else None
    cov_all = zs.T @ zs if gram is None else None
    g_extra = extra @ zs.T if extra is not None and gram is not None else None
    for f in np.unique(folds):
        held = folds == f
        fit = ~held
        m = int(fit.sum())
        if gram is not None:
            g = gram[np.ix_(fit, fit)]
            row = g.mean(1)
            gc = g - row[:, None] - row[None, :] + row.mean()
            evals, u = top_eigh(gc, min(r, m - 1) if d > r else m)
            gh = gram[np.ix_(held, fit)]
            kh = gh - gh.mean(1, keepdims=True) - row[None, :] + row.mean()
            z_extra = None
            if g_extra is not None:
                ge = g_extra[:, fit]
                ke = ge - ge.mean(1, keepdims=True) - row[None, :] + row.mean()
                z_extra = (ke @ u / np.sqrt(evals)).astype(np.float32)
            yield (held, (u * np.sqrt(evals)).astype(np.float32), (kh @ u / np.sqrt(evals)).astype(np.float32),
                   z_extra)
        else:
            mu = zs[fit].mean(0)
            c = cov_all - zs[held].T @ zs[held] - m * np.outer(mu, mu)
            if d > r:
                _, v = top_eigh(c, r)
            else:
                v = np.eye(d)
            z_extra = ((extra - mu) @ v).astype(np.float32) if extra is not None else None
            yield held, ((zs[fit] - mu) @ v).astype(np.float32), ((zs[held] - mu) @ v).astype(np.float32), z_extra


def _fit(x, y, quantile, features, seed) -> tuple[trust.Novelty, np.ndarray]:
    """A detector on (x, y) without normalisation or threshold, and its coordinates of x."""
    mean, scale, proj, z = _coords(x)
    nov = trust.Novelty(mean, scale, trust.normalize_rows(z), 0.0, quantile, features, proj)
    nov.means, nov.icov = class_gaussians(z, y)
    return nov, z


MAX_OUTLIERS = 512  # synthesised outliers kept in the file


def fit_novelty_heldout(x_train: np.ndarray, y_train: np.ndarray, x_held: np.ndarray,
                        quantile: float = trust.DEFAULT_QUANTILE, features: str = "penultimate",
                        seed: int = 0, y_held: np.ndarray | None = None,
                        outliers: np.ndarray | None = None,
                        more_held: np.ndarray | None = None) -> tuple[trust.Novelty, np.ndarray]:
    """Full models: held-out scores of the validation images against the training images; the
    bank and the class statistics then hold both (``y_held``: the validation labels, else the
    statistics hold the training images only). ``outliers``: features of synthesised outliers
    (the user's images with their content removed, ``training.full_trust``): adds the
    "+synth" term (tune look of bench/bench_unknown.py, full textures: 0.89 -> 0.95 of unrelated
    images flagged; smooth gradients and blobs 0.63 -> 0.87). ``more_held``: more held-out rows
    (augmented copies of the validation images in bench/exp_full_stats_detectors.py; training does
    not use it: it cost unrelated recall), scored like the validation images and pooled into the
    normalisation and the threshold, never in the bank or the class statistics; the returned
    scores are the validation images' followed by theirs."""
    mean, scale, proj, zt = _coords(x_train)
    nov = trust.Novelty(mean, scale, np.zeros((0, 1), np.float32), 0.0, quantile, features, proj)
    zh = nov.coords(x_held)
    ut, uh = trust.normalize_rows(zt), trust.normalize_rows(zh)
    n_val = len(uh)
    if more_held is not None and len(more_held):  # scored like the validation images, never in the bank
        zh = np.concatenate([zh, nov.coords(more_held)])
        uh = np.concatenate([uh, trust.normalize_rows(zh[n_val:])])
    knn = trust.nearest_distance(uh, ut)
    means, icov = class_gaussians(zt, np.asarray(y_train))
    maha = trust.mahalanobis(zh, means, icov)
    nov.bank = trust.subsample_bank(np.concatenate([ut, uh[:n_val]]), seed)
    if y_held is not None:
        means, icov = class_gaussians(np.concatenate([zt, zh[:n_val]]), np.concatenate([y_train, y_held]))
    nov.means, nov.icov = means, icov
    synth = None
    if outliers is not None and len(outliers):
        u_out = _keep_outliers(trust.normalize_rows(nov.coords(outliers)), seed)
        nov.outliers = u_out
        synth = trust.synth_ratio(knn, trust.nearest_distance(uh, u_out))
    return nov, _finish(nov, knn, maha, quantile, synth)


EARLY_WEIGHT = 0.5  # the early-stage detector's share of a full model's score (measured at 0.3-1.0: kept at 0.5)


def with_early(main: trust.Novelty, held_main: np.ndarray, early: trust.Novelty, held_early: np.ndarray,
               lead: int, weight: float = EARLY_WEIGHT) -> tuple[trust.Novelty, np.ndarray]:
    """Full models' "multi_early" detector: ``main`` (on the row after its first ``lead`` columns)
    and ``early`` (on the pooled early stages, the row's first columns), each fitted by
    :func:`fit_novelty_heldout` on the same images; the score is the mean of their normalised
    scores (the early one's share ``weight``), the threshold and quantile table come from the same
    mean of their held-out scores.
    Fine-tuning reshapes the late stages around the user's classes, so unrelated content that
    shares their low-level look lands near a class there; the early stages change least and still
    tell it apart (bench/exp_full_detectors.py, tune look, 4 full models: unrelated 0.78-0.99 ->
    0.99-1.00 at 0.005-0.10 own test images flagged; the larger of the two instead of the mean
    flagged as many unrelated images but 0.02-0.15 of own ones).
    ``weight`` other than 0.5 (experiments, bench/exp_full_components.py) lives in the early
    detector's normalisation (its spans divided by weight / (1 - weight), so its normalised
    scores, threshold and table scale by that factor): the score stays the plain mean that files,
    exports and bundles compute. A share of 0.7 raised textures' other-textures AUROC on 8 of 8
    full models but raised objects' own flags (fresh seed 7: 0.08 -> 0.15), so 0.5 stays
    (docs/benchmarks.md, issue 23 fifth step)."""
    factor = float(weight) / (1.0 - float(weight))
    if factor != 1.0:
        early.norm = tuple(v / factor if i % 2 else v for i, v in enumerate(early.norm))
        early.threshold *= factor
        early.table = tuple((q, d * factor) for q, d in early.table)
        held_early = (np.asarray(held_early, np.float32) * np.float32(factor)).astype(np.float32)
    held = ((held_main + held_early) * np.float32(0.5)).astype(np.float32)
    main.early, main.lead = early, int(lead)
    main.threshold = float(np.quantile(held, main.quantile))
    main.table = trust.threshold_table(held)
    return main, held


WIDE_GAP = 2.0  # held-out synthesised outliers' 5th percentile >= this x the largest held-out in-class score
UPPER_CONFIDENCE = 0.8  # the bound of each quantile used where the gap is wide


def upper_quantile(held: np.ndarray, q: float, confidence: float = UPPER_CONFIDENCE) -> float:
    """An upper confidence bound of the ``q`` quantile from ``held`` alone: the smallest order
    statistic X_(k) with P(X_(k) >= x_q) = P(Binomial(n, q) < k) >= ``confidence``. For 44
    values and q = 0.95 that is the largest; for 1,000 about the 95.6th percentile (it tends
    to the quantile as n grows)."""
    h = np.sort(np.asarray(held, np.float64))
    n = len(h)
    if n == 0:
        return float("nan")
    if q >= 1.0:
        return float(h[-1])
    j = np.arange(n + 1)
    lgam = np.vectorize(math.lgamma)
    logpmf = lgam(n + 1) - lgam(j + 1) - lgam(n - j + 1) + j * math.log(q) + (n - j) * math.log1p(-q)
    cdf = np.cumsum(np.exp(logpmf))  # cdf[k - 1] = P(Bin < k)
    k = int(np.searchsorted(cdf, confidence)) + 1
    return float(h[min(k, n) - 1])


def widen_if_separated(nov: trust.Novelty, held: np.ndarray, outlier_scores: np.ndarray,
                       pool: np.ndarray | None = None) -> bool:
    """Full models' threshold where the user's kind of image is far from everything else: the
    95th percentile of a few dozen held-out scores is a noisy estimate (on 44 validation images
    it flags more than 10 % of new in-class images in about one run in five), and raising it
    costs recall where unrelated images come close (other textures next to stripes). Where the
    scores of outliers synthesised from the *validation* images (held out: their sources are not
    in the detector's outlier bank) lie far beyond the in-class ones — their 5th percentile at
    least WIDE_GAP x the largest held-out in-class score, scores being 0 at the in-class median —
    the threshold and the table of other flag rates become the UPPER_CONFIDENCE upper bounds of
    their quantiles (:func:`upper_quantile`) instead of the point estimates. Returns whether it
    did (bench/exp_threshold_rules.py on bench_unknown's raw scores: objects 0.10-0.12 -> 0.01
    own test images flagged at the same unrelated recall; textures, whose outliers come close,
    keep their threshold; docs/benchmarks.md). ``pool``: more held-out scores (the validation
    images' and cross-fitted training images', ``training.full_trust.cross_fitted_scores``): the
    gap is still judged on ``held``, and the threshold and table take the larger of the two upper
    bounds (the more careful where being careful costs nothing)."""
    held = np.asarray(held, np.float64)
    outlier_scores = np.asarray(outlier_scores, np.float64)
    if len(held) < 10 or len(outlier_scores) < 10 or not np.isfinite(held).all():
        return False
    outlier_scores = outlier_scores[np.isfinite(outlier_scores)]  # a NaN made the gap test pass
    if len(outlier_scores) < 10:
        return False
    top = float(held.max())
    if not (top > 0 and float(np.quantile(outlier_scores, 0.05)) >= WIDE_GAP * top):
        return False
    sets = [held] if pool is None else [held, np.asarray(pool, np.float64)]
    nov.threshold = max(upper_quantile(h, nov.quantile) for h in sets)
    nov.table = tuple((q, max([upper_quantile(h, q) for h in sets] + [d])) for q, d in trust.threshold_table(sets[-1]))
    return True
