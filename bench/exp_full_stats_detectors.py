"""Offline comparison of full models' unknown detectors on bench/exp_full_stats.py dumps (issue 23,
third step): per-channel standard deviation pooling next to mean/max, phase-scrambled outliers,
augmented validation copies for the threshold. Own test images flagged, unrelated flagged, AUROC,
per family. Choose on ``--looks tune`` only.

Usage: python bench/exp_full_stats_detectors.py DIR/textures.npz [...] [--looks tune] [--only A,B]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnndesk.core.trust import novelty as nf  # noqa: E402
from cnndesk.core.trust.scores import auroc  # noqa: E402

FAMS = ("grey_patches", "other_glyphs", "colour_photos", "textures", "noise")
STATS = ("mean", "max", "std")


def cols(chans, stages, stats=("mean", "max"), penult=False):
    """Column indices of ``stats`` of ``stages`` (+ the penultimate layer) in a dump row
    (per stage: mean, max, std, each as wide as the stage)."""
    starts = np.concatenate([[0], np.cumsum(3 * np.asarray(chans))])
    idx = [starts[s] + STATS.index(st) * chans[s] + np.arange(chans[s]) for s in stages for st in stats]
    if penult:
        idx.append(np.arange(starts[-1], starts[-1] + 1280))
    return np.concatenate(idx)


def harrell_davis(x, q):
    from scipy.stats import beta

    x = np.sort(np.asarray(x, np.float64))
    n = len(x)
    a, b = (n + 1) * q, (n + 1) * (1 - q)
    w = np.diff(beta.cdf(np.arange(n + 1) / n, a, b))
    return float(w @ x)


def conformal(x, q):
    """The split-conformal quantile: the ceil((n + 1) q)-th smallest of n held-out scores."""
    x = np.sort(np.asarray(x, np.float64))
    k = min(len(x), int(np.ceil((len(x) + 1) * q)))
    return float(x[k - 1])


class Det:
    """Detectors on column blocks (each knn+maha+synth, fitted as training does), score = mean."""

    def __init__(self, d, blocks, outl=("synth",), aug=False, quantile=0.95, thr="q"):
        aug = {False: None, True: "val_aug", 2: "val_aug2"}[aug]
        self.blocks, self.novs, held = blocks, [], []
        for c in blocks:
            o = np.concatenate([d[f"x_{n}"][:, c] for n in outl]) if outl else None
            nov, h = nf.fit_novelty_heldout(d["x_train"][:, c], d["y_train"], d["x_val"][:, c], quantile=quantile,
                                            features="multi", y_held=d["y_val"], outliers=o,
                                            more_held=d[f"x_{aug}"][:, c] if aug else None)
            self.novs.append(nov)
            held.append(h)
        self.held = np.mean(held, 0)
        self.threshold = (harrell_davis(self.held, quantile) if thr == "hd" else conformal(self.held, quantile)
                          if thr == "conf" else float(np.quantile(self.held, quantile)))

    def score(self, d, name):
        return np.mean([nov.score(d[f"x_{name}"][:, c]) for nov, c in zip(self.novs, self.blocks, strict=True)], 0)


def evaluate(d, det, look):
    own = det.score(d, "test")
    fam = {f: det.score(d, f"u_{look}_{f}") for f in FAMS if f"x_u_{look}_{f}" in d}
    allu = np.concatenate(list(fam.values()))
    thr = det.threshold
    return {"own": float((own > thr).mean()), "unrel": float((allu > thr).mean()), "auroc": auroc(own, allu),
            "fam": {f: (float((s > thr).mean()), auroc(own, s)) for f, s in fam.items()}}


def variants(ch):
    late = cols(ch, [4, 5, 6], penult=True)
    late_s = cols(ch, [4, 5, 6], STATS, penult=True)
    early = cols(ch, [2, 3, 4])
    early_s = cols(ch, [2, 3, 4], STATS)
    return {
        "cur": dict(blocks=[late, early]),
        "cur+aug": dict(blocks=[late, early], aug=True),
        "cur+hd": dict(blocks=[late, early], thr="hd"),
        "cur+conf": dict(blocks=[late, early], thr="conf"),
        "cur+aug2": dict(blocks=[late, early], aug=2),
        "stdE+aug2": dict(blocks=[late, early_s], aug=2),
        "stdE+conf": dict(blocks=[late, early_s], thr="conf"),
        "cur+phase": dict(blocks=[late, early], outl=("synth", "phase")),
        "stdE": dict(blocks=[late, early_s]),
        "stdE+aug": dict(blocks=[late, early_s], aug=True),
        "stdE+phase": dict(blocks=[late, early_s], outl=("synth", "phase")),
        "stdE+phase+aug": dict(blocks=[late, early_s], outl=("synth", "phase"), aug=True),
        "stdEL": dict(blocks=[late_s, early_s]),
        "stdE_only": dict(blocks=[late, cols(ch, [2, 3, 4], ("std",))]),
        "stdE14": dict(blocks=[late, cols(ch, [1, 2, 3, 4], STATS)]),
        "stdE23": dict(blocks=[late, cols(ch, [2, 3], STATS)]),
        "3det std": dict(blocks=[late, early, cols(ch, [2, 3, 4], ("std",))]),
        "meanstdE": dict(blocks=[late, cols(ch, [2, 3, 4], ("mean", "std"))]),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--looks", default="tune")
    ap.add_argument("--only", default="")
    ap.add_argument("--families", action="store_true")
    args = ap.parse_args()
    for fn in args.files:
        d = dict(np.load(fn))
        ch = [int(c) for c in d["chans"]]
        for name, kw in variants(ch).items():
            if args.only and name not in args.only.split(","):
                continue
            det = Det(d, **kw)
            for look in args.looks.split(","):
                r = evaluate(d, det, look)
                fams = (" | " + " ".join(f"{f[:6]} {a:.2f}/{b:.3f}" for f, (a, b) in r["fam"].items())
                        if args.families else "")
                print(f"{fn.split('/')[-2]}/{Path(fn).stem:9s} {look:6s} {name:16s} own {r['own']:.3f} "
                      f"unrel {r['unrel']:.3f} auroc {r['auroc']:.4f}{fams}", flush=True)


if __name__ == "__main__":
    main()
