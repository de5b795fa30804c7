"""Scoring half of ``exp_heldout_scores.py`` (issue 23, sixth step): per dumped full model, the
detector refitted exactly as training does (``full_trust.fit_trust`` + ``widen_threshold``'s rule),
and thresholds from more held-out in-class scores: the training images cross-fitted (K folds:
each fold scored by a detector fitted as training does on the other folds plus the validation
images, normalised on the validation images like the final one), pooled with the validation
scores, with or without a shift correction (the late stages were trained on those images, so
their scores run low). Own test flagged / unrelated flagged (report look) per model."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

REPORT = ["grey_patches", "other_glyphs", "colour_photos", "textures", "noise"]
FOLDS = (3, 5, 10)
CHOSEN = "cf5 raw + wide max"  # the candidate (fixed before the fresh seeds 12-17; not kept: docs/benchmarks.md)


def _fit(f_tr, y_tr, f_va, y_va, out_tr, lead, width):
    """The detector as training fits it (threshold: the validation images' scores alone)."""
    from cnndesk.core.training import full_trust

    logits = np.zeros((len(f_va), int(max(y_tr.max(), y_va.max())) + 1), np.float32)
    nov, _, _, held = full_trust.fit_trust(f_tr, f_va, logits, y_va, seed=0, y_train=y_tr, features="multi_early",
                                           outliers=out_tr, early=(lead, width))
    return nov, held


def cross_fitted(f_tr, y_tr, f_va, y_va, out_tr, lead, width, n_folds):
    """Each training image's (late, early) scores by a detector fitted as training fits the final
    one on the validation images and the other folds' training images (every n-th row: the rows
    come class by class), normalised on the validation images' held-out scores like it."""
    folds = np.arange(len(f_tr)) % n_folds
    late, early = np.zeros(len(f_tr), np.float32), np.zeros(len(f_tr), np.float32)
    for k in range(n_folds):
        fit = folds != k
        nk, _ = _fit(f_tr[fit], y_tr[fit], f_va, y_va, out_tr, lead, width)
        late[~fit], early[~fit] = _parts(nk, f_tr[~fit])
    return late, early


def _parts(nov, x):
    """(late, early) normalised scores of rows x (the score is their mean)."""
    x = np.asarray(x, np.float32)
    return nov._score(x[:, nov.lead:]), nov.early.score(x[:, :len(nov.early.mean)])


def _match(src, ref):
    """src moved and scaled so that its median and IQR equal ref's."""
    q = lambda v: np.quantile(v, [0.25, 0.5, 0.75])  # noqa: E731
    s, r = q(src), q(ref)
    return (src - s[1]) * ((r[2] - r[0]) / max(s[2] - s[0], 1e-9)) + r[1]


def model_scores(z) -> dict:
    from cnndesk.core.trust import novelty as nf
    from cnndesk.core.trust import scores as trust

    f_tr, f_va, y_tr, y_va = z["f_tr"], z["f_va"], z["y_tr"], z["y_va"]
    lead, width = int(z["lead"]), int(z["width"])
    with trust.one_blas_thread():
        nov, held = _fit(f_tr, y_tr, f_va, y_va, z["out_tr"], lead, width)
        synth_val = nov.score(z["out_va"])
        base_thr = nov.threshold
        wide = nf.widen_if_separated(nov, held, synth_val)
        res = {"held": held, "wide": wide, "thr_current": nov.threshold, "thr_p95": base_thr,
               "own": nov.score(z["own"]),
               "report": {f: nov.score(z[f"u_report_{f}"]) for f in REPORT if f"u_report_{f}" in z}}
        res["held_late"], res["held_early"] = _parts(nov, f_va)  # validation images once in the final detector
        # cross-fitted training images
        for n_folds in FOLDS:
            res[f"cf_late{n_folds}"], res[f"cf_early{n_folds}"] = cross_fitted(f_tr, y_tr, f_va, y_va, z["out_tr"],
                                                                                lead, width, n_folds)
        # the validation images' own parts as held out (from the final fit: with_early's held = mean of the two)
        vl, ve = _heldout_parts(f_tr, y_tr, f_va, y_va, z["out_tr"], lead, width)
        res["val_late"], res["val_early"] = vl, ve
    return res


def _heldout_parts(f_tr, y_tr, f_va, y_va, out_tr, lead, width):
    """The validation images' held-out late and early scores (as ``with_early`` averages them)."""
    from cnndesk.core.trust import novelty as nf

    got = {}
    orig = nf.with_early

    def spy(main, held_main, early, held_early, *rest, **kw):
        got["late"], got["early"] = held_main.copy(), held_early.copy()
        return orig(main, held_main, early, held_early, *rest, **kw)

    nf.with_early = spy
    try:
        _fit(f_tr, y_tr, f_va, y_va, out_tr, lead, width)
    finally:
        nf.with_early = orig
    return got["late"], got["early"]


def thresholds(r) -> dict:
    """Threshold per variant (the wide-gap rule as today where it applied: upper bound on the pool)."""
    from cnndesk.core.trust.novelty import upper_quantile

    held, vl, ve = r["held"], r["val_late"], r["val_early"]
    pools = {}
    for n in FOLDS:
        cl, ce = r[f"cf_late{n}"], r[f"cf_early{n}"]
        pools[f"cf{n} raw"] = 0.5 * (cl + ce)
        if n == 5:
            pools["cf5 late matched"] = 0.5 * (_match(cl, vl) + ce)
            pools["cf5 both matched"] = 0.5 * (_match(cl, vl) + _match(ce, ve))
            pools["cf5 combined matched"] = _match(0.5 * (cl + ce), held)
    out = {"current": r["thr_current"]}
    for name, extra in pools.items():
        pool = np.concatenate([held, extra])
        out[name] = upper_quantile(pool, 0.95) if r["wide"] else float(np.quantile(pool, 0.95))
    # where the gap is wide: the more careful of today's bound (validation scores alone) and the pool's
    pool = np.concatenate([held, pools["cf5 raw"]])
    out["cf5 raw + wide max"] = max(r["thr_current"], upper_quantile(pool, 0.95)) if r["wide"] else \
        float(np.quantile(pool, 0.95))
    # looked at after every other result (all seeds): the same pool aimed at 7 % instead of 5 %
    out["cf5 pool at 7 % (post hoc)"] = max(r["thr_current"], upper_quantile(pool, 0.93)) if r["wide"] else \
        float(np.quantile(pool, 0.93))
    return out


def rates(r, thr):
    u = np.concatenate(list(r["report"].values()))
    return float((r["own"] > thr).mean()), float((u > thr).mean())


def best_recall(r, own_at_most: float) -> float:
    """Unrelated recall (report look) of the best threshold that flags at most ``own_at_most`` of
    the own test images: what any threshold estimator could reach on this network."""
    own = np.sort(r["own"])
    u = np.concatenate(list(r["report"].values()))
    return float((u > own[len(own) - int(np.floor(own_at_most * len(own))) - 1]).mean())


def main(argv=None) -> None:
    import pickle

    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--seeds", default="0-5")
    ap.add_argument("--cache", default=None, help="pickle of the per-model scores (recomputed when absent)")
    ap.add_argument("--variants", default=None, help="comma list of the columns to print (default: all)")
    args = ap.parse_args(argv)
    lo, hi = (int(v) for v in args.seeds.split("-"))
    cache = Path(args.cache) if args.cache else None
    store = pickle.loads(cache.read_bytes()) if cache and cache.exists() else {}
    rows, names, errs = [], None, {}
    for seed in range(lo, hi + 1):
        for kind in ("textures", "digits", "objects"):
            p = Path(args.folder) / f"{kind}-{seed}.npz"
            if not p.exists():
                continue
            key = f"{kind}-{seed}"
            if key not in store:
                store[key] = model_scores(np.load(p))
                if cache:
                    cache.write_bytes(pickle.dumps(store))
            r = store[key]
            th = thresholds(r)
            names = list(th) if not args.variants else args.variants.split(",")
            rows.append((key, r["wide"], {n: rates(r, t) for n, t in th.items()}, (best_recall(r, 0.05), best_recall(r, 0.10))))
            oracle = float(np.quantile(r["own"], 0.95))  # flags 5 % of the own test images
            for n, t in th.items():
                errs.setdefault(n, []).append(t - oracle)
    print("| model | " + " | ".join(names) + " | best recall at own <= 0.05 / 0.10 |")
    print("|---" * (len(names) + 2) + "|")
    passed = dict.fromkeys(names, 0)
    for key, wide, rt, best in rows:
        cells = []
        for n in names:
            o, u = rt[n]
            ok = o <= 0.10 and u >= 0.95
            passed[n] += ok
            cells.append(f"{o:.3f} / {u:.3f}{'' if ok else ' !'}")
        print(f"| {key}{' (w)' if wide else ''} | " + " | ".join(cells) + f" | {best[0]:.3f} / {best[1]:.3f} |")
    print("| at target | " + " | ".join(f"{passed[n]} of {len(rows)}" for n in names) + " | |")
    for n in names:
        own = np.array([rt[n][0] for _, _, rt, _ in rows])
        e = np.array(errs[n])
        print(f"{n}: own mean {own.mean():.3f} sd {own.std():.3f} max {own.max():.3f}; threshold - own test's "
              f"95th percentile: mean {e.mean():+.3f}, rms {np.sqrt((e ** 2).mean()):.3f}")


if __name__ == "__main__":
    main()
