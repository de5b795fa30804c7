"""Experiment (issue 22, look-alike glyphs): on the SAME labelled sets as a bench_label_calib.py store
(the app's picks and the random draws at each budget), the accuracy of the suggestions on the rest
of the folder by the session's suggester and by label-aware alternatives that can use the
low-variance directions a small detail lives in (a breve, a tail), which the unsupervised
128-axis space scales down:

* ``linear``   the session's head (quickfit.fit_linear as suggest._fit's final fit);
* ``lda:A``    shrinkage LDA on the space: pooled within-class covariance shrunk toward its mean
  variance by A, class means, equal priors;
* ``wlin:A``   the space whitened by that shrunk within-class covariance (rescaled to the same RMS),
  then the session's head.

    PYTHONPATH=. python bench/exp_label_lda.py STORE FAMILIES SEEDS [--random] MODEL...
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import exp_label_pairs as ep  # noqa: E402

from cnndesk.core.labelling import picking, suggest  # noqa: E402
from cnndesk.core.training import head as quickfit  # noqa: E402


def class_weights(y: np.ndarray, k: int) -> np.ndarray:
    """As the suggester weighs its classes (suggest.py): inverse frequency, mean 1."""
    c = np.bincount(y, minlength=k).astype(np.float64)
    raw = len(y) / (k * np.maximum(c, 1))
    return (raw / raw.mean()).astype(np.float32)


def within_cov(z: np.ndarray, y: np.ndarray, k: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    means = np.stack([z[y == c].mean(0) if (y == c).any() else np.zeros(z.shape[1]) for c in range(k)])
    r = z - means[y]
    cov = r.T @ r / max(1, len(z) - k)
    target = np.trace(cov) / len(cov)
    return (1 - alpha) * cov + alpha * target * np.eye(len(cov)), means


def predict(model: str, z: np.ndarray, idx: np.ndarray, y: np.ndarray, k: int, seed: int) -> np.ndarray:
    zl, yl = z[idx], y
    kw = dict(epochs=suggest.EPOCHS, lr=suggest.LR, smoothing=0.05,
              class_w=class_weights(yl, k), seed=seed)
    name, _, val = model.partition(":")
    if name == "linear":
        f = quickfit.fit_linear(zl, yl, k, **kw)
        return (z @ f.w.T + f.b).argmax(1)
    alpha = float(val)
    cov, means = within_cov(zl, yl, k, alpha)
    if name == "lda":
        w = np.linalg.solve(cov, means.T).T
        b = -0.5 * (w * means).sum(1)
        present = np.bincount(yl, minlength=k) > 0
        return np.where(present[None, :], z @ w.T + b, -np.inf).argmax(1)
    if name == "wlin":
        vals, vecs = np.linalg.eigh(cov)
        tr = vecs / np.sqrt(np.maximum(vals, 1e-9))
        zw = (z - z.mean(0)) @ tr
        zw *= picking.Z_NORM / np.sqrt((zw ** 2).sum(1).mean())
        f = quickfit.fit_linear(zw[idx].astype(np.float32), yl, k, **kw)
        return (zw @ f.w.T + f.b).argmax(1)
    raise ValueError(model)


def draws_main(fams: list[str], seeds: list[int], models: list[str], draws: int = 3) -> None:
    """Random picks drawn as bench_label.simulate draws them (3 per budget, seed = folder seed): the
    accuracy on the rest of the folder per model; one JSON line per folder to bench/out/exp_random.jsonl."""
    import json

    for fam in fams:
        for seed in seeds:
            paths, x, y_all, classes = ep.folder_data(fam, seed)
            z = picking.make_space(x, seed=seed).z
            out = {}
            for bud in (10, 20, 50, 100, 200):
                for m in models:
                    accs = []
                    for d in range(draws):
                        idx = np.random.default_rng(1000 * seed + 17 * d + bud).choice(len(paths), bud, replace=False)
                        yl = y_all[idx]
                        present = np.unique(yl)  # the session's classes: only those answered
                        remap = np.searchsorted(present, yl)
                        rest = np.setdiff1d(np.arange(len(z)), idx)
                        pred = present[predict(m, z, idx, remap, len(present), seed)]
                        accs.append(float((pred[rest] == y_all[rest]).mean()))
                    out.setdefault(m, {})[bud] = float(np.mean(accs))
            line = {"family": fam, "seed": seed, "random": out, "load": [round(v, 1) for v in os.getloadavg()]}
            with (HERE / "out" / "exp_random.jsonl").open("a") as fh:
                fh.write(json.dumps(line) + "\n")
            print(json.dumps(line), flush=True)


def main() -> None:
    if sys.argv[1] == "draws":  # draws FAMILIES SEEDS MODEL...
        draws_main(sys.argv[2].split(","), [int(v) for v in sys.argv[3].split(",")], sys.argv[4:])
        return
    store = Path(sys.argv[1]) if os.path.isabs(sys.argv[1]) else HERE / "out" / sys.argv[1]
    fams, seeds = sys.argv[2].split(","), [int(v) for v in sys.argv[3].split(",")]
    picks = ("random",) if "--random" in sys.argv else ("app",)
    models = [a for a in sys.argv[4:] if not a.startswith("--")]
    res: dict = {}
    for fam in fams:
        for seed in seeds:
            paths, x, y_all, classes = ep.folder_data(fam, seed)
            k = len(classes)
            for f in sorted(store.glob(f"{fam}-{seed}-*.pkl")):
                r = pickle.loads(f.read_bytes())
                sseed = seed * 100 + r["ss"] if r["ss"] else seed
                z = picking.make_space(x, seed=sseed).z
                for pick in picks:
                    for bud in (20, 50, 100, 200):
                        sts = [r["app"][bud]] if pick == "app" else r["random"][bud]
                        for st in sts:
                            if st is None or "order" not in st:
                                continue
                            idx = np.asarray(st["order"])
                            rest = np.setdiff1d(np.arange(len(z)), idx)
                            for m in models:
                                pred = predict(m, z, idx, y_all[idx], k, sseed)
                                res.setdefault((fam, pick, bud, m), []).append(float((pred[rest] == y_all[rest]).mean()))
            print(fam, seed, "done", [round(v, 1) for v in os.getloadavg()], flush=True)
    for fam in fams:
        for pick in picks:
            for m in models:
                cells = [f"{bud}:{100 * np.mean(res[(fam, pick, bud, m)]):.1f}" for bud in (20, 50, 100, 200)
                         if (fam, pick, bud, m) in res]
                print(f"{fam:10s} {pick:6s} {m:10s} n={len(res.get((fam, pick, 100, m), []))} " + " ".join(cells))


if __name__ == "__main__":
    main()
