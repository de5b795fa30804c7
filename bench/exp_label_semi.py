"""Experiment (issue 22, held-out risk found 2026-12-07 evening): the suggestion model with few
labels on small grey look-alike glyphs. For each folder, the app's own picks (oracle answers, as
bench_label.simulate) and random picks to each budget; on the same labelled sets, the accuracy of
the suggestions on the rest of the folder by several models:

* ``linear``  the session's suggester (softmax regression on the 128-axis labelling space);
* ``spread``  label spreading over the folder's 10-nearest-neighbour graph (cosine, the space's
  unit rows; Zhou et al. 2004), from the answers;
* ``mix``     the mean of the two distributions.

Usage: PYTHONPATH=. python bench/exp_label_semi.py --families glyphs --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("CNNDESK_CACHE_DIR", str(HERE / "out" / "cache"))

import bench_label  # noqa: E402


def spread(unit: np.ndarray, idx: np.ndarray, y: np.ndarray, k: int, nn: int = 10, alpha: float = 0.99,
           iters: int = 30) -> np.ndarray:
    """Label spreading on the symmetric, degree-normalised kNN graph; (N, k) distributions."""
    from cnndesk.core.common import neighbours

    n = len(unit)
    d, nb = neighbours.knn(unit, unit, nn, metric="cosine", exclude_self=True)
    w = np.exp(-np.maximum(d, 0) / max(float(np.median(d)), 1e-6)).astype(np.float32)
    rows = np.repeat(np.arange(n), nn)
    from scipy import sparse

    a = sparse.csr_matrix((w.ravel(), (rows, nb.ravel())), shape=(n, n))
    a = a.maximum(a.T)
    deg = np.asarray(a.sum(1)).ravel()
    dinv = 1.0 / np.sqrt(np.maximum(deg, 1e-12))
    s = sparse.diags(dinv) @ a @ sparse.diags(dinv)
    y0 = np.zeros((n, k), np.float32)
    y0[idx, y] = 1.0
    f = y0.copy()
    for _ in range(iters):
        f = alpha * (s @ f) + (1 - alpha) * y0
    f = np.maximum(f, 0) + 1e-9
    return f / f.sum(1, keepdims=True)


SPACES: dict = {}


def evaluate(session, y_true: np.ndarray, classes: list[str]) -> dict:
    labelled = np.array(sorted(session.labelled), int)
    rest = np.setdiff1d(np.arange(len(session.paths)), labelled)
    k = len(classes)
    y_l = y_true[labelled]
    m = session.model()
    probs = m.probs(session.space.z)  # no "none of these" answers in the simulation
    cls_idx = np.array([classes.index(c) for c in m.classes])
    lin = np.zeros((len(session.paths), k), np.float32)
    lin[:, cls_idx] = probs
    out = {"linear": round(float((lin[rest].argmax(1) == y_true[rest]).mean()), 4)}
    for name, p in variants(session.space.z, labelled, y_l, k).items():
        out[name] = round(float((p[rest].argmax(1) == y_true[rest]).mean()), 4)
    for dim, z in SPACES.items():
        p = variants(z, labelled, y_l, k, only_same=True)["same"]
        out[f"dim{dim}" if isinstance(dim, int) else dim] = round(float((p[rest].argmax(1) == y_true[rest]).mean()), 4)
    return out


def class_weights(y: np.ndarray, k: int) -> np.ndarray:
    """As the suggester weighs classes: inversely to their answers, mean 1."""
    c = np.bincount(y, minlength=k).astype(np.float64)
    raw = len(y) / (k * np.maximum(c, 1))
    return (raw / raw.mean()).astype(np.float32)


def variants(z: np.ndarray, idx: np.ndarray, y: np.ndarray, k: int, only_same: bool = False) -> dict:
    """Other suggestion models on the same answers: (N, k) scores each."""
    from cnndesk.core.labelling import suggest
    from cnndesk.core.training import head as quickfit

    cw = class_weights(y, k)
    base = dict(epochs=suggest.EPOCHS, lr=suggest.LR, smoothing=0.05, class_w=cw, seed=0)
    out = {}

    def fit(zz, yy, **kw):
        f = quickfit.fit_linear(zz, yy, k, **{**base, **kw})
        return z @ f.w.T + f.b

    out["same"] = fit(z[idx], y)
    if only_same:
        return out
    wd = quickfit.DEFAULT_WEIGHT_DECAY
    out["wd/3"] = fit(z[idx], y, weight_decay=wd / 3)
    out["wd*3"] = fit(z[idx], y, weight_decay=wd * 3)
    out["wd*10"] = fit(z[idx], y, weight_decay=wd * 10)
    for thr in (0.9, 0.97):  # self-training: confident unlabelled images join once
        logits = out["same"]
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        extra = np.setdiff1d(np.nonzero(p.max(1) >= thr)[0], idx)
        zz = np.concatenate([z[idx], z[extra]])
        yy = np.concatenate([y, p[extra].argmax(1)])
        out[f"self{thr}"] = fit(zz, yy, class_w=class_weights(yy, k))
    return out


def run(family: str, seed: int, budgets, draws: int = 2) -> dict:
    from cnndesk.core.labelling import LabelSession

    d, truth = bench_label.folder(family, seed)
    paths = sorted(truth)
    x = bench_label.embeddings(paths)
    from cnndesk.core.labelling import picking

    SPACES.clear()
    for dim in DIMS:
        SPACES[dim] = picking.make_space(x, dim=dim, seed=seed).z
    for name in BLOCKS:
        SPACES[name] = picking.make_space(blocks(x, name), seed=seed).z
    classes = sorted(set(truth.values()))
    y = np.array([classes.index(truth[p]) for p in paths])
    res: dict = {"family": family, "seed": seed, "app": {}, "random": {}}
    s = LabelSession(bench_label.OUT, paths, x, seed=seed)
    pending = list(s.ask(len(classes)))
    for b in budgets:
        while len(s.labelled) < b:
            if not pending:
                pending = s.ask(min(10, b - len(s.labelled)))
            q = pending.pop(0)
            s.answer(q.index, classes[y[q.index]])
        pending = []
        res["app"][b] = evaluate(s, y, classes)
    for b in budgets:
        rows = []
        for dr in range(draws):
            r = LabelSession(bench_label.OUT, paths, x, seed=seed)
            for i in np.random.default_rng(1000 * seed + 17 * dr + b).choice(len(paths), b, replace=False):
                r.answer(int(i), classes[y[i]])
            rows.append(evaluate(r, y, classes))
        res["random"][b] = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
    return res


DIMS: list[int] = []
BLOCKS: list[str] = []
# the default network's "multi" row: mean and max of three late stages (112, 192, 320 channels),
# then the pooled penultimate layer (1,280)
STAGE_COLS, PEN_COLS = slice(0, 1248), slice(1248, 2528)
MAX_COLS = np.r_[112:224, 416:608, 928:1248]
MEAN_COLS = np.r_[0:112, 224:416, 608:928]


def blocks(x: np.ndarray, name: str) -> np.ndarray:
    """Other selections (or weights, by repeating columns) of the feature blocks."""
    st, pen = x[:, STAGE_COLS], x[:, PEN_COLS]
    return {"stages": st, "pen": pen, "stages2x": np.concatenate([st, st, pen], 1),
            "pen2x": np.concatenate([st, pen, pen], 1),
            "max+pen": np.concatenate([x[:, MAX_COLS], pen], 1),
            "mean+pen": np.concatenate([x[:, MEAN_COLS], pen], 1)}[name]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", nargs="+", default=["glyphs"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--budgets", nargs="+", type=int, default=[20, 50, 100, 200])
    ap.add_argument("--dims", nargs="*", type=int, default=[])
    ap.add_argument("--blocks", nargs="*", default=[])
    a = ap.parse_args()
    DIMS[:] = a.dims
    BLOCKS[:] = a.blocks
    for fam in a.families:
        for seed in a.seeds:
            print(json.dumps(run(fam, seed, a.budgets)), flush=True)


if __name__ == "__main__":
    main()
