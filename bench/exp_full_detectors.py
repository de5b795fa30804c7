"""Offline comparison of unknown detectors for full models on bench/exp_full_features.py dumps
(issue 23): own test images flagged, unrelated flagged, AUROC, per family, tune and report looks.

Usage: python bench/exp_full_detectors.py DIR/digits.npz [DIR/textures.npz ...] [--looks tune]
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


def cols(chans, stages, penult=True):
    """Column indices of the (mean, max) of ``stages`` (+ the penultimate layer) in a dump row."""
    starts = np.concatenate([[0], np.cumsum(2 * np.asarray(chans))])
    idx = [np.arange(starts[s], starts[s + 1]) for s in stages]
    if penult:
        idx.append(np.arange(starts[-1], starts[-1] + 1280))
    return np.concatenate(idx)


class Det:
    """One or more knn+maha(+synth) detectors (each on its own feature block); score = max."""

    def __init__(self, d, blocks, quantile=0.95, synth=True, combine=np.max):
        self.blocks, self.novs, self.combine = blocks, [], combine
        held = []
        for tag, c in blocks:
            f = lambda name, tag=tag, c=c: d[f"{tag}_{name}"][:, c]  # noqa: E731
            nov, h = nf.fit_novelty_heldout(f("train"), d["y_train"], f("val"), quantile=quantile, features="multi",
                                            y_held=d["y_val"], outliers=f("synth") if synth else None)
            self.novs.append(nov)
            held.append(h)
        self.held = self.combine(held, 0)
        self.threshold = float(np.quantile(self.held, quantile)) if len(blocks) > 1 else self.novs[0].threshold

    def score(self, d, name):
        return self.combine([nov.score(d[f"{tag}_{name}"][:, c]) for nov, (tag, c) in zip(self.novs, self.blocks, strict=True)], 0)


def evaluate(d, det, look):
    own = det.score(d, "test")
    fam = {f: det.score(d, f"u_{look}_{f}") for f in FAMS}
    allu = np.concatenate(list(fam.values()))
    thr = det.threshold
    return {"own": float((own > thr).mean()), "unrel": float((allu > thr).mean()), "auroc": auroc(own, allu),
            "fam": {f: (float((s > thr).mean()), auroc(own, s)) for f, s in fam.items()}}


def variants(d):
    ch = d["ft_chans"]
    late = cols(ch, [4, 5, 6])
    late_np = cols(ch, [4, 5, 6], penult=False)
    v = {
        "A current ft[4-6]+pen": [("ft", late)],
        "B ft all+pen": [("ft", cols(ch, range(7)))],
        "C ft[2-6]+pen": [("ft", cols(ch, [2, 3, 4, 5, 6]))],
        "C2 ft[3-6]+pen": [("ft", cols(ch, [3, 4, 5, 6]))],
        "E base[4-6]+pen": [("base", late)],
        "F max(ft, base) sep": [("ft", late), ("base", late)],
        "F2 max(ft, base[4-6] nopen)": [("ft", late), ("base", late_np)],
        "F3 max(ft, base[2-4] nopen)": [("ft", late), ("base", cols(ch, [2, 3, 4], penult=False))],
        "F4 max(ft, ft[1-3] nopen)": [("ft", late), ("ft", cols(ch, [1, 2, 3], penult=False))],
        "F5 max(ft, ft[2-4] nopen)": [("ft", late), ("ft", cols(ch, [2, 3, 4], penult=False))],
        "F6 max(ft, ft[2-3] nopen)": [("ft", late), ("ft", cols(ch, [2, 3], penult=False))],
        "F7 max(ft, ft[1-4] nopen)": [("ft", late), ("ft", cols(ch, [1, 2, 3, 4], penult=False))],
        "F8 max(ft, ft[3-4] nopen)": [("ft", late), ("ft", cols(ch, [3, 4], penult=False))],
    }
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--looks", default="tune")
    ap.add_argument("--only", default="")
    ap.add_argument("--quantile", type=float, default=0.95)
    ap.add_argument("--mean", action="store_true", help="combine the detectors' scores by their mean")
    args = ap.parse_args()
    for fn in args.files:
        d = dict(np.load(fn))
        # the dump's "concat" features (base and fine-tuned side by side) are built on the fly
        for name in [k[3:] for k in d if k.startswith("ft_") and k != "ft_chans"]:
            d[f"cat_{name}"] = np.concatenate([d[f"base_{name}"], d[f"ft_{name}"]], 1)
        vs = variants(d)
        ch = d["ft_chans"]
        off = d["base_train"].shape[1]
        vs["D concat base[4-6]+pen, ft[4-6]+pen"] = [("cat", np.concatenate([cols(ch, [4, 5, 6]),
                                                                             off + cols(ch, [4, 5, 6])]))]
        for name, blocks in vs.items():
            if args.only and not any(name.startswith(o) for o in args.only.split(",")):
                continue
            det = Det(d, blocks, args.quantile, combine=np.mean if args.mean else np.max)
            for look in args.looks.split(","):
                r = evaluate(d, det, look)
                print(f"{Path(fn).stem:9s} {look:6s} {name:38s} own {r['own']:.3f} unrel {r['unrel']:.3f} "
                      f"auroc {r['auroc']:.3f} | " + " ".join(f"{f[:6]} {a:.2f}/{b:.3f}" for f, (a, b) in r["fam"].items()),
                      flush=True)


if __name__ == "__main__":
    main()
