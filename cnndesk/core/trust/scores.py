"""Trustworthy predictions for user models (numpy only, no torch):

* **Novelty** ("not one of my classes"): the cosine distance from an image's embedding to the
  nearest embedding of the training images, in a standardized feature space. The threshold is the
  95th percentile of *held-out* in-class distances (out-of-fold, or the validation images against
  the training images), so about 5 % of the model's own kind of images are flagged while images
  unlike any training image are.
* **Temperature scaling** (Guo et al. 2017): one scalar T dividing the logits, fitted to minimise
  the negative log-likelihood of held-out predictions; it changes confidences, never the ranking.
* **Calibration error** (ECE, 10 equal-width bins of top-1 confidence) and the reliability
  diagram's bins.

Stored in the model file as tensors ``novelty.bank``, ``novelty.mean``, ``novelty.scale`` and JSON
fields ``temperature`` and ``novelty`` ({"threshold", "quantile", "features", ...}). Model files
without them load as before: temperature 1, no unknown flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_QUANTILE = 0.95
MAX_BANK = 4000  # training embeddings kept in the file (a random subset beyond that)
PCA_DIM = 128  # the bank is kept on the training images' top principal axes: small files
QUANTILES = (0.5, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 0.995, 1.0)  # held-out distances kept for Preferences


def one_blas_thread():
    """A context with one BLAS thread. Small numpy matrix work on a busy desktop: multithreaded
    OpenBLAS made quick training's head 19x slower on 2 cores shared with other programs (44 s vs
    2.3 s, measured); one thread never loses much on these sizes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency, but never fatal
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def normalize_rows(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


@dataclass
class Novelty:
    """Nearest-neighbour cosine distance in a standardized embedding space."""

    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    bank: np.ndarray  # (N, r) unit rows (float16 in the file)
    threshold: float
    quantile: float = DEFAULT_QUANTILE
    features: str = "multi"  # which embedding: "multi" / "last" (quick) or "penultimate" (full)
    proj: np.ndarray | None = None  # (D, r) principal axes; None: all D values
    table: tuple = ()  # ((quantile, held-out distance), ...): thresholds for other flag rates
    # "knn+maha" (core.novelty): also the class-conditional Mahalanobis distance on the principal
    # axes; each distance is put on the scale of its held-out in-class values, the score is the larger
    means: np.ndarray | None = None  # (classes, r) class means on the principal axes
    icov: np.ndarray | None = None  # (r, r) inverse of the shared within-class covariance
    norm: tuple = ()  # (knn centre, knn span, Mahalanobis centre, Mahalanobis span[, synth centre, synth span])
    # "knn+maha+synth" (full models, core.novelty): also how much nearer an image is to the nearest
    # training image than to the nearest *synthesised outlier* (the user's own images with their
    # content removed: low-pass, blurred, flat colour), on the same principal axes
    outliers: np.ndarray | None = None  # (M, r) unit rows
    # full models ("multi_early" features): a second detector of the same kind on the row's first
    # columns (the pooled *early* stages of the fine-tuned network, which fine-tuning changes least:
    # they still tell other textures, glyphs and photos apart); this detector then reads the
    # columns after ``lead`` and the score is the mean of the two normalised scores (issue 23)
    early: Novelty | None = None
    lead: int = 0

    @property
    def metric(self) -> str:
        if self.means is None or self.icov is None:
            return "cosine-nn"
        if len(self.norm) == 6 and self.outliers is not None:
            return "knn+maha+synth"
        return "knn+maha" if len(self.norm) == 4 else "cosine-nn"

    def coords(self, feats: np.ndarray) -> np.ndarray:
        z = (np.asarray(feats, np.float32) - self.mean) / self.scale
        return z @ self.proj if self.proj is not None else z

    def project(self, feats: np.ndarray) -> np.ndarray:
        return normalize_rows(self.coords(feats))

    def threshold_for(self, flag_rate: float) -> float:
        """The threshold that flags about ``flag_rate`` (0-1) of held-out in-class images, read
        off the stored quantiles (interpolated); 0 turns the flag off (infinite threshold)."""
        if flag_rate <= 0:
            return float("inf")
        if not self.table:
            return self.threshold
        qs = np.array([q for q, _ in self.table])
        ds = np.array([d for _, d in self.table])
        return float(np.interp(1.0 - flag_rate, qs, ds))

    def score(self, feats: np.ndarray) -> np.ndarray:
        """Novelty: "cosine-nn": 1 - cosine similarity to the nearest training image (0-2);
        "knn+maha": the larger of that and the Mahalanobis distance to the nearest class, each
        as (value - held-out median) / (held-out 95th percentile - median), so about 1 at the
        default threshold."""
        if self.early is not None:
            feats = np.asarray(feats, np.float32)
            own = self._score(feats[:, self.lead:])
            return ((own + self.early.score(feats[:, :len(self.early.mean)])) * np.float32(0.5)).astype(np.float32)
        return self._score(feats)

    def _score(self, feats: np.ndarray) -> np.ndarray:
        z = self.coords(feats)
        u = normalize_rows(z)
        knn = nearest_distance(u, np.asarray(self.bank, np.float32))  # no copy per call
        metric = self.metric
        if metric == "cosine-nn":
            return knn
        c0, s0, c1, s1 = self.norm[:4]
        out = np.maximum((knn - c0) / s0, (mahalanobis(z, self.means, self.icov) - c1) / s1)
        if metric == "knn+maha+synth":
            c2, s2 = self.norm[4:]
            out = np.maximum(out, (synth_ratio(knn, nearest_distance(u, self.outliers)) - c2) / s2)
        return out.astype(np.float32)

    def flags(self, scores: np.ndarray, threshold: float | None = None) -> np.ndarray:
        return np.asarray(scores) > (self.threshold if threshold is None else threshold)

    def tensors(self) -> dict[str, np.ndarray]:
        t = {"novelty.mean": self.mean.astype(np.float32), "novelty.scale": self.scale.astype(np.float32),
             "novelty.bank": self.bank.astype(np.float16)}
        if self.proj is not None:
            t["novelty.proj"] = self.proj.astype(np.float16)
        if self.metric != "cosine-nn":
            t["novelty.means"] = self.means.astype(np.float32)
            t["novelty.icov"] = self.icov.astype(np.float32)
        if self.metric == "knn+maha+synth":
            t["novelty.outliers"] = self.outliers.astype(np.float16)
        if self.early is not None:  # "novelty.early_<name>" (bundles turn the first "." into "_" and back)
            t.update({f"novelty.early_{k[len('novelty.'):]}": v for k, v in self.early.tensors().items()})
        return t

    def info(self) -> dict:
        return {"threshold": round(float(self.threshold), 6), "quantile": self.quantile,
                "features": self.features, "bank": int(len(self.bank)), "metric": self.metric,
                "held_out_quantiles": [[q, round(float(d), 6)] for q, d in self.table],
                **({"norm": [float(v) for v in self.norm]} if self.metric != "cosine-nn" else {}),
                **({"early": self.early.info(), "lead": int(self.lead)} if self.early is not None else {})}

    @classmethod
    def from_file(cls, info: dict, tensors: dict[str, np.ndarray]) -> Novelty:
        proj = tensors.get("novelty.proj")
        proj = written_axes(proj) if proj is not None else None
        table = tuple((float(q), float(d)) for q, d in info.get("held_out_quantiles", []))
        nov = cls(tensors["novelty.mean"].astype(np.float32), tensors["novelty.scale"].astype(np.float32),
                  tensors["novelty.bank"].astype(np.float32), float(info["threshold"]),
                  float(info.get("quantile", DEFAULT_QUANTILE)), str(info.get("features", "multi")),
                  proj.astype(np.float32) if proj is not None else None, table)
        metric = info.get("metric", "cosine-nn")
        if metric not in ("cosine-nn", "knn+maha", "knn+maha+synth"):
            raise ValueError(f"novelty: unknown metric {str(metric)[:40]!r}")  # refuse, never guess
        if metric != "cosine-nn":
            norm = tuple(float(v) for v in info["norm"])
            if len(norm) != (6 if metric == "knn+maha+synth" else 4) or min(norm[1::2]) <= 0:
                raise ValueError("novelty: bad normalisation")
            nov.means, nov.icov, nov.norm = (tensors["novelty.means"].astype(np.float32),
                                             tensors["novelty.icov"].astype(np.float32), norm)
            if metric == "knn+maha+synth":
                nov.outliers = tensors["novelty.outliers"].astype(np.float32)
            if nov.metric != metric:
                raise ValueError("novelty: incomplete detector")
        early = info.get("early")
        if early is not None:
            if not isinstance(early, dict) or "early" in early:
                raise ValueError("novelty: bad early-stage detector")
            nov.early = cls.from_file(early, {f"novelty.{k[len('novelty.early_'):]}": v for k, v in tensors.items()
                                              if k.startswith("novelty.early_")})
            nov.lead = int(info["lead"])
            if nov.early.metric != nov.metric or not 0 < nov.lead or len(nov.early.mean) <= nov.lead:
                raise ValueError("novelty: bad early-stage detector")
        return nov


def synth_ratio(d_in: np.ndarray, d_out: np.ndarray) -> np.ndarray:
    """d_in / (d_in + d_out): 0 on a training image, 1 on a synthesised outlier."""
    return (d_in / (d_in + d_out + 1e-6)).astype(np.float32)


def written_axes(proj: np.ndarray) -> np.ndarray:
    """Principal axes as read from a model file. They are orthonormal columns; model files written
    before the writer forced C order hold some (numpy's eigenvectors: full models' early-stage
    detector from 465+ training images, quick models' from 2,529+) as their Fortran-order bytes
    read in C order -- the detector then flagged every image. Such axes are put back in order."""
    p = np.asarray(proj, np.float32)

    def off(a: np.ndarray) -> float:
        return float(np.abs(a.T @ a - np.eye(a.shape[1], dtype=np.float32)).max()) if a.ndim == 2 else 0.0

    if p.ndim != 2 or off(p) < AXES_TOLERANCE:
        return p
    back = np.ascontiguousarray(p.ravel().reshape(p.shape[1], p.shape[0]).T)
    return back if off(back) < AXES_TOLERANCE else p


AXES_TOLERANCE = 0.05  # |P^T P - I| of float16 axes: about 1e-3


def pad_head(weight: np.ndarray, width: int) -> np.ndarray:
    """A full model's classifier (k, D) as a head on its multi-stage features (k, width): zeros
    for the stage columns, the weights on the last D (the penultimate layer), same logits."""
    weight = np.asarray(weight, np.float32)
    if weight.ndim != 2 or weight.shape[1] > width:
        raise ValueError(f"a head of width {weight.shape[-1]} does not fit {width} features")
    out = np.zeros((weight.shape[0], width), np.float32)
    out[:, width - weight.shape[1]:] = weight
    return out


def mahalanobis(z: np.ndarray, means: np.ndarray, icov: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row of z to the nearest of ``means`` (shared inverse
    covariance ``icov``): min over c of (z - m_c)' icov (z - m_c)."""
    z = np.asarray(z, np.float32)
    za = z @ icov
    d = (za * z).sum(1)[:, None] - 2.0 * (za @ means.T) + ((means @ icov) * means).sum(1)[None, :]
    return np.maximum(d.min(1), 0.0).astype(np.float32)


def nearest_distance(q: np.ndarray, bank: np.ndarray, exclude_self: bool = False, chunk: int = 512) -> np.ndarray:
    """1 - max cosine similarity of each (unit) row of q to the (unit) rows of bank."""
    out = np.empty(len(q), np.float32)
    for s in range(0, len(q), chunk):
        sim = q[s:s + chunk] @ bank.T
        if exclude_self:
            idx = np.arange(s, min(s + chunk, len(q)))
            sim[idx - s, idx] = -np.inf
        out[s:s + chunk] = 1.0 - sim.max(axis=1)
    return out


def standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-value centring and scaling, the scale floored by the median spread: with few images a
    plain per-value standard deviation makes values that barely varied in training dominate the
    distance (measured: 18 % instead of 6 % of held-out texture images flagged)."""
    x = np.asarray(x, np.float64)
    s = x.std(0)
    return x.mean(0).astype(np.float32), (s + np.median(s) + 1e-6).astype(np.float32)


def principal_axes(z: np.ndarray, r: int = PCA_DIM) -> np.ndarray | None:
    """The top ``r`` principal axes (D, r) of centred rows z, via the smaller Gram matrix."""
    n, d = z.shape
    if d <= r:
        return None
    zc = z - z.mean(0)
    if n < d:
        evals, u = np.linalg.eigh(zc @ zc.T)
        order = np.argsort(evals)[::-1][: min(r, n)]
        keep = order[evals[order] > evals[order[0]] * 1e-9]
        return ((zc.T @ u[:, keep]) / np.sqrt(evals[keep])).astype(np.float32)
    evals, v = np.linalg.eigh(zc.T @ zc)
    return v[:, np.argsort(evals)[::-1][:r]].astype(np.float32)


def threshold_table(held: np.ndarray) -> tuple:
    return tuple((q, float(np.quantile(held, q))) for q in QUANTILES)


def fit_novelty_oof(x: np.ndarray, folds: np.ndarray, quantile: float = DEFAULT_QUANTILE,
                    features: str = "multi", seed: int = 0) -> tuple[Novelty, np.ndarray]:
    """Threshold from out-of-fold distances (each image against the other folds' images); the bank
    holds every image. Returns the novelty model and the out-of-fold distances."""
    mean, scale = standardizer(x)
    zs = (np.asarray(x, np.float32) - mean) / scale
    proj = principal_axes(zs)
    z = normalize_rows(zs @ proj if proj is not None else zs)
    oof = np.empty(len(z), np.float32)
    for f in np.unique(folds):
        held = folds == f
        oof[held] = nearest_distance(z[held], z[~held])
    bank = subsample_bank(z, seed)
    nov = Novelty(mean, scale, bank, float(np.quantile(oof, quantile)), quantile, features, proj, threshold_table(oof))
    return nov, oof


def fit_novelty_heldout(x_train: np.ndarray, x_held: np.ndarray, quantile: float = DEFAULT_QUANTILE,
                        features: str = "penultimate", seed: int = 0) -> tuple[Novelty, np.ndarray]:
    """Threshold from held-out images' distances to the training images; the bank holds both."""
    mean, scale = standardizer(x_train)
    zs = (np.asarray(x_train, np.float32) - mean) / scale
    proj = principal_axes(zs)
    nov = Novelty(mean, scale, np.zeros((0, 1), np.float32), 0.0, quantile, features, proj)
    zt = nov.project(x_train)
    zh = nov.project(x_held)
    held = nearest_distance(zh, zt)
    nov.bank = subsample_bank(np.concatenate([zt, zh]), seed)
    nov.threshold = float(np.quantile(held, quantile))
    nov.table = threshold_table(held)
    return nov, held


def subsample_bank(z: np.ndarray, seed: int) -> np.ndarray:
    if len(z) <= MAX_BANK:
        return z
    idx = np.random.default_rng(seed).choice(len(z), MAX_BANK, replace=False)
    return z[np.sort(idx)]


# -- calibration ---------------------------------------------------------------------------------


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    p = softmax(logits, temperature)
    return float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray, lo: float = 0.05, hi: float = 20.0,
                    prior: tuple[float, float] | None = None) -> float:
    """The T minimising the NLL of held-out ``logits`` / T (a coarse log-grid, then golden section).
    ``prior`` (T0, s): the maximum a posteriori T under a log-normal prior, i.e. minimising the summed
    NLL plus (log T - log T0)^2 / (2 s^2): with few held-out answers, all of them right, the plain
    fit runs to ``lo`` (every confidence then near 1); the prior keeps it near T0 until the
    held-out answers say otherwise."""
    logits = np.asarray(logits, np.float64)
    y = np.asarray(y, int)
    if len(y) < 2:
        return 1.0 if prior is None else float(np.clip(prior[0], lo, hi))

    def loss(t: float) -> float:
        if prior is None:
            return nll(logits, y, t)
        return nll(logits, y, t) + (np.log(t) - np.log(prior[0])) ** 2 / (2 * prior[1] ** 2 * len(y))

    grid = np.exp(np.linspace(np.log(lo), np.log(hi), 60))
    losses = [loss(t) for t in grid]
    i = int(np.argmin(losses))
    a, b = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, len(grid) - 1)])
    g = (np.sqrt(5) - 1) / 2
    for _ in range(30):
        c, d = b - g * (b - a), a + g * (b - a)
        if loss(np.exp(c)) < loss(np.exp(d)):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2))


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> dict:
    """Top-1 reliability diagram: per bin the count, mean confidence and accuracy; and the ECE
    (the count-weighted mean |accuracy - confidence|)."""
    probs = np.asarray(probs, np.float64)
    y = np.asarray(y, int)
    conf = probs.max(1) if len(probs) else np.zeros(0)
    correct = (probs.argmax(1) == y) if len(probs) else np.zeros(0, bool)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        m = which == b
        n = int(m.sum())
        acc = float(correct[m].mean()) if n else 0.0
        cf = float(conf[m].mean()) if n else 0.0
        rows.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": n, "accuracy": acc, "confidence": cf})
        ece += n * abs(acc - cf)
    return {"bins": rows, "ece": ece / max(len(y), 1)}


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    return reliability(probs, y, bins)["ece"]


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Probability that an unrelated image scores higher than an in-class one (ties count half)."""
    a = np.asarray(in_scores, np.float64)
    b = np.asarray(out_scores, np.float64)
    if not len(a) or not len(b):
        return float("nan")
    allv = np.concatenate([a, b])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    ranks[order] = np.arange(1, len(allv) + 1)
    # average ranks of ties
    _, inv, counts = np.unique(allv, return_inverse=True, return_counts=True)
    sums = np.zeros(len(counts))
    np.add.at(sums, inv, ranks)
    ranks = (sums / counts)[inv]
    rb = ranks[len(a):].sum()
    return float((rb - len(b) * (len(b) + 1) / 2) / (len(a) * len(b)))


# -- model files ---------------------------------------------------------------------------------


@dataclass
class ModelTrust:
    """What a model file says about trusting its predictions (defaults for older files and for
    the built-in ImageNet models: temperature 1, no novelty detector)."""

    temperature: float = 1.0
    novelty: Novelty | None = None
    # full models: the classifier for the numpy head, on the features the detector reads (for a
    # "multi" detector zero-padded on the left: the penultimate layer is the multi-stage row's tail)
    head: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def variant(self) -> str:
        """The network output a full model's head and detector read: "multi" (the fine-tuned
        network's multi-stage features, ``networks.multistage``) or "features" (older files)."""
        if self.novelty is not None and self.novelty.features in ("multi", "multi_early"):
            return self.novelty.features
        return "features"


def load_trust(spec) -> ModelTrust:
    """Read temperature, novelty detector and (full models) the classifier head from a user model
    file; no torch. Anything missing or malformed falls back to the defaults."""
    meta = getattr(spec, "metadata", {}) or {}
    path = meta.get("file")
    try:
        temperature = float(meta.get("temperature", 1.0))
    except (TypeError, ValueError):
        temperature = 1.0
    if not (0.01 <= temperature <= 100):
        temperature = 1.0
    info = meta.get("novelty")
    if info is None:  # a detector older versions cannot run (training.config)
        info = meta.get("novelty2")
    if info is None:  # one that versions before the early-stage detector cannot run
        info = meta.get("novelty3")
    if not path or not isinstance(info, dict):
        return ModelTrust(temperature)
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            keys = set(f.keys())
            names = ("mean", "scale", "bank", "proj", "means", "icov", "outliers")
            tensors = {k: f.get_tensor(k) for k in [f"novelty.{n}" for n in names] + [f"novelty.early_{n}" for n in names]
                       if k in keys}
            head = None
            hk = meta.get("head_keys")
            if hk and all(k in keys for k in hk):
                head = (f.get_tensor(hk[0]).astype(np.float32), f.get_tensor(hk[1]).astype(np.float32))
        novelty = Novelty.from_file(info, tensors)
        if head is not None and novelty.features in ("multi", "multi_early"):
            head = (pad_head(head[0], novelty.lead + len(novelty.mean)), head[1])
    except Exception:  # a damaged detector must not stop the model from classifying
        return ModelTrust(temperature)
    return ModelTrust(temperature, novelty, head)
