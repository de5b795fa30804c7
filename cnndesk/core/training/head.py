"""Quick mode's head, numpy only: a softmax regression on (multi-stage) embeddings whose
regularisation is chosen on the validation split, whose temperature and novelty threshold come
from out-of-fold predictions, and which is then refitted on every image.

Speed: the features are standardized and rotated onto their principal axes (at most as many as
there are images), which leaves an L2-regularised linear model unchanged but makes each fit
several times cheaper when there are fewer images than feature values (2528 for the multi-stage
features of EfficientNet-Lite0).

Big sets (issue 25: 50,000 images in about a minute on 2 cores): with at least as many images as
values the features go onto their top BIG_DIM principal axes too (found on PCA_ROWS of them), each
Adam step sees BATCH images instead of all of them, and the novelty detector is fitted on a
NOVELTY_ROWS sample of the training images (see :func:`fit_detector`). Below those sizes every
step is as before. Other users of :func:`make_basis` / :func:`fit_linear` (the doctor's label
check, the labelling session) keep the full-size behaviour unless they pass ``sampled=True`` /
``batch=BATCH``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from cnndesk.core.common.progress import CancelToken, ProgressCallback, report
from cnndesk.core.trust import novelty as novelty_fit
from cnndesk.core.trust import scores as trust

WEIGHT_DECAYS = (1e-2, 1e-3, 1e-1)  # the default first: its curve is the one shown live
DEFAULT_WEIGHT_DECAY = 1e-2
FOLDS = 5
MAX_DIM = 1024
BIG_DIM = 512  # principal axes kept when there are more images than values (see _big_basis)
SCALE_FLOOR = 0.5  # x the median spread of the values (see make_basis)
BATCH = 2048  # training images per Adam step beyond this many (mini-batches; full batches below)
PCA_ROWS = 4096  # images the principal axes are found on when there are more images than values
NOVELTY_ROWS = 5000  # = MAX_BANK x FOLDS / (FOLDS - 1): each fold's reference set is bank-sized
CHUNK = 4096  # rows per block when big arrays are standardized or projected


@dataclass
class Basis:
    mean: np.ndarray
    scale: np.ndarray
    proj: np.ndarray  # (D, r)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(x) <= CHUNK:
            return (((np.asarray(x, np.float32) - self.mean) / self.scale) @ self.proj).astype(np.float32)
        out = np.empty((len(x), self.proj.shape[1]), np.float32)  # blocks: no full-size temporaries
        for s in range(0, len(x), CHUNK):
            out[s:s + CHUNK] = self(x[s:s + CHUNK])
        return out

    def to_raw(self, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Head weights on rotated features -> weights that apply to raw embeddings."""
        w_raw = (w @ self.proj.T) / self.scale
        return w_raw.astype(np.float32), (b - w_raw @ self.mean).astype(np.float32)

    def from_raw(self, w_raw: np.ndarray, b_raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = (np.asarray(w_raw, np.float32) * self.scale) @ self.proj
        return w.astype(np.float32), (np.asarray(b_raw, np.float32) + np.asarray(w_raw) @ self.mean).astype(np.float32)


def make_basis(x: np.ndarray, max_dim: int | None = None, sampled: bool = False) -> Basis:
    """Standardize (each value's spread floored at SCALE_FLOOR x the median spread), then rotate
    onto the principal axes. Without the floor, values that barely vary among the training images
    (e.g. a last-layer channel that is almost always 0) are blown up by 1/spread: the folded head
    then weighs them by up to ~1e3, so tiny changes there — int8 rounding, re-encoding, a new
    camera — swing the answer (int8 agreement with fp32 on held-out textures: 98.1 % without,
    99.8 % with; symbols accuracy 0.990 -> 0.993, textures 0.988 -> 1.000)."""
    x = np.asarray(x, np.float32)
    max_dim = MAX_DIM if max_dim is None else max_dim
    if sampled and len(x) >= x.shape[1] and x.shape[1] > max_dim:  # big sets (quick training opts in)
        return _big_basis(x, min(max_dim, BIG_DIM))
    mean = x.mean(0)
    spread = x.std(0)
    scale = np.maximum(spread, SCALE_FLOOR * float(np.median(spread))) + 1e-6
    xs = (x - mean) / scale
    if len(x) >= x.shape[1]:
        return Basis(mean, scale, np.eye(x.shape[1], dtype=np.float32))
    # principal axes from the (images x images) Gram matrix: cheaper than an SVD when D > N
    evals, u = np.linalg.eigh(xs @ xs.T)
    order = np.argsort(evals)[::-1]
    evals, u = evals[order], u[:, order]
    r = int(min(max_dim, (evals > evals[0] * 1e-8).sum()))
    v = (xs.T @ u[:, :r]) / np.sqrt(evals[:r])
    return Basis(mean, scale, v.astype(np.float32))


def _big_basis(x: np.ndarray, max_dim: int) -> Basis:
    """More images than values: mean and spread in blocks (no full-size temporaries), the top
    ``max_dim`` principal axes from the covariance of PCA_ROWS random images by randomized
    subspace iteration (an exact eigendecomposition of 2528 x 2528 takes ~10 s on one core)."""
    n, d = x.shape
    acc, acc2 = np.zeros(d), np.zeros(d)
    for s in range(0, n, CHUNK):
        block = x[s:s + CHUNK].astype(np.float64)
        acc += block.sum(0)
        acc2 += (block * block).sum(0)
    mean = acc / n
    spread = np.sqrt(np.maximum(acc2 / n - mean * mean, 0.0))
    scale = (np.maximum(spread, SCALE_FLOOR * float(np.median(spread))) + 1e-6).astype(np.float32)
    mean = mean.astype(np.float32)
    rows = np.sort(np.random.default_rng(0).choice(n, min(n, PCA_ROWS), replace=False))
    xs = (x[rows] - mean) / scale
    _, v = novelty_fit.top_eigh(xs.T @ xs / len(xs), max_dim)
    return Basis(mean, scale, np.ascontiguousarray(v, np.float32))


@dataclass
class Fit:
    w: np.ndarray
    b: np.ndarray
    history: list  # (epoch, train_loss, train_acc, val_loss, val_acc, seconds)
    cancelled: bool = False


def fit_linear(z, y, k, *, weight_decay=DEFAULT_WEIGHT_DECAY, epochs=200, lr=0.01, smoothing=0.1, class_w=None,
               seed=0, z_val=None, y_val=None, init=None, cancel: CancelToken | None = None, on_epoch=None,
               batch: int | None = None) -> Fit:
    """Adam with a cosine schedule on rotated features; keeps the best epoch by validation
    (accuracy, -loss) when a validation set is given, else the last. Full batches, or with
    ``batch`` (quick training passes BATCH) past that many images each epoch is one step on
    ``batch`` images (drawn without replacement, a new permutation each pass), so a fit costs the
    same at 5,000 as at 50,000 images (its training loss and accuracy are then the batch's)."""
    rng = np.random.default_rng(seed)
    n, d = z.shape
    w = rng.normal(0, 0.01, (k, d)).astype(np.float32) if init is None else init[0].astype(np.float32).copy()
    b = np.zeros(k, np.float32) if init is None else init[1].astype(np.float32).copy()
    cw = np.asarray(class_w if class_w is not None else np.ones(k), np.float32)
    sw = (cw[y] / cw[y].mean()).astype(np.float32)[:, None]
    full = batch is None or n <= batch
    target = _targets(y, k, smoothing) if full else None
    order, pos = (None, 0) if full else (rng.permutation(n), 0)
    mw, vw, mb, vb = np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)
    history = []
    best = None
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        if cancel is not None and cancel.cancelled:
            break
        if full:
            zb, yb, tb, swb = z, y, target, sw
        else:  # one step on the next ``batch`` images of a permutation, a new one each pass
            if pos + batch > n:
                order, pos = rng.permutation(n), 0
            idx = np.sort(order[pos:pos + batch])
            pos += batch
            zb, yb, swb = z[idx], y[idx], sw[idx]
            tb = _targets(yb, k, smoothing)
        logits = zb @ w.T + b
        p = trust.softmax(logits).astype(np.float32)
        g = (p - tb) * swb / len(yb)
        gw = g.T @ zb + weight_decay * w
        gb = g.sum(0)
        step = lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))
        for param, grad, m, v in ((w, gw, mw, vw), (b, gb, mb, vb)):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            param -= step * (m / (1 - 0.9**epoch)) / (np.sqrt(v / (1 - 0.999**epoch)) + 1e-8)
        if epoch % 10 == 0 or epoch == epochs:
            tl = float(-(tb * np.log(p + 1e-12)).sum(1).mean())
            ta = float((logits.argmax(1) == yb).mean())
            if z_val is not None and len(z_val):
                lv = z_val @ w.T + b
                vl, va = trust.nll(lv, y_val), float((lv.argmax(1) == y_val).mean())
            else:
                vl, va = tl, ta
            history.append((epoch, tl, ta, vl, va, time.perf_counter() - t0))
            if on_epoch is not None:
                on_epoch(history[-1])
            if z_val is not None and len(z_val) and (best is None or (va, -vl) > best[0]):
                best = ((va, -vl), w.copy(), b.copy())
    if best is not None:
        w, b = best[1], best[2]
    return Fit(w, b, history, cancel is not None and cancel.cancelled)


def _targets(y: np.ndarray, k: int, smoothing: float) -> np.ndarray:
    """Label-smoothed one-hot rows."""
    target = np.full((len(y), k), smoothing / k, np.float32)
    target[np.arange(len(y)), y] += 1 - smoothing
    return target


def stratified_folds(y: np.ndarray, k: int = FOLDS, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    folds = np.empty(len(y), int)
    for c in np.unique(y):
        idx = np.nonzero(y == c)[0]
        rng.shuffle(idx)
        folds[idx] = np.arange(len(idx)) % k
    return folds


@dataclass
class QuickResult:
    weight: np.ndarray
    bias: np.ndarray
    temperature: float
    novelty: trust.Novelty
    weight_decay: float
    val_logits: np.ndarray | None  # validation predictions of the model fitted without them
    val_novelty: np.ndarray | None  # their out-of-fold novelty scores
    history: list
    calibration: dict  # out-of-fold ECE before / after temperature
    cancelled: bool = False


def fit_quick(*args, **kwargs) -> QuickResult:
    with trust.one_blas_thread():
        return _fit_quick(*args, **kwargs)


def _fit_quick(x: np.ndarray, y: np.ndarray, k: int, val_mask: np.ndarray, *, epochs: int = 200, lr: float = 0.01,
              smoothing: float = 0.1, class_w=None, seed: int = 0, init=None, features: str = "multi",
              progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
              on_epoch=None, outliers: np.ndarray | None = None) -> QuickResult:
    """``x``: embeddings of every image (training and validation), ``val_mask`` marks the
    validation ones (``outliers``: features of synthesised outliers, ``training.synth``). See the
    module docstring for the steps. ``on_epoch`` sees the first fit's
    (epoch, train loss, train acc, val loss, val acc, seconds) as it runs. When cancelled, the best
    head so far comes back with ``cancelled`` set (temperature 1 and no novelty if not reached)."""
    x = np.asarray(x, np.float32)
    y = np.asarray(y, int)
    val_mask = np.asarray(val_mask, bool)
    basis = make_basis(x, sampled=True)
    z = basis(x)
    tr = ~val_mask
    kw = dict(epochs=epochs, lr=lr, smoothing=smoothing, class_w=class_w, seed=seed, cancel=cancel, batch=BATCH)
    # 1. regularisation chosen on the validation split
    chosen, val_logits, history = DEFAULT_WEIGHT_DECAY, None, []
    first = None

    def stopped() -> QuickResult:
        """Cancelled after the regularisation was chosen: the best head so far, marked cancelled
        (without a validation split there is nothing to keep yet)."""
        if first is None:
            raise_cancelled()
        return QuickResult(*basis.to_raw(first.w, first.b), 1.0, None, chosen, val_logits, None, history,
                           {}, cancelled=True)

    if val_mask.any() and len(np.unique(y[tr])) == k:
        best = None
        for i, wd in enumerate(WEIGHT_DECAYS):
            report(progress, i, len(WEIGHT_DECAYS) + FOLDS + 1, f"Choosing the regularisation ({i + 1}/{len(WEIGHT_DECAYS)})")
            f = fit_linear(z[tr], y[tr], k, weight_decay=wd, z_val=z[val_mask], y_val=y[val_mask],
                           on_epoch=on_epoch if i == 0 else None, init=basis.from_raw(*init) if init is not None else None, **kw)
            lv = z[val_mask] @ f.w.T + f.b
            key = (float((lv.argmax(1) == y[val_mask]).mean()), -trust.nll(lv, y[val_mask]))
            if best is None or key > best[0]:
                best = (key, wd, lv, f.history, f)
            if f.cancelled:
                break
        _, chosen, val_logits, history, first = best
        if cancel is not None and cancel.cancelled:
            return stopped()
    # 2. out-of-fold predictions: temperature and the novelty threshold
    folds = stratified_folds(y, min(FOLDS, max(2, int(np.bincount(y).min()))), seed)
    oof = np.zeros((len(y), k), np.float32)
    for f_i in np.unique(folds):
        report(progress, len(WEIGHT_DECAYS) + f_i, len(WEIGHT_DECAYS) + FOLDS + 1, "Calibrating on held-out folds")
        held = folds == f_i
        f = fit_linear(z[~held], y[~held], k, weight_decay=chosen, **kw)
        oof[held] = z[held] @ f.w.T + f.b
        if cancel is not None and cancel.cancelled:
            return stopped()
    temperature = trust.fit_temperature(oof, y)
    calibration = {"ece_before": round(trust.ece(trust.softmax(oof), y), 4),
                   "ece_after": round(trust.ece(trust.softmax(oof, temperature), y), 4),
                   "oof_accuracy": round(float((oof.argmax(1) == y).mean()), 4)}
    novelty, val_novelty = fit_detector(x, y, folds, val_mask, features=features, seed=seed, outliers=outliers)
    if cancel is not None and cancel.cancelled:  # Stop pressed while the detector was fitted
        return stopped()
    # 3. the final head learns from every image
    report(progress, len(WEIGHT_DECAYS) + FOLDS, len(WEIGHT_DECAYS) + FOLDS + 1, "Training the head on all images")
    init_z = basis.from_raw(*init) if init is not None else None
    final = fit_linear(z, y, k, weight_decay=chosen, init=init_z, **kw)
    if not history:
        history = final.history
        if on_epoch is not None:
            for h in history:
                on_epoch(h)
    w_raw, b_raw = basis.to_raw(final.w, final.b)
    return QuickResult(w_raw, b_raw, temperature, novelty, chosen, val_logits, val_novelty, history, calibration)


def fit_detector(x: np.ndarray, y: np.ndarray, folds: np.ndarray, val_mask: np.ndarray, *, features: str = "multi",
                 seed: int = 0, outliers: np.ndarray | None = None) -> tuple[trust.Novelty, np.ndarray | None]:
    """The novelty detector and the held-out scores of the validation images.

    Up to NOVELTY_ROWS images: out of fold on every image (:func:`novelty_fit.fit_novelty_oof`).
    Beyond, on a class-stratified random NOVELTY_ROWS sample of the training images: each fold's
    reference set then holds about MAX_BANK images, as many as the bank the detector keeps, so the
    held-out distances are those a new image meets against the stored bank (out of fold on all
    50,000 images, each image was compared with 40,000: an N x N search, and a threshold set on
    distances smaller than a new image ever sees against the 4,000-image bank). The validation
    images are then scored by the finished detector, which never saw them."""
    if len(x) <= NOVELTY_ROWS:
        nov, oof = novelty_fit.fit_novelty_oof(x, y, folds, features=features, seed=seed, outliers=outliers)
        return nov, (oof[val_mask] if val_mask.any() else None)
    rows = stratified_sample(y, np.flatnonzero(~val_mask), NOVELTY_ROWS, seed)
    ys = y[rows]
    sub_folds = stratified_folds(ys, min(FOLDS, max(2, int(np.bincount(ys)[np.unique(ys)].min()))), seed)
    nov, _ = novelty_fit.fit_novelty_oof(x[rows], ys, sub_folds, features=features, seed=seed, outliers=outliers)
    if not val_mask.any():
        return nov, None
    val_rows = np.flatnonzero(val_mask)
    held = np.concatenate([nov.score(x[val_rows[s:s + CHUNK]]) for s in range(0, len(val_rows), CHUNK)])
    return nov, held.astype(np.float32)


def stratified_sample(y: np.ndarray, rows: np.ndarray, size: int, seed: int = 0, floor: int = 20) -> np.ndarray:
    """About ``size`` of ``rows`` (sorted), each class in proportion but with at least ``floor``
    images (or all it has): a class the detector never saw would look unknown."""
    rows = np.asarray(rows)
    if len(rows) <= size:
        return np.sort(rows)
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(y[rows]):
        idx = rows[y[rows] == c]
        take = min(len(idx), max(floor, int(round(len(idx) * size / len(rows)))))
        out.append(rng.choice(idx, take, replace=False))
    return np.sort(np.concatenate(out))


def raise_cancelled():
    from cnndesk.core.common.errors import Cancelled

    raise Cancelled("training cancelled")
