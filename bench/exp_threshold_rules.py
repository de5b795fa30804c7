"""Experiment helper for issue 23 (full models' threshold): judges threshold rules offline on the
raw scores that ``bench_unknown.py`` records for full models (``models/<name>/scores``: the
validation images' held-out scores the threshold comes from, outliers synthesised from the
validation images, own test images, unrelated families). A rule sees only what training sees (the
held-out in-class scores and the held-out synthesised outliers); the table gives own flagged /
unrelated flagged (report look) per model.

Usage: python bench/exp_threshold_rules.py [--table] results.json [...]
       python bench/exp_threshold_rules.py --pairs OLD NEW results.json [...]   (bench_unknown --keep OLD,NEW)
"""

from __future__ import annotations

import json
import sys

import numpy as np


def q95(h, o):
    return float(np.quantile(h, 0.95))


def order_ucb(h, conf=0.8, q=0.95):
    """The smallest order statistic that is above the q-quantile with probability >= conf."""
    from math import comb

    h = np.sort(h)
    n = len(h)
    for k in range(1, n + 1):  # P(X_(k) >= x_q) = P(Bin(n, q) < k)
        p = sum(comb(n, j) * q ** j * (1 - q) ** (n - j) for j in range(k))
        if p >= conf:
            return float(h[k - 1])
    return float(h[-1])


def gap(frac=0.5, cap="ucb", lo=0.05):
    """Raise q95 towards the held-out outliers where they sit clearly above the in-class scores:
    at most to ``cap`` (the 80 % upper bound of the 95th percentile, or the largest held-out
    score), and never past ``frac`` of the way from the largest in-class score to the outliers'
    ``lo`` quantile."""
    def rule(h, o):
        t = q95(h, o)
        top = float(np.max(h))
        ceiling = order_ucb(h) if cap == "ucb" else top
        room = float(np.quantile(o, lo)) - top
        if room <= 0:
            return t
        return max(t, min(ceiling, top + frac * room))
    return rule


def wide_gap(factor=2.0):
    """The rule kept: the 80 % upper confidence bound of the 95th percentile (an order statistic of
    the held-out scores) instead of its point estimate, only where the held-out synthesised
    outliers' 5th percentile is at least ``factor`` x the largest held-out in-class score (scores
    are 0 at the in-class median: the outliers at least as far beyond the in-class top as that top
    is from the median)."""
    def rule(h, o):
        if float(np.quantile(o, 0.05)) >= factor * float(np.max(h)):
            return order_ucb(h)
        return q95(h, o)
    return rule


def gauss(c=2.0):
    """Fifth step (measured, not kept): a normal fit to all held-out scores, mean + c x sd."""
    return lambda h, o: float(np.mean(h) + c * np.std(h, ddof=1))


def iqr(c=1.5):
    """Fifth step (measured, not kept): median + c x interquartile range."""
    return lambda h, o: float(np.median(h) + c * (np.quantile(h, 0.75) - np.quantile(h, 0.25)))


def exp_tail(p=0.05):
    """Fifth step (measured, not kept): an exponential tail fitted to the excess over the median of
    the upper half (its mean is the maximum-likelihood scale), read at the flag rate p."""
    def rule(h, o):
        med = float(np.median(h))
        return med + float(np.mean(h[h > med] - med)) * float(np.log(0.5 / p))
    return rule


def or_wide(rule, cap_max=False):
    """The wide-gap rule where it applies (with the largest held-out score if ``cap_max``), else ``rule``."""
    def out(h, o):
        if float(np.quantile(o, 0.05)) >= 2.0 * float(np.max(h)):
            return max(order_ucb(h), float(np.max(h))) if cap_max else order_ucb(h)
        return rule(h, o)
    return out


RULES = {"wide gap x2 (kept)": wide_gap(), "q95 (current)": q95, "ucb80": lambda h, o: order_ucb(h), "max": lambda h, o: float(np.max(h)),
         "gap 0.5 ucb": gap(), "gap 0.5 max": gap(cap="max"), "gap 0.25 ucb": gap(0.25),
         "wide gap, max": or_wide(q95, True), "gauss 2.0": gauss(), "iqr 1.5": iqr(), "exp tail 5 %": exp_tail(),
         "wide gap | exp tail 5 %": or_wide(exp_tail()), "wide gap | gauss 2.0": or_wide(gauss())}


def table(paths: list[str]) -> None:
    """Per model: own flagged / unrelated flagged / AUROC / each report family flagged, at the 95th
    percentile (the threshold before) and with the wide-gap rule, and whether the rule moved it."""
    from cnndesk.core.trust.scores import auroc

    rule = wide_gap()
    print("model | seed | test acc | train s | rule | own q95 -> rule | unrelated q95 -> rule | AUROC | families (q95 -> rule)")
    for path in paths:
        d = json.load(open(path))
        for name, m in d["models"].items():
            if "scores" not in m:
                continue
            s = m["scores"]
            h, o, own = np.array(s["held"]), np.array(s["synth_val"]), np.array(s["own"])
            fams = {f: np.array(v) for f, v in s["report"].items()}
            unrel = np.concatenate(list(fams.values()))
            t0, t1 = q95(h, o), rule(h, o)
            fam = ", ".join(f"{f} {(v > t0).mean():.2f}" + ("" if t0 == t1 else f"->{(v > t1).mean():.2f}")
                            for f, v in fams.items())
            print(f"{name} | {d['seed']} | {m['test_accuracy']} | {m['train_s']} | {'on' if t0 != t1 else 'off'} | "
                  f"{(own > t0).mean():.3f} -> {(own > t1).mean():.3f} | {(unrel > t0).mean():.3f} -> "
                  f"{(unrel > t1).mean():.3f} | {auroc(own, unrel):.4f} | {fam} | load {d['load_start']}-{d.get('load_end')}")


def pairs(old: str, new: str, paths: list[str]) -> None:
    """Markdown rows: model ``<kind>/full-keep-<old>`` at the 95th percentile (the code before) ->
    ``<kind>/full-keep-<new>`` with the wide-gap rule (the code after), per kind and seed."""
    from cnndesk.core.trust.scores import auroc

    rule = wide_gap()
    for path in paths:
        d = json.load(open(path))
        kinds = sorted({n.split("/")[0] for n in d["models"]})
        for kind in kinds:
            a, b = d["models"].get(f"{kind}/full-keep-{old}"), d["models"].get(f"{kind}/full-keep-{new}")
            if a is None or b is None:
                continue
            out = []
            for m, fn in ((a, q95), (b, rule)):
                s = m["scores"]
                h, o, own = np.array(s["held"]), np.array(s["synth_val"]), np.array(s["own"])
                fams = {f: np.array(v) for f, v in s["report"].items()}
                t = fn(h, o)
                out.append((float((own > t).mean()), float((np.concatenate(list(fams.values())) > t).mean()),
                            auroc(own, np.concatenate(list(fams.values()))),
                            {f: float((v > t).mean()) for f, v in fams.items()},
                            {f: auroc(own, v) for f, v in fams.items()}, t != q95(h, o)))
            (o0, u0, r0, f0, fa0, _), (o1, u1, r1, f1, fa1, on) = out
            fam = " | ".join(f"{f0[f]:.2f} → {f1[f]:.2f}" for f in f0)
            print(f"| {kind}, {d['seed']} | {o0:.3f} → {o1:.3f}{' (rule)' if on else ''} | {u0:.3f} → {u1:.3f} | "
                  f"{r0:.3f} → {r1:.3f} | {fam} | {a['test_accuracy']} → {b['test_accuracy']} | "
                  f"{a['train_s']:.0f} → {b['train_s']:.0f} | {d['load_start']}–{d.get('load_end')} |")
            print("|   (family AUROC) | | | | " + " | ".join(f"{fa0[f]:.3f} → {fa1[f]:.3f}" for f in fa0) + " | | | |")


def main() -> None:
    if sys.argv[1] == "--pairs":
        pairs(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    if sys.argv[1] == "--table":
        table(sys.argv[2:])
        return
    rows = []
    for path in sys.argv[1:]:
        d = json.load(open(path))
        for name, m in d["models"].items():
            if "scores" not in m:
                continue
            s = m["scores"]
            h, o, own = np.array(s["held"]), np.array(s["synth_val"]), np.array(s["own"])
            unrel = np.concatenate([np.array(v) for v in s["report"].values()])
            tex = np.array(s["report"].get("textures", []))
            out = []
            for rule in RULES.values():
                t = rule(h, o)
                out.append(f"{(own > t).mean():.3f}/{(unrel > t).mean():.3f}/{(tex > t).mean():.2f}")
            rows.append((f"{name} s{d['seed']}", f"maxH {h.max():.2f} q05O {np.quantile(o, 0.05):.2f} minO {o.min():.2f}", out))
    print("model | held/outliers | " + " | ".join(RULES))
    for name, info, out in rows:
        print(f"{name} | {info} | " + " | ".join(out))


if __name__ == "__main__":
    main()
