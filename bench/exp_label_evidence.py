"""Issue 22, the evidence count's cost: which rule lets the app's picks show suggestions at >= 90 %
sooner than ``suggest.MIN_EVIDENCE`` (8 out-of-fold answers at >= 90 %) without letting a shown
suggestion be right less than 95 % of the time?

    PYTHONPATH=. python bench/exp_label_evidence.py run STORE FAMILIES SEEDS [SESSION_SEEDS]  # store states
    PYTHONPATH=. python bench/exp_label_evidence.py replay STORE FAMILIES SEEDS RULE...

``run`` stores, per folder and session seed (default: seed 0 only), the app's trajectory and 3 random draws per budget as
``bench_label_calib.py run`` does (its ``run_one``), under bench/out/STORE; folders come from the
main checkout's bench/out/label when there (read only), else are generated here; the embedding cache
is this checkout's bench/out/cache. ``replay`` applies each RULE to every stored state (the rule only
caps scores at 0.8, so one stored run judges every rule exactly: the picks never depend on the cap)
and prints the lowest precision of the suggestions shown at >= 90 % and the share shown, per family
and budget, the app's picks and random picks apart. Rules (``evidence_conf``): ``none`` (no count),
``minev:N`` (the merged count), ``nearp:N/P`` (with fewer than 8: N answers at >= 80 % right >= P of
the time vouch), ``nearb:T/N/P`` (the same at >= T), ``cal:N``, ``class:N``, ``classnear:N``, ``calev:N``, ``near:N``, a ``t1+`` prefix
(temperature floored at 1), and ``code`` (this checkout's ``suggest.vouched``).
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from cnndesk.core.labelling import suggest  # noqa: E402
from cnndesk.core.trust import scores as trust  # noqa: E402

BUDGETS = (10, 20, 50, 100, 200)


def run(store: str, fams: list[str], seeds: list[int], sseeds: int = 1) -> None:
    import bench_label_calib as blc
    import exp_label_pairs as elp

    blc._catch()
    out = HERE / "out" / store
    out.mkdir(parents=True, exist_ok=True)
    for fam in fams:
        for seed in seeds:
            todo = [ss for ss in range(sseeds) if not (out / f"{fam}-{seed}-{ss}.pkl").exists()]
            if not todo:
                continue
            paths, x, y, classes = elp.folder_data(fam, seed)
            truth = {p: classes[c] for p, c in zip(paths, y, strict=True)}
            for ss in todo:
                r = blc.run_one(fam, seed, ss, x, paths, truth)
                (out / f"{fam}-{seed}-{ss}.pkl").write_bytes(pickle.dumps(r))
                print(fam, seed, ss, "load", [round(v, 1) for v in os.getloadavg()], flush=True)


def evidence_conf(st: dict, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """(scores of the other images under the rule, the unmixed p of the out-of-fold rows)."""
    k, y = st["k"], st["y"]
    t = trust.fit_temperature(st["oof_logits"], y, prior=suggest.TEMPERATURE_PRIOR)
    if rule.startswith("t1+"):  # an experiment: never sharpen (temperature >= 1), then the rule after "+"
        t, rule = max(t, 1.0), rule[3:]
    p_oof = trust.softmax(st["oof_logits"], t)
    lam = suggest.shrink_for(p_oof, y, k)[0]
    p = trust.softmax(st["logits"], t)
    conf = (1 - lam) * p.max(1) + lam / k
    c_oof = (1 - lam) * p_oof.max(1) + lam / k
    right_oof = p_oof.argmax(1) == y
    pred = p.argmax(1)
    pred_oof = p_oof.argmax(1)
    cap = 0.8
    kind, _, arg = rule.partition(":")
    v, v2 = (float(arg.split("/")[0]), float(arg.split("/")[1]) if "/" in arg else 0.0) if arg and kind != "nearb" else (0.0, 0.0)
    ev = int((c_oof >= suggest.SHOWN).sum())
    if kind == "none":
        return conf, p_oof
    if kind == "code":  # this checkout's suggest.vouched (the adopted rule: "nearp:10/0.8")
        near = c_oof >= suggest.NEAR
        if not suggest.vouched(ev, (int(near.sum()), int(right_oof[near].sum()))):
            conf = np.minimum(conf, cap)
    elif kind == "minev":  # the merged rule: fewer than v out-of-fold answers at >= 90 %: all capped
        if ev < v:
            conf = np.minimum(conf, cap)
    elif kind == "near":  # out-of-fold answers at >= 80 % (after the mix) count, if all but 5 % right
        near = c_oof >= 0.8
        if ev < 8 and not (near.sum() >= v and right_oof[near].sum() / (near.sum() + 1.0) >= suggest.WANTED_PRECISION):
            conf = np.minimum(conf, cap)
    elif kind in ("class", "classnear"):  # per predicted class: v out-of-fold answers predicted as it at
        # >= 90 % ("class") or >= 80 % ("classnear"), all right
        hi = c_oof >= (suggest.SHOWN if kind == "class" else 0.8)
        ok = np.zeros(k, bool)
        for c in range(k):
            m = hi & (pred_oof == c)
            ok[c] = m.sum() >= v and right_oof[m].all()
        if ev < 8:
            conf = np.where(ok[pred], conf, np.minimum(conf, cap))
    elif kind == "cal":  # >= v out-of-fold answers at >= 80 %, as right as their scores claim
        near = c_oof >= 0.8
        if ev < 8 and not (near.sum() >= v and right_oof[near].sum() >= c_oof[near].sum()):
            conf = np.minimum(conf, cap)
    elif kind == "calev":  # as cal:v, and at least 2 out-of-fold answers at >= 90 %, all right
        near, hi = c_oof >= 0.8, c_oof >= suggest.SHOWN
        if ev < 8 and not (near.sum() >= v and right_oof[near].sum() >= c_oof[near].sum()
                           and hi.sum() >= 2 and right_oof[hi].all()):
            conf = np.minimum(conf, cap)
    elif kind == "nearb":  # "nearb:T/N/P": >= N out-of-fold answers at >= T, right >= P of the time
        tb, nb, pb = (float(u) for u in arg.split("/"))
        near = c_oof >= tb
        if ev < 8 and not (near.sum() >= nb and right_oof[near].mean() >= pb):
            conf = np.minimum(conf, cap)
    elif kind == "nearp":  # >= v out-of-fold answers at >= 80 %, right >= v2 of the time
        near = c_oof >= 0.8
        if ev < 8 and not (near.sum() >= v and right_oof[near].mean() >= v2):
            conf = np.minimum(conf, cap)
    else:
        raise SystemExit(f"unknown rule {rule}")
    return conf, p_oof


def shown(st: dict, rule: str) -> np.ndarray:
    n = len(st["top"])
    if not st["calibrated"]:
        return np.zeros(n, bool)
    conf, _ = evidence_conf(st, rule)
    return (np.round(conf, 4) >= suggest.SHOWN) & ~st["unknown"] & st["grouped"]


def replay(store: str, fams: list[str], seeds: list[int], rules: list[str]) -> None:
    runs = [pickle.loads(f.read_bytes()) for f in sorted((HERE / "out" / store).glob("*.pkl"))]
    runs = [r for r in runs if r["seed"] in seeds and r["family"] in fams]
    print(f"{store} seeds {seeds}: {len(runs)} runs; load {[round(v, 1) for v in os.getloadavg()]}")
    import exp_label_pairs as elp

    elp.print_table(runs, fams, rules, shown, width=10)


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "run":
        run(a[1], a[2].split(","), [int(v) for v in a[3].split(",")], int(a[4]) if len(a) > 4 else 1)
    elif a[0] == "replay":
        replay(a[1], a[2].split(","), [int(v) for v in a[3].split(",")], a[4:])
