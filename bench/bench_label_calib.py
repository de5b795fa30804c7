"""Issue 22, honest confidence: are suggestions shown at >= 90 % right >= 95 % of the time?

    PYTHONPATH=. python bench/bench_label_calib.py run objects,symbols 0,1 3     # families, folder seeds, session seeds
    PYTHONPATH=. python bench/bench_label_calib.py report 0,1                    # every guard on the runs stored

``run``: per folder and session seed (the first is the folder's seed, the others seed*100 + s, as
bench_label_explore.py) one app trajectory (LabelSession.ask in batches of 10, the oracle answers)
and, per budget, ``DRAWS`` random pick sets; at every budget (10/20/50/100/200 labels) it stores
what a confidence guard can use and what it is judged by: the out-of-fold probabilities the
calibration sees (temperature-scaled, before the uniform mix), the labels' classes, and for every
other image its unmixed top probability, whether that suggestion is right, the unknown flag and
whether its true class has been named yet. The guard only picks the uniform mix (scores, never the
argmax or the order of the margins), so one stored run judges every guard: ``report`` replays the
stored states under each rule of RULES (``old`` is :func:`cnndesk.core.labelling.suggest.shrink_for`,
checked to give the app's mix on every stored state) and prints, per family and budget,
the lowest precision of the suggestions shown at >= 90 % (unknown-flagged rows are not shown) and
their share of the other images, app picks and random picks apart. Runs go to
bench/out/label_calib/ (one pickle per folder and session seed). ``report SEEDS RULES GATE``: GATE > 0
also keeps a model uncalibrated until GATE labels were answered since a class was last named.
``order``: adds the answer order to runs stored before it was kept (replays the app's picks).

Variants (docs/benchmarks.md "Honest confidence in the user's own order"): ``CALIB_STORE=name`` stores
under bench/out/name, ``CALIB_T_PRIOR=T0,s`` (or ``none``) sets the suggester's temperature prior for
the run, ``CALIB_DRAWS=0`` skips the random pick sets (they do not depend on the model). Runs also keep
the raw out-of-fold and folder logits, the suggested class and whether each image's visual group holds
a label, so ``replay STORE SEEDS T0,s:G ... [--app|--random]`` refits the temperature under that prior
("none": the plain fit) and applies the group gate (G = 1) on the stored states: exact for random
picks; for the app's picks run the store with the same prior.
"""

from __future__ import annotations

import math
import os
import pickle
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_label as bl  # noqa: E402

from cnndesk.core.labelling import suggest  # noqa: E402
from cnndesk.core.trust import scores as trust  # noqa: E402

STORE = HERE / "out" / os.environ.get("CALIB_STORE", "label_calib")  # another store per variant run
DRAWS = int(os.environ.get("CALIB_DRAWS", 3))  # 0: the app's picks only (random states replay exactly)
_CAUGHT: list = []


_LOGITS: list = []


def _catch():
    """Wrap suggest's shrink search so the out-of-fold probabilities of every fit are kept (and the
    temperature fit, so their logits are too: later guards may refit the temperature)."""
    inner = suggest.shrink_for
    fit_t = trust.fit_temperature

    def caught_t(logits, y, *a, **kw):
        _LOGITS.append(np.asarray(logits, np.float32))
        return fit_t(logits, y, *a, **kw)

    trust.fit_temperature = caught_t

    def caught(p_oof, y, k):
        _CAUGHT.append((np.asarray(p_oof, np.float32), np.asarray(y, int), k))
        return inner(p_oof, y, k)

    suggest.shrink_for = caught


def _state(s, y_true: np.ndarray, classes_true: list[str], groups: np.ndarray | None = None) -> dict | None:
    """What one guard needs at this point of a session (None without a model)."""
    _CAUGHT.clear()
    _LOGITS.clear()
    if s.model_is_current:
        s.fit()
    m = s.model()
    if m is None:
        return None
    want = np.array([i for i in range(len(s.paths)) if s.state(i) is None])
    logits = s.space.z[want] @ m.w.T + m.b
    raw = trust.softmax(logits, m.temperature)
    best = raw.argmax(1)
    pred = np.array(m.classes)[best]
    truth = np.array(classes_true)[y_true[want]]
    named = set(m.classes)
    out = {"k": len(m.classes), "calibrated": m.calibrated, "shrink": m.shrink, "temperature": m.temperature,
           "top": raw.max(1).astype(np.float32), "right": pred == truth,
           "unknown": m.unknown(s.space.z[want]), "named": np.array([t in named for t in truth]),
           "counts": np.bincount([m.classes.index(s.label_of(i)) for i in s.labelled], minlength=len(m.classes)),
           "oof": None, "y": None, "pred": best.astype(np.int16)}
    if groups is not None:  # whether each other image's visual group holds an answered image
        hit = np.zeros(groups.max() + 1, bool)
        hit[groups[s.labelled]] = True
        out["grouped"] = hit[groups[want]]
    if m.calibrated:
        assert _CAUGHT, "a calibrated fit without its out-of-fold probabilities"
        out["oof"], out["y"], _ = _CAUGHT[-1]
        out["oof_logits"], out["logits"] = _LOGITS[-1], logits.astype(np.float32)
    return out


def run_one(fam: str, seed: int, ss: int, x: np.ndarray, paths: list[str], truth: dict[str, str]) -> dict:
    from cnndesk.core.labelling import LabelSession

    sseed = seed * 100 + ss if ss else seed
    classes_true = sorted(set(truth.values()))
    y = np.array([classes_true.index(truth[p]) for p in paths])
    k = len(classes_true)
    s = LabelSession(bl.OUT, paths, x, seed=sseed)
    pending = list(s.ask(k))
    groups = np.empty(len(paths), int)
    for g in s.groups():
        groups[g.members] = g.id
    app, rnd, order = {}, {}, []
    for b in bl.BUDGETS:
        while len(s.labelled) < b:
            if not pending:
                pending = s.ask(min(bl.BATCH, b - len(s.labelled)))
                if not pending:
                    break
            q = pending.pop(0)
            s.answer(q.index, classes_true[y[q.index]])
            order.append(int(q.index))
        pending = []
        app[b] = _state(s, y, classes_true, groups)
        if app[b] is not None:
            app[b]["order"] = np.array(order)
        rnd[b] = []
        for d in range(DRAWS):
            r = LabelSession(bl.OUT, paths, x, seed=sseed)
            pick = np.random.default_rng(1000 * sseed + 17 * d + b).choice(len(paths), b, replace=False)
            for i in pick:
                r.answer(int(i), classes_true[y[i]])
            rnd[b].append(_state(r, y, classes_true, groups))
            if rnd[b][-1] is not None:
                rnd[b][-1]["order"] = pick
    return {"family": fam, "seed": seed, "ss": ss, "app": app, "random": rnd, "y": y}


def add_order(fams: list[str], seeds: list[int]) -> None:
    """For runs stored before the answer order was kept: replay the app's picks (deterministic) and
    store the order of the answers and the true classes (random picks: the draws' own order)."""
    from cnndesk.core.labelling import LabelSession

    for fam in fams:
        for seed in seeds:
            files = [f for f in sorted(STORE.glob(f"{fam}-{seed}-*.pkl")) if "y" not in pickle.loads(f.read_bytes())]
            if not files:
                continue
            _, truth = bl.folder(fam, seed)
            paths = sorted(truth)
            x = bl.embeddings(paths)
            classes_true = sorted(set(truth.values()))
            y = np.array([classes_true.index(truth[p]) for p in paths])
            for f in files:
                r = pickle.loads(f.read_bytes())
                sseed = seed * 100 + r["ss"] if r["ss"] else seed
                s = LabelSession(bl.OUT, paths, x, seed=sseed)
                pending, order = list(s.ask(len(classes_true))), []
                for b in bl.BUDGETS:
                    while len(s.labelled) < b:
                        if not pending:
                            pending = s.ask(min(bl.BATCH, b - len(s.labelled)))
                            if not pending:
                                break
                        q = pending.pop(0)
                        s.answer(q.index, classes_true[y[q.index]])
                        order.append(int(q.index))
                    pending = []
                    st = r["app"][b]
                    if st is not None:
                        c = np.bincount(y[order])
                        assert sorted(st["counts"].tolist()) == sorted(c[c > 0].tolist()), "the replay differs"
                        st["order"] = np.array(order)
                    for d, rs in enumerate(r["random"][b]):
                        if rs is not None:
                            rs["order"] = np.random.default_rng(1000 * sseed + 17 * d + b).choice(len(paths), b, replace=False)
                r["y"] = y
                f.write_bytes(pickle.dumps(r))
            print("order", fam, seed, flush=True)


def run(fams: list[str], seeds: list[int], sseeds: int) -> None:
    _catch()
    if os.environ.get("CALIB_T_PRIOR"):  # a variant: the temperature's prior "T0,s" ("none": the plain fit)
        v = os.environ["CALIB_T_PRIOR"]
        suggest.TEMPERATURE_PRIOR = None if v == "none" else tuple(float(t) for t in v.split(","))
    STORE.mkdir(parents=True, exist_ok=True)
    for fam in fams:
        for seed in seeds:
            todo = [ss for ss in range(sseeds) if not (STORE / f"{fam}-{seed}-{ss}.pkl").exists()]
            if not todo:
                continue
            _, truth = bl.folder(fam, seed)
            paths = sorted(truth)
            x = bl.embeddings(paths)
            for ss in todo:
                r = run_one(fam, seed, ss, x, paths, truth)
                (STORE / f"{fam}-{seed}-{ss}.pkl").write_bytes(pickle.dumps(r))
                print(fam, seed, ss, "load", [round(v, 1) for v in os.getloadavg()], flush=True)


# -- the guards compared (each picks the uniform mix from the out-of-fold probabilities) ------------
GRID = np.linspace(0.0, 0.5, 26)


def _binom_tail(n: int, p: float, r: int) -> float:
    """P(Binomial(n, p) >= r)."""
    ks = np.arange(r, n + 1)
    lg = np.array([math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k in ks])
    return float(np.exp(lg + ks * math.log(p) + (n - ks) * math.log1p(-p)).sum()) if len(ks) else 0.0


def _beta_median(r: float, s: int) -> float:
    """The median of Beta(r+1, s-r+1) (r rounded down): P(Beta <= x) = P(Binom(s+1, x) >= r+1)."""
    lo, hi = 0.0, 1.0
    for _ in range(40):
        x = (lo + hi) / 2
        lo, hi = (x, hi) if _binom_tail(s + 1, x, int(r) + 1) < 0.5 else (lo, x)
    return lo


# how each guard estimates the precision of the out-of-fold rows shown at >= 90 % (r right of s)
ESTIMATES = {
    "old": lambda r, s: 0.999 if r / s >= 0.999 else r / (s + 1),  # the app's rule until now: "all right" passes
    "no-escape": lambda r, s: r / (s + 1),  # the same without that way out (1 of 1 right passed)
    "laplace": lambda r, s: (r + 1) / (s + 2),  # the posterior mean, uniform prior (rule of succession)
    "beta-median": _beta_median,  # the posterior median, uniform prior
}


def crp_unnamed(n: int, k: int) -> float:
    """Chinese-restaurant-process estimate of the chance that the next image is of a class not named
    yet: alpha / (n + alpha), alpha the maximum-likelihood concentration for k classes in n labels."""
    if k <= 1 or n <= k:
        return 1.0
    lo, hi = 1e-6, 1e6
    for _ in range(100):
        a = math.sqrt(lo * hi)
        lo, hi = (lo, a) if (a / (a + np.arange(n))).sum() > k else (a, hi)
    return a / (n + a)


def _leave_class_out(oof: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each out-of-fold row's top probability with its own class's column removed: how it would be
    suggested if its class had not been named."""
    p = oof.copy()
    p[np.arange(len(y)), y] = 0
    return p.max(1) / np.maximum(p.sum(1), 1e-12)


def make_rule(estimate: str = "old", unnamed: bool = False, per_class: float = 0.0):
    """A guard: the least mix on GRID after which the estimated precision of the out-of-fold rows shown
    at >= 90 % is >= 95 %. ``unnamed``: that estimate times 1 - u * h, u the CRP chance of a class not
    named yet, h how often rows are shown at >= 90 % once their own class's column is removed, relative
    to how often the out-of-fold rows are shown (capped at 1). ``per_class`` a > 0: the wrong ones
    among the shown are counted per true class as (wrong_c + a) / (shown_c + 2a) of its shown (Beta
    smoothing: a class with two labels cannot vouch for itself)."""
    est = ESTIMATES[estimate]

    def rule(oof, y, k):
        right, top = oof.argmax(1) == y, oof.max(1)
        u = crp_unnamed(len(y), len(np.unique(y))) if unnamed else 0.0
        loo = _leave_class_out(oof, y) if unnamed else None
        for lam in GRID:
            sh = (1 - lam) * top + lam / k >= suggest.SHOWN
            s, r = int(sh.sum()), float(right[sh].sum())
            h = 0.0
            if unnamed:
                lr = float(((1 - lam) * loo + lam / k >= suggest.SHOWN).mean())
                h = min(1.0, lr / (s / len(y))) if s else float(lr > 0)
            if s == 0:
                if u * h <= 1 - suggest.WANTED_PRECISION:
                    return float(lam)
                continue
            if per_class:
                r = s - sum(sh[y == c].sum() * ((sh & ~right)[y == c].sum() + per_class) / (sh[y == c].sum() + 2 * per_class)
                            for c in np.unique(y) if sh[y == c].any())
            if est(r, s) * (1 - u * h) >= suggest.WANTED_PRECISION:
                return float(lam)
        return 0.5
    return rule


RULES = {
    "old": make_rule("old"),
    "no-escape": make_rule("no-escape"),
    "laplace": make_rule("laplace"),
    "beta-median": make_rule("beta-median"),
    "old+unnamed": make_rule("old", unnamed=True),
    "laplace+unnamed": make_rule("laplace", unnamed=True),
    "per-class a=0.05": make_rule("old", per_class=0.05),
    "per-class a=0.1": make_rule("old", per_class=0.1),
    "per-class a=0.25": make_rule("old", per_class=0.25),
    "per-class a=0.5": make_rule("old", per_class=0.5),
}


def since_new_class(order: np.ndarray, y: np.ndarray) -> int:
    """Labels answered since the last class was named for the first time."""
    first = {}
    for t, i in enumerate(order, 1):
        first.setdefault(int(y[i]), t)
    return len(order) - max(first.values())


def shown(st: dict | None, rule, y_all=None, gate: int = 0) -> tuple[int, int, int]:
    """(other images, shown at >= 90 %, right among them) for one stored state under a guard rule
    (unknown-flagged rows are not shown; an uncalibrated model keeps its cap: nothing shown).
    ``gate`` > 0: also uncalibrated until ``gate`` labels were answered since a class was last named."""
    if st is None:
        return 0, 0, 0
    n = len(st["top"])
    if not st["calibrated"] or (gate and since_new_class(st["order"], y_all) < gate):
        return n, 0, 0
    lam = rule(st["oof"], st["y"], st["k"])
    conf = np.round((1 - lam) * st["top"] + lam / st["k"], 4)
    sh = (conf >= suggest.SHOWN) & ~st["unknown"]
    return n, int(sh.sum()), int(st["right"][sh].sum())


def load(seeds: list[int]) -> list[dict]:
    runs = [pickle.loads(f.read_bytes()) for f in sorted(STORE.glob("*.pkl"))]
    return [r for r in runs if r["seed"] in seeds]


def table(runs: list[dict], rule, gate: int = 0) -> dict:
    """{(family, pick, budget): (lowest precision of the >= 90 % suggestions over the runs (None: none
    shown), mean share shown, pooled precision)}; random picks: every draw is a run."""
    acc: dict = {}
    for r in runs:
        for pick in ("app", "random"):
            for b in bl.BUDGETS:
                for st in [r["app"][b]] if pick == "app" else r["random"][b]:
                    acc.setdefault((r["family"], pick, b), []).append(shown(st, rule, r.get("y"), gate))
    out = {}
    for key, vs in acc.items():
        precs = [right / s for n, s, right in vs if s]
        out[key] = (min(precs) if precs else None, float(np.mean([s / n if n else 0.0 for n, s, _ in vs])),
                    sum(v[2] for v in vs) / max(1, sum(v[1] for v in vs)))
    return out


def report(seeds: list[int], names: list[str], gate: int = 0) -> None:
    runs = load(seeds)
    if gate:
        runs = [r for r in runs if "y" in r]
    fams = sorted({r["family"] for r in runs})
    print(f"seeds {seeds}: {len(runs)} runs ({', '.join(fams)}); load average {[round(v, 1) for v in os.getloadavg()]}")
    for name in names:
        t = table(runs, RULES[name], gate)
        for pick in ("app", "random"):
            lows = [v[0] for kk, v in t.items() if kk[1] == pick and v[0] is not None]
            share = [100 * np.mean([t[(f, pick, b)][1] for f in fams]) for b in bl.BUDGETS]
            pooled = [100 * t[kk][2] for kk in t if kk[1] == pick and t[kk][1] > 0]
            print(f"{name}{' gate ' + str(gate) if gate else ''} | {pick} | lowest {100 * min(lows):.1f} % | pooled >= "
                  f"{min(pooled):.1f} % | shown {' / '.join(f'{v:.0f}' for v in share)} %")
            for f in fams:
                cells = [t[(f, pick, b)] for b in bl.BUDGETS]
                print("    ", f.ljust(12), " ".join(f"{b}:{'-' if c[0] is None else format(100 * c[0], '.1f')}/{100 * c[1]:.0f}%"
                                                  for b, c in zip(bl.BUDGETS, cells, strict=True)))


# -- replaying the temperature's prior and the group gate (stores made with the logits kept) ---------
def replay_state(st: dict | None, prior: tuple[float, float] | None, group_gate: bool,
                 rule=None) -> tuple[int, int, int, float]:
    """(other images, shown at >= 90 %, right among them, accuracy of the suggestions) for one stored
    state, its temperature refitted under ``prior`` (None: the plain fit), the app's shrink rule, and
    with ``group_gate`` no >= 90 % for an image whose visual group holds no labelled image. Exact for
    random picks (they do not depend on the model); the app's picks need a run with the prior set."""
    if st is None:
        return 0, 0, 0, float("nan")
    n, acc = len(st["top"]), float(np.mean(st["right"])) if len(st["right"]) else float("nan")
    if not st["calibrated"]:
        return n, 0, 0, acc
    t = trust.fit_temperature(st["oof_logits"], st["y"], prior=prior)
    p_oof = trust.softmax(st["oof_logits"], t)
    lam = suggest.shrink_for(p_oof, st["y"], st["k"])[0] if rule is None else rule(p_oof, st["y"], st["k"])
    top = trust.softmax(st["logits"], t).max(1)
    sh = (np.round((1 - lam) * top + lam / st["k"], 4) >= suggest.SHOWN) & ~st["unknown"]
    if group_gate:
        sh &= st["grouped"]
    return n, int(sh.sum()), int(st["right"][sh].sum()), acc


def replay(store: str, seeds: list[int], specs: list[str], picks: tuple[str, ...] = ("app", "random")) -> dict:
    """Per spec "T0,s:G[:RULE]" ("none:0" the old code; RULE a name in RULES, default the app's
    shrink_for) and per (family, pick, budget): the lowest precision
    of the >= 90 % suggestions over the runs (random: every draw), the mean share shown, the mean
    accuracy; printed as in ``report``."""
    runs = [pickle.loads(f.read_bytes()) for f in sorted((HERE / "out" / store).glob("*.pkl"))]
    runs = [r for r in runs if r["seed"] in seeds]
    fams = sorted({r["family"] for r in runs})
    print(f"{store} seeds {seeds}: {len(runs)} runs; load average {[round(v, 1) for v in os.getloadavg()]}")
    out = {}
    for spec in specs:
        p, g, *named = spec.split(":")
        prior = None if p == "none" else tuple(float(v) for v in p.split(","))
        rule = RULES[named[0]] if named else None
        acc: dict = {}
        for r in runs:
            for pick in picks:
                for b in bl.BUDGETS:
                    for st in [r["app"][b]] if pick == "app" else r["random"][b]:
                        acc.setdefault((r["family"], pick, b), []).append(replay_state(st, prior, bool(int(g)), rule))
        for pick in picks:
            precs = [right / s for (_, pk, _), vs in acc.items() if pk == pick for _, s, right, _ in vs if s]
            share = [100 * np.mean([np.mean([s / n if n else 0 for n, s, _, _ in acc.get((f, pick, b), [(0, 0, 0, 0)])])
                                    for f in fams])
                     for b in bl.BUDGETS]
            print(f"{spec} | {pick} | lowest {100 * min(precs):.1f} % | below 95 %: {sum(v < 0.95 for v in precs)} of "
                  f"{len(precs)} | shown {' / '.join(f'{v:.0f}' for v in share)} %")
            for f in fams:
                cells = []
                for b in bl.BUDGETS:
                    vs = acc.get((f, pick, b), [])
                    pr = [right / s for _, s, right, _ in vs if s]
                    cells.append(f"{b}:{format(100 * min(pr), '.1f') if pr else '-'}/"
                                 f"{100 * np.mean([s / n if n else 0 for n, s, _, _ in vs]):.0f}%"
                                 f"/acc{100 * np.nanmean([a for *_, a in vs]):.1f}")
                print("    ", f.ljust(12), " ".join(cells))
        out[spec] = acc
    return out


if __name__ == "__main__":
    if sys.argv[1] == "replay":  # replay STORE SEEDS SPEC... [--app|--random]
        only = tuple(a[2:] for a in sys.argv[4:] if a.startswith("--")) or ("app", "random")
        replay(sys.argv[2], [int(v) for v in sys.argv[3].split(",")], [a for a in sys.argv[4:] if not a.startswith("--")], only)
    if sys.argv[1] == "order":
        add_order(sys.argv[2].split(","), [int(v) for v in sys.argv[3].split(",")])
    if sys.argv[1] == "run":
        run(sys.argv[2].split(","), [int(v) for v in sys.argv[3].split(",")], int(sys.argv[4]))
    if sys.argv[1] == "report":
        report([int(v) for v in sys.argv[2].split(",")], sys.argv[3].split(",") if len(sys.argv) > 3 else list(RULES),
               int(sys.argv[4]) if len(sys.argv) > 4 else 0)
