"""Experiment (issue 22): a neighbour gate for the >= 90 % suggestions, judged offline on the states
that bench_label_calib.py stored. A suggestion may show >= 90 % only when the labelled images
nearest to it (cosine on the labelling space) agree with it: of its ``k`` nearest labelled images at
least ``need`` carry the suggested class. The look-alike pairs of small grey glyphs (и / й, ш / щ)
were shown at >= 90 % and wrong (glyphs, 50 labels: 93.0 % right with the app's picks, 86.1 % with
random ones) while the out-of-fold set vouched for the head.

Usage: PYTHONPATH=. python bench/exp_label_gate.py STORE SEEDS [LABEL_DIR CACHE_DIR]
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
if len(sys.argv) > 4:
    os.environ["CNNDESK_CACHE_DIR"] = sys.argv[4]

import bench_label as bl  # noqa: E402
import label_data  # noqa: E402

from cnndesk.core.labelling import picking, suggest  # noqa: E402
from cnndesk.core.trust import scores as trust  # noqa: E402

GATES = [None, "oofprec0.8", "oofprec0.85", "oofprec0.9"]


def masks(st, prior=(1.0, 0.15)):
    """The app's shown mask (temperature prior, its shrink rule, the group gate) for a stored state."""
    if st is None or not st["calibrated"]:
        return None
    t = trust.fit_temperature(st["oof_logits"], st["y"], prior=prior)
    lam, _ = suggest.shrink_for(trust.softmax(st["oof_logits"], t), st["y"], st["k"])
    top = trust.softmax(st["logits"], t).max(1)
    return (np.round((1 - lam) * top + lam / st["k"], 4) >= suggest.SHOWN) & ~st["unknown"] & st["grouped"]


def gate(unit, labelled, lab_names, want, pred_names, k, need):
    from cnndesk.core.common import neighbours

    _, nb = neighbours.knn(unit[want], unit[labelled], k, metric="cosine")
    agree = (lab_names[np.maximum(nb, 0)] == pred_names[:, None]) & (nb >= 0)
    return agree.sum(1) >= need


def main() -> None:
    store, seeds = HERE / "out" / sys.argv[1], [int(v) for v in sys.argv[2].split(",")]
    label_dir = Path(sys.argv[3]) if len(sys.argv) > 3 else bl.OUT
    runs = [pickle.loads(f.read_bytes()) for f in sorted(store.glob("*.pkl"))]
    runs = [r for r in runs if r["seed"] in seeds and "y" in r]
    res: dict = {}
    spaces: dict = {}
    for r in runs:
        fam, seed = r["family"], r["seed"]
        if (fam, seed) not in spaces:
            truth = label_data.read_truth(label_dir / f"{fam}-{seed}")
            paths = sorted(truth)
            spaces[(fam, seed)] = bl.embeddings(paths)
        x = spaces[(fam, seed)]
        sseed = seed * 100 + r["ss"] if r["ss"] else seed
        unit = picking.make_space(x, seed=sseed).unit
        y = r["y"]
        classes_true = np.array(sorted({c for c in label_data.read_truth(label_dir / f"{fam}-{seed}").values()}))
        for pick in ("app", "random"):
            for b in bl.BUDGETS:
                states = [r["app"].get(b)] if pick == "app" else r["random"].get(b, [])
                for st in states:
                    sh = masks(st)
                    if sh is None:
                        continue
                    labelled = np.asarray(st["order"], int)
                    want = np.setdiff1d(np.arange(len(y)), labelled)
                    lab_names = classes_true[y[labelled]]
                    named = np.array(list(dict.fromkeys(lab_names.tolist())))  # the session's order: as first named
                    pred_names = named[st["pred"].astype(int)]
                    for g in GATES:
                        if g is None:
                            m = sh
                        elif isinstance(g, str):  # the out-of-fold precision of the suggested class
                            oof_pred = st["oof"].argmax(1)
                            n_c = np.bincount(oof_pred, minlength=st["k"])
                            r_c = np.bincount(oof_pred[oof_pred == st["y"]], minlength=st["k"])
                            prec = (r_c + 1.0) / (n_c + 2.0)
                            m = sh & (prec[st["pred"].astype(int)] >= float(g[len("oofprec"):]))
                        else:
                            m = sh & gate(unit, labelled, lab_names, want, pred_names, *g)
                        res.setdefault((str(g), pick, fam, b), []).append((len(want), int(m.sum()), int(st["right"][m].sum())))
        print("done", fam, seed, r["ss"], flush=True)
    fams = sorted({r["family"] for r in runs})
    for g in GATES:
        for pick in ("app", "random"):
            precs = [s_r / s for (gg, pk, _, _), vs in res.items() if gg == str(g) and pk == pick for _, s, s_r in vs if s]
            share = [100 * np.mean([np.mean([s / n for n, s, _ in res.get((str(g), pick, f, b), [(1, 0, 0)])]) for f in fams])
                     for b in (50, 100, 200)]
            print(f"gate {g} | {pick} | lowest {100 * min(precs):.1f} % | below 95 %: {sum(p < 0.95 for p in precs)} of {len(precs)}"
                  f" | shown 50/100/200 {' / '.join(f'{v:.0f}' for v in share)} %")
            for f in fams:
                cells = []
                for b in (50, 100, 200):
                    vs = res.get((str(g), pick, f, b), [])
                    pr = [s_r / s for _, s, s_r in vs if s]
                    cells.append(f"{b}:{format(100 * min(pr), '.1f') if pr else '-'}/{100 * np.mean([s / n for n, s, _ in vs]) if vs else 0:.0f}%")
                print("    ", f.ljust(12), " ".join(cells))


if __name__ == "__main__":
    main()
