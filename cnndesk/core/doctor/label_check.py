"""The statistics of the dataset doctor: suspected wrong labels (confident learning with the
``cleanlab`` package on out-of-fold probabilities) and outliers (distance to the nearest
neighbours in embedding space, judged against the dataset's own spread). Qt-free, torch-free.

Big folders (issue 25): the embeddings come as :class:`Rows` (the embedding cache's vectors, never
stacked into one more N × 2,528 float32 copy: 0.5 GB at 50,000 images); principal axes are fitted
on a sample and every row is projected a block at a time; the label check's held-out heads are
fitted on at most LABEL_TRAIN_MAX rows each; nearest neighbours come from
:mod:`cnndesk.core.common.neighbours` (approximate where the set is big, recall-checked).
"""

from __future__ import annotations

import numpy as np

from cnndesk.core.common.progress import CancelToken, check

MIN_FOR_LABELS = 3  # a class needs this many images before its labels are checked
C = 0.5  # inverse regularisation of the cross-validated logistic regression
LABEL_AXES, LABEL_EPOCHS = 512, 100  # quick_oof_probs
# small classes (the median class has fewer than SMALL_CLASS images, in a set of at most SMALL_SET
# images): LABEL_FOLDS_SMALL folds, each head trained LABEL_EPOCHS_SMALL epochs, so that a held-out
# head sees 90 % of a class of 30 instead of 80 % and is not stopped short (quick training's own
# 200 epochs). bench/exp_doctor_pairs.py, seeds 0-1 at 30 per class: planted flips found 141 -> 148
# of 156 (objects 22 -> 26 of 30) with the old thresholds; at 100 per class no gain. It costs 4x
# the head (1,500 images as 50 classes of 30: 1.8 -> 5.5 CPU-s), hence SMALL_SET: a folder of
# 1,500 images costs what it did (the doctor's target: <= 30 s cold)
SMALL_CLASS, SMALL_SET, LABEL_FOLDS_SMALL, LABEL_EPOCHS_SMALL = 50, 1000, 10, 200
# strong evidence of a wrong label (strong_evidence): the folder's class at most GIVEN_AT_MOST
# (0.2 until check VERSION 8: look-alike classes -- a capped and a plain ball -- put rightly
# labelled images at 0.03-0.17, planted flips mostly at 0.00-0.02), another at least OTHER_AT_LEAST
GIVEN_AT_MOST, OTHER_AT_LEAST = 0.1, 0.6
# ...and a second witness: at most this share of the image's nearest neighbours carry its label
# (bench/exp_doctor_knn.py: a hard but rightly labelled image sits among its own class)
NEIGHBOURS_OWN_AT_MOST = 0.5
# ...or, without a confident other class (two look-alike classes share the vote): the folder's
# class at most NOT_OWN_AT_MOST and none of the image's nearest neighbours carries its label
# (bench/exp_doctor_pairs.py, seeds 0-1: flips found 658 -> 668 of 680, wrong reports 26 -> 30)
NOT_OWN_AT_MOST = 0.05
# few images a class (the median class checked has fewer than FEW_PER_CLASS: each held-out head
# learns from 5-13 images a class and is often confidently wrong between look-alikes -- mirror
# arrows "99 % each other"): the folder's class at most GIVEN_AT_MOST and NONE of the image's
# nearest neighbours carrying it is the only evidence, however sure the head is (a moved image sits
# among its true class; a hard one has some of its own class near it). bench/exp_doctor_small.py,
# seeds 100-102 at 6 and 10 per class (shapes, symbols, digits, textures): false reports on clean
# folders 19 -> 3 and 8 -> 2, planted flips found 116 -> 125 of 180 and 270 -> 272 of 306; at 15
# and 20 per class it would cost recall (0.95 -> 0.90, 0.97 -> 0.93), hence only below 15
FEW_PER_CLASS = 15
# sets with at least as many images as feature values (where quick training's basis keeps every
# value: 2,528 axes) get LABEL_AXES axes fitted on LABEL_SAMPLE rows, and each fold's head sees
# at most LABEL_TRAIN_MAX rows (bench/bench_doctor_scale.py: recall and precision of planted flips)
LABEL_SAMPLE, LABEL_TRAIN_MAX = 2048, 10_000
BLOCK = 1024  # rows stacked at a time (2,528 values: 10 MB as float32, 20 MB as float64)


class Rows:
    """Equal-length vectors (rows of the embedding cache) seen as an (N, D) float32 matrix without
    stacking them all at once: :meth:`take` stacks just the rows asked for."""

    def __init__(self, vectors):
        self._v = list(vectors)
        self.shape = (len(self._v), int(np.size(self._v[0])) if self._v else 0)

    def __len__(self) -> int:
        return len(self._v)

    def __getitem__(self, idx) -> Rows:
        return Rows([self._v[i] for i in np.asarray(idx).reshape(-1)])

    def take(self, idx) -> np.ndarray:
        idx = np.asarray(idx).reshape(-1)
        if not len(idx):
            return np.zeros((0, self.shape[1]), np.float32)
        return np.stack([self._v[i] for i in idx]).astype(np.float32, copy=False)

    def blocks(self, size: int = BLOCK):
        for start in range(0, len(self), size):
            yield start, self.take(np.arange(start, min(start + size, len(self))))


def _take(x, idx) -> np.ndarray:
    return x.take(idx) if isinstance(x, Rows) else np.asarray(x, np.float32)[idx]


def project(x: np.ndarray | Rows, dims: int = 128, seed: int = 0) -> np.ndarray:
    """Centred PCA coordinates, components in order of variance (eigenvectors of the covariance of
    at most 5,000 rows, so 50,000 images cost about the same as 5,000). ``x``: an array, or
    :class:`Rows` (centred and projected a block at a time: memory N × dims, not N × D)."""
    if isinstance(x, Rows):
        return _project_rows(x, dims, seed)
    x = np.asarray(x, np.float32)
    xc = x - x.mean(0)
    dims = min(dims, x.shape[1], max(1, len(x) - 1))
    rng = np.random.default_rng(seed)
    sample = xc[rng.choice(len(x), min(len(x), 5000), replace=False)].astype(np.float64)
    _, vecs = np.linalg.eigh(sample.T @ sample)
    top = vecs[:, ::-1][:, :dims].astype(np.float32)
    return xc @ top


def _project_rows(x: Rows, dims: int, seed: int) -> np.ndarray:
    n, d = x.shape
    total = np.zeros(d, np.float64)
    for _, block in x.blocks():
        total += block.sum(0, dtype=np.float64)
    mean = (total / max(1, n)).astype(np.float32)
    dims = min(dims, d, max(1, n - 1))
    rng = np.random.default_rng(seed)
    sample = (x.take(rng.choice(n, min(n, 5000), replace=False)) - mean).astype(np.float64)
    _, vecs = np.linalg.eigh(sample.T @ sample)
    top = vecs[:, ::-1][:, :dims].astype(np.float32)
    out = np.empty((n, dims), np.float32)
    for start, block in x.blocks():
        out[start:start + len(block)] = (block - mean) @ top
    return out


def unit(z: np.ndarray) -> np.ndarray:
    return (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-6)).astype(np.float32)


def out_of_fold_probs(x: np.ndarray, y: np.ndarray, n_classes: int, folds: int = 5, seed: int = 0,
                      cancel: CancelToken | None = None) -> np.ndarray:
    """Predicted probabilities of every sample from a model that never saw it (stratified k-fold
    logistic regression on standardised features)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=n_classes)
    k = int(max(2, min(folds, counts[counts > 0].min())))
    probs = np.zeros((len(y), n_classes), np.float64)
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for train_idx, test_idx in skf.split(x, y):
        check(cancel)
        xt = x[train_idx]
        mu, sd = xt.mean(0), xt.std(0) + 1e-6
        clf = LogisticRegression(C=C, max_iter=300, tol=1e-3)
        clf.fit((xt - mu) / sd, y[train_idx])
        p = clf.predict_proba((x[test_idx] - mu) / sd)
        probs[np.ix_(test_idx, clf.classes_)] = p
    probs = np.clip(probs, 1e-6, None)
    return probs / probs.sum(1, keepdims=True)


def label_issues(x: np.ndarray, y: np.ndarray, n_classes: int, cancel: CancelToken | None = None,
                 quick: bool = False):
    """Indices of samples whose label looks wrong, most likely first, with the out-of-fold
    probabilities. Classes with fewer than MIN_FOR_LABELS samples are left out of the check.
    ``quick``: x are quick training's (multi-stage) features, judged by its head
    (:func:`quick_oof_probs`); else a logistic regression on x."""
    counts = np.bincount(y, minlength=n_classes)
    present = np.flatnonzero(counts >= MIN_FOR_LABELS)
    if len(present) < 2:
        return np.zeros(0, np.int64), np.zeros((len(y), n_classes))
    keep = np.flatnonzero(np.isin(y, present))
    if not quick and isinstance(x, Rows):
        x = x.take(np.arange(len(x)))
    remap = {c: i for i, c in enumerate(present)}
    yk = np.array([remap[c] for c in y[keep]])
    pk = (quick_oof_probs if quick else out_of_fold_probs)(x[keep], yk, len(present), cancel=cancel)
    check(cancel)
    # prune_by_class: on seeds 0-2 and 4 of bench/doctor_data.py recall 0.92-1.00 at precision ~0.8
    # (prune_by_noise_rate 0.88-0.98 / 0.8; predicted_neq_given 1.00 / 0.5)
    # quick training's head: every image its held-out model puts in another class is a candidate
    # (prune_by_class kept 0.75-0.78 of the planted flips, all of which the held-out head had put in
    # their true class; strong_evidence then decides what is reported: bench/bench_doctor_labels.py)
    if quick:
        ranked = predicted_neq_given(yk, pk)
    else:
        from cleanlab.filter import find_label_issues

        ranked = find_label_issues(labels=yk, pred_probs=pk, filter_by="prune_by_class",
                                   return_indices_ranked_by="self_confidence", n_jobs=1)
    probs = np.zeros((len(y), n_classes))
    probs[np.ix_(keep, present)] = pk
    return keep[np.asarray(ranked, np.int64)], probs


def predicted_neq_given(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """cleanlab's ``find_label_issues(filter_by="predicted_neq_given",
    return_indices_ranked_by="self_confidence")`` (cleanlab 2.9, the same answer: tests compare
    them): the samples whose most likely class is not their label, by more than 1e-6, least
    likely label first. Here because importing cleanlab imports scikit-learn: 130-170 MB of the
    doctor's peak memory at 50,000 images (issue 25), for a comparison and a sort."""
    y = np.asarray(y)
    rows = np.arange(len(y))
    wrong = probs.argmax(1) != y
    nudged = np.array(probs, copy=True)
    nudged[rows, y] += 1e-6  # cleanlab's _reduce_issues: a near-tie with the label is no issue
    wrong &= nudged.argmax(1) != y
    idx = rows[wrong]
    return idx[np.argsort(probs[rows, y][wrong])]


def quick_oof_probs(x: np.ndarray, y: np.ndarray, n_classes: int, cancel: CancelToken | None = None) -> np.ndarray:
    """Out-of-fold probabilities from quick training's own head on quick training's features
    (``core.quickfit``: standardized principal axes, the softmax regression with its default
    regularisation, class weights), calibrated with a temperature fitted on them. Small classes
    get more folds and epochs (SMALL_CLASS)."""
    from cnndesk.core.training import head as quickfit
    from cnndesk.core.training.datasets import class_weights
    from cnndesk.core.trust import scores as trust

    counts = np.bincount(y, minlength=n_classes)
    n, d = x.shape
    big = n >= d  # quick training's basis would keep all d values: axes from a sample instead
    small = n <= SMALL_SET and not big and float(np.median(counts[counts > 0])) < SMALL_CLASS
    folds_wanted, epochs = (LABEL_FOLDS_SMALL, LABEL_EPOCHS_SMALL) if small else (quickfit.FOLDS, LABEL_EPOCHS)
    k = int(max(2, min(folds_wanted, counts[counts > 0].min())))
    folds = quickfit.stratified_folds(y, k)
    cw = class_weights(list(y), n_classes)
    logits = np.zeros((len(y), n_classes), np.float32)
    with trust.one_blas_thread():
        # label-free, so shared by the folds: one decomposition, not five. LABEL_AXES axes and
        # LABEL_EPOCHS epochs instead of quick training's 1024 and 200: about 5x faster, reported
        # flips on bench/bench_doctor_labels.py seeds 0-1 recall 0.95 / 1.0 at precision 0.95 / 0.98
        # (instead of 0.975 / 1.0 at 0.975 / 1.0)
        if not big:
            xa = _take(x, np.arange(n))
            z = quickfit.make_basis(xa, LABEL_AXES)(xa)
            del xa
        else:
            basis = _sampled_basis(x, cancel)
            z = np.empty((n, basis.proj.shape[1]), np.float32)
            for start in range(0, n, BLOCK):
                check(cancel)
                z[start:start + BLOCK] = basis(_take(x, np.arange(start, min(n, start + BLOCK))))
        for f in range(k):
            check(cancel)
            held = folds == f
            train = np.flatnonzero(~held)
            if big and len(train) > LABEL_TRAIN_MAX:
                train = np.sort(np.random.default_rng(f).choice(train, LABEL_TRAIN_MAX, replace=False))
            fit = quickfit.fit_linear(z[train], y[train], n_classes, class_w=cw, epochs=epochs, cancel=cancel)
            logits[held] = z[held] @ fit.w.T + fit.b
    check(cancel)
    return trust.softmax(logits, trust.fit_temperature(logits, y))


def _sampled_basis(x, cancel: CancelToken | None = None):
    """Quick training's basis (``make_basis``: standardized, spread floored, principal axes) for a
    big set: mean and spread from every row (a block at a time), LABEL_AXES axes from the Gram
    matrix of LABEL_SAMPLE rows (only the top eigenpairs: about 4x faster than all of them)."""
    import scipy.linalg

    from cnndesk.core.training import head as quickfit

    n, d = x.shape
    total, sq = np.zeros(d, np.float64), np.zeros(d, np.float64)
    for start in range(0, n, BLOCK):
        check(cancel)
        block = _take(x, np.arange(start, min(n, start + BLOCK))).astype(np.float64)
        total += block.sum(0)
        sq += (block * block).sum(0)
    mean = total / n
    spread = np.sqrt(np.maximum(sq / n - mean * mean, 0.0))
    scale = (np.maximum(spread, quickfit.SCALE_FLOOR * float(np.median(spread))) + 1e-6).astype(np.float32)
    mean = mean.astype(np.float32)
    rng = np.random.default_rng(0)
    xs = (_take(x, np.sort(rng.choice(n, min(n, LABEL_SAMPLE), replace=False))) - mean) / scale
    m = len(xs)
    r = min(LABEL_AXES, m)
    evals, u = scipy.linalg.eigh(xs @ xs.T, subset_by_index=[m - r, m - 1], driver="evx")
    evals, u = evals[::-1], u[:, ::-1]
    keep = evals > max(evals[0], 1e-12) * 1e-8
    proj = (xs.T @ u[:, keep]) / np.sqrt(evals[keep])
    return quickfit.Basis(mean, scale, proj.astype(np.float32))


def few_per_class(y: np.ndarray) -> bool:
    """Whether the median class checked (at least MIN_FOR_LABELS images) has fewer than
    FEW_PER_CLASS images."""
    counts = np.bincount(np.asarray(y, np.int64))
    counts = counts[counts >= MIN_FOR_LABELS]
    return bool(len(counts)) and float(np.median(counts)) < FEW_PER_CLASS


def strong_evidence(probs: np.ndarray, y: np.ndarray, neighbours: np.ndarray | None = None,
                    few: bool | None = None) -> np.ndarray:
    """Label suspicions worth reporting: the held-out model gives the folder's class at most
    GIVEN_AT_MOST and another class at least OTHER_AT_LEAST (chosen on seeds 0-1 of
    bench/bench_doctor_labels.py: recall 0.975-1.0 at precision 0.975-1.0 of planted flips;
    every candidate, 1.0 at 0.91-0.93; GIVEN_AT_MOST 0.2 -> 0.1 with the small-class head on
    seeds 0-1 of bench/exp_doctor_pairs.py: wrong reports 53 -> 26 in 24 folders, flips found
    653 -> 658 of 680; held out with NOT_OWN_AT_MOST, seeds 2-7 at 30 per class: wrong 73 -> 29,
    found 427 -> 455 of 468), and -- where ``neighbours`` (each image's nearest other images, row indices, -1 for
    none) are given -- at most NEIGHBOURS_OWN_AT_MOST of its neighbours carry its label: a moved
    image sits among its true class, while a hard image that the held-out model gets wrong still
    sits among its own (bench/exp_doctor_knn.py, held out: wrong reports 50 -> 29 at 30 images
    per class, 36 -> 26 at 100; 4 of 680 flips lost). Also reported, with neighbours: the folder's
    class at most NOT_OWN_AT_MOST and none of the neighbours carries it, however unsure the model
    is of the right class (look-alike classes: a box with or without a handle). ``few`` (default:
    :func:`few_per_class` of ``y``): with neighbours, only an image whose folder's class is at most
    GIVEN_AT_MOST and none of whose neighbours carries it is reported (FEW_PER_CLASS)."""
    given = probs[np.arange(len(y)), y]
    strong = (given <= GIVEN_AT_MOST) & (probs.max(1) >= OTHER_AT_LEAST)
    if neighbours is not None and len(neighbours) == len(y) and neighbours.shape[1]:
        valid = neighbours >= 0
        own = (y[np.where(valid, neighbours, 0)] == y[:, None]) & valid
        none_own = (probs.argmax(1) != y) & valid.any(1) & ~own.any(1)
        if few_per_class(y) if few is None else few:
            # rows without neighbours (none found) keep the model's verdict: never hidden
            return np.where(valid.any(1), (given <= GIVEN_AT_MOST) & none_own, strong)
        share = own.sum(1) / np.maximum(valid.sum(1), 1)
        strong &= (share <= NEIGHBOURS_OWN_AT_MOST) | ~valid.any(1)
        # surely not its class, even where the model cannot tell which one it is
        strong |= (given <= NOT_OWN_AT_MOST) & none_own
    return strong


def knn_distance(z: np.ndarray, k: int = 5, cancel: CancelToken | None = None,
                 nearest: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Mean cosine distance of each unit row to its k nearest other rows
    (:func:`cnndesk.core.common.neighbours.knn`; ``nearest``: its answer for these rows with at
    least k columns, when the caller has it already)."""
    from cnndesk.core.common import neighbours

    n = len(z)
    k = max(1, min(k, n - 1))
    dist, _ = nearest if nearest is not None else neighbours.knn(z, z, k, exclude_self=True, cancel=cancel)
    return dist[:, :k].mean(1).astype(np.float32)


def outliers(z: np.ndarray, k: int = 5, spread: float = 4.5, cancel: CancelToken | None = None,
             nearest: tuple[np.ndarray, np.ndarray] | None = None):
    """(indices flagged as unlike the rest, their scores in 0..1, all distances). A sample is an
    outlier when its k-NN distance lies more than ``spread`` robust standard deviations (MAD)
    above the median of the dataset. ``nearest``: as for :func:`knn_distance`."""
    if len(z) < 10:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(len(z))
    d = knn_distance(z, k, cancel=cancel, nearest=nearest)
    med = float(np.median(d))
    mad = float(np.median(np.abs(d - med))) * 1.4826 + 1e-6
    zscore = (d - med) / mad
    idx = np.flatnonzero(zscore > spread)
    idx = idx[np.argsort(-zscore[idx])]
    score = 1.0 - np.exp(-(zscore[idx] - spread) / spread)
    return idx, np.clip(0.5 + score / 2, 0, 1), d
