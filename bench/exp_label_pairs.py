"""Issue 22, honest confidence on look-alike pairs: does a guard built from the out-of-fold
confusion between an image's top two classes keep the suggestions shown at >= 90 % right >= 95 %
of the time on glyphs at 50 labels, without hiding the easy families' suggestions?

    PYTHONPATH=. python bench/exp_label_pairs.py STORE SEEDS [FAMILIES] [VARIANT...]     # replay guards
    PYTHONPATH=. python bench/exp_label_pairs.py sim FAMILIES SEEDS SESSION_SEEDS VARIANT...  # app trajectories
    PYTHONPATH=. python bench/exp_label_pairs.py table FAMILIES SEEDS [MIN_EVIDENCE]        # docs table

``sim`` runs the app's picks (batches of 10, oracle answers) under a VARIANTS entry ("old": the code
before the whitened head, "new": the whitened head; both with MIN_EVIDENCE 0 and the evidence count
recorded, so ``table`` applies any count afterwards — exact, since the cap is a uniform mix that changes
neither the order of the suggestions nor the picks) into bench/out/exp_pairs.jsonl; folders from the main
checkout's bench/out/label when there (read only), else generated here. Random picks per head:
``exp_label_lda.py draws`` (bench/out/exp_random.jsonl).

Replays the states stored by ``bench_label_calib.py run`` (STORE under bench/out/, or an absolute
path; they keep the out-of-fold and folder logits): the app's rule (temperature under its prior,
``suggest.shrink_for``, the unknown flag, the group gate) and, per VARIANT, that rule plus a cap at
0.8 for every image whose top two classes form a pair the out-of-fold predictions confuse.
Exact for random picks and the app's picks alike (the guard changes scores, not picks).
Variants: ``soft:THETA`` — the pair's soft confusion (mean probability an out-of-fold row of one
class gives the other, the larger of both directions) >= THETA; ``hard:N`` — >= N out-of-fold rows
of one class predicted as the other; ``pairT:S`` — a per-pair temperature on the out-of-fold rows
of the pair's two classes (binary logit, log-normal prior of width S around the global temperature),
the two-class probability must also reach 0.9.
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


def soft_confusion(p_oof: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """(k, k): mean probability out-of-fold rows of class a give class b; symmetric (the larger)."""
    s = np.zeros((k, k))
    for c in range(k):
        if (y == c).any():
            s[c] = p_oof[y == c].mean(0)
    np.fill_diagonal(s, 0.0)
    return np.maximum(s, s.T)


def hard_confusion(p_oof: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    c = np.zeros((k, k))
    np.add.at(c, (y, p_oof.argmax(1)), 1.0)
    np.fill_diagonal(c, 0.0)
    return np.maximum(c, c.T)


def pair_temperature(oof_logits: np.ndarray, y: np.ndarray, a: int, b: int, t0: float, s: float) -> float:
    """MAP temperature of the binary logit l_a - l_b on the out-of-fold rows of classes a and b
    (log-normal prior of width s around t0)."""
    m = (y == a) | (y == b)
    if m.sum() < 2:
        return t0
    d = np.where(y[m] == a, 1.0, -1.0) * (oof_logits[m, a] - oof_logits[m, b])
    grid = t0 * np.exp(np.linspace(-3 * s, 4 * s, 71))
    nll = [np.logaddexp(0.0, -d / t).sum() + (np.log(t / t0)) ** 2 / (2 * s * s) for t in grid]
    return float(grid[int(np.argmin(nll))])


def shrink_below(p_oof: np.ndarray, y: np.ndarray, k: int, delta: float) -> float:
    """shrink_for judged on the out-of-fold rows at >= SHOWN - delta (more rows, the near misses too)."""
    right, top = p_oof.argmax(1) == y, p_oof.max(1)
    for lam in np.linspace(0.0, 0.5, 26):
        sh = (1 - lam) * top + lam / k >= suggest.SHOWN - delta
        if not sh.any():
            return float(lam)
        if right[sh].sum() / (sh.sum() + 1.0) >= suggest.WANTED_PRECISION or right[sh].mean() >= 0.999:
            return float(lam)
    return 0.5


def shown_mask(st: dict, variant: str | None) -> tuple[np.ndarray, float]:
    """The other images shown at >= 90 % under the app's rule (+ a pair guard), and the accuracy."""
    n = len(st["top"])
    if not st["calibrated"]:
        return np.zeros(n, bool), float(np.mean(st["right"]))
    k, y = st["k"], st["y"]
    t = trust.fit_temperature(st["oof_logits"], y, prior=suggest.TEMPERATURE_PRIOR)
    p_oof = trust.softmax(st["oof_logits"], t)
    kind, v = (variant.split(":")[0], float(variant.split(":")[1])) if variant else (None, 0.0)
    lam = suggest.shrink_for(p_oof, y, k)[0] if kind != "below" else shrink_below(p_oof, y, k, v)
    p = trust.softmax(st["logits"], t)
    conf = np.round((1 - lam) * p.max(1) + lam / k, 4)
    order = np.argsort(-p, 1)
    a, b = order[:, 0], order[:, 1]
    if variant:
        if kind == "minev":  # fewer than v out-of-fold rows vouch for >= 90 %: none shown
            if ((1 - lam) * p_oof.max(1) + lam / k >= suggest.SHOWN).sum() < v:
                conf = np.minimum(conf, 0.8)
        if kind == "soft":
            conf = np.where(soft_confusion(p_oof, y, k)[a, b] >= v, np.minimum(conf, 0.8), conf)
        elif kind == "hard":
            conf = np.where(hard_confusion(p_oof, y, k)[a, b] >= v, np.minimum(conf, 0.8), conf)
        elif kind == "pairT":
            tp = np.full((k, k), t)
            for i, j in {(int(i), int(j)) for i, j in zip(a, b, strict=True)}:
                tp[i, j] = tp[j, i] = pair_temperature(st["oof_logits"], y, i, j, t, v)
            d = st["logits"][np.arange(n), a] - st["logits"][np.arange(n), b]
            two = 1.0 / (1.0 + np.exp(-d / tp[a, b]))
            conf = np.minimum(conf, np.round((1 - lam) * two + lam / k, 4))
    sh = (conf >= suggest.SHOWN) & ~st["unknown"] & st["grouped"]
    return sh, float(np.mean(st["right"]))


def folder_data(fam: str, seed: int):
    """(paths, embeddings, true class indices, class names): the main checkout's generated folder when
    it has one (read only), else this checkout's bench/out/label (generated here)."""
    import bench_label as bl
    import label_data

    main = Path("/work/main/bench/out/label")
    if (main / f"{fam}-{seed}-truth.csv").exists():
        truth = label_data.read_truth(main / f"{fam}-{seed}")
    else:
        _, truth = bl.folder(fam, seed)
    paths = sorted(truth)
    classes = sorted(set(truth.values()))
    return paths, bl.embeddings(paths), np.array([classes.index(truth[p]) for p in paths]), classes


VARIANTS = {  # picking (and suggest.X) switches per variant; "base" is the code before this work
    "base": {"suggest.WITHIN_SHRINK": None},
    "wlin0.3": {"suggest.WITHIN_SHRINK": 0.3},
    "wlin0.1": {"suggest.WITHIN_SHRINK": 0.1},
    "old": {"suggest.WITHIN_SHRINK": None, "suggest.MIN_EVIDENCE": 0},  # as base, the evidence recorded
    "new": {"suggest.WITHIN_SHRINK": 0.3, "suggest.MIN_EVIDENCE": 0},  # the guard applied from the record
    "pairs": {"PICK_DIVERSITY": "pairs"},
    "pairs0": {"PICK_DIVERSITY": "pairs", "PAIR_FLOOR": 1.0},
    "shift0.2": {"PAIR_MARGIN_WEIGHT": 0.2},
    "shift0.5": {"PAIR_MARGIN_WEIGHT": 0.5},
    "pairs+shift0.2": {"PICK_DIVERSITY": "pairs", "PAIR_MARGIN_WEIGHT": 0.2},
}


def simulate(fam: str, seed: int, ss: int, variant: str) -> dict:
    """One app trajectory (batches of 10, the oracle answers) under a pick variant: per budget the
    accuracy of the other images' suggestions, the share shown at >= 90 % and their precision."""
    import time

    from cnndesk.core.labelling import LabelSession, picking

    mods = {"picking": picking, "suggest": suggest}
    keys = ("PICK_DIVERSITY", "PAIR_FLOOR", "PAIR_MARGIN_WEIGHT", "suggest.WITHIN_SHRINK", "suggest.MIN_EVIDENCE")
    # the pair-pick switches lived in picking.py at commit f3b5992 only (not adopted, removed after)
    keys = tuple(k for k in keys if hasattr(mods[k.split(".")[0]] if "." in k else picking, k.split(".")[-1]))
    defaults = {k: getattr(mods[k.split(".")[0]] if "." in k else picking, k.split(".")[-1]) for k in keys}

    def put(settings: dict) -> None:
        for k, v in settings.items():
            setattr(mods[k.split(".")[0]] if "." in k else picking, k.split(".")[-1], v)

    put({**defaults, **VARIANTS[variant]})
    paths, x, y, classes = folder_data(fam, seed)
    s = LabelSession(HERE / "out" / "label", paths, x, seed=seed * 100 + ss if ss else seed)
    pending, out, t_ask = list(s.ask(len(classes))), {}, []
    try:
        for bud in BUDGETS:
            while len(s.labelled) < bud:
                if not pending:
                    t = time.process_time()
                    pending = s.ask(min(10, bud - len(s.labelled)))
                    t_ask.append(time.process_time() - t)
                    if not pending:
                        break
                q = pending.pop(0)
                s.answer(q.index, classes[y[q.index]])
            pending = []
            rows = s.suggestions().rows
            right = np.array([r.label == classes[y[r.index]] for r in rows])
            sh = np.array([r.score >= suggest.SHOWN and not r.unknown for r in rows])
            m = s.model()
            out[bud] = (float(right.mean()), float(sh.mean()), float(right[sh].mean()) if sh.any() else None,
                        None if m is None else m.evidence)
    finally:
        put(defaults)
    return {"family": fam, "seed": seed, "ss": ss, "variant": variant, "budgets": out,
            "ask_cpu_s": float(np.median(t_ask)) if t_ask else None}


def sim_main(args: list[str]) -> None:
    """sim FAMILIES SEEDS SESSION_SEEDS VARIANT... -> one JSON line per run, appended to bench/out/exp_pairs.jsonl"""
    import json

    store = HERE / "out" / "exp_pairs.jsonl"
    done = set()
    if store.exists():
        for line in store.read_text().splitlines():
            r = json.loads(line)
            done.add((r["family"], r["seed"], r["ss"], r["variant"]))
    for fam in args[0].split(","):
        for seed in [int(v) for v in args[1].split(",")]:
            for ss in range(int(args[2])):
                for variant in args[3:]:
                    if (fam, seed, ss, variant) in done:
                        continue
                    r = simulate(fam, seed, ss, variant)
                    r["load"] = [round(v, 1) for v in os.getloadavg()]
                    with store.open("a") as fh:
                        fh.write(json.dumps(r) + "\n")
                    print(json.dumps(r), flush=True)


def table_main(args: list[str]) -> None:
    """table FAMILIES SEEDS [MIN_EVIDENCE]: per folder (session seed 0), old -> new accuracy at each budget
    with random picks (bench/out/exp_random.jsonl: the old head / the new head), and the lowest precision
    and share of the >= 90 % suggestions (new: with the evidence count applied from the record)."""
    import json

    ev = int(args[2]) if len(args) > 2 else suggest.MIN_EVIDENCE
    rows = [json.loads(line) for line in (HERE / "out" / "exp_pairs.jsonl").read_text().splitlines()]
    rnd = {(r["family"], r["seed"]): r["random"] for r in
           (json.loads(line) for line in (HERE / "out" / "exp_random.jsonl").read_text().splitlines())}
    seeds = [int(v) for v in args[1].split(",")]
    print("| folder | 10 labels: old / **new** (random old / new) | 20 | 50 | 100 | 200 | >= 90 % right, lowest (shown) old | new |")
    print("|---|---|---|---|---|---|---|---|")
    for fam in args[0].split(","):
        for seed in seeds:
            got = {r["variant"]: r for r in rows if r["family"] == fam and r["seed"] == seed and r["ss"] == 0}
            if "old" not in got or "new" not in got:
                continue
            cells = []
            for bud in BUDGETS:
                o, n = got["old"]["budgets"][str(bud)][0], got["new"]["budgets"][str(bud)][0]
                r = rnd.get((fam, seed))
                rr = f" ({100 * r['linear'][str(bud)]:.1f} / {100 * r['wlin:0.3'][str(bud)]:.1f})" if r else ""
                cells.append(f"{100 * o:.1f} / **{100 * n:.1f}**{rr}")

            def honest(r: dict, e: int) -> str:
                out = []
                for bud in (50, 100, 200):
                    _, sh, pr, evd = r["budgets"][str(bud)]
                    if e and (evd is None or evd < e):
                        sh, pr = 0.0, None
                    out.append("–" if pr is None else f"{100 * pr:.1f} ({100 * sh:.0f} %)")
                return " · ".join(out)
            print(f"| {fam}-{seed} | " + " | ".join(cells) + f" | {honest(got['old'], 0)} | {honest(got['new'], ev)} |")


def print_table(runs: list[dict], names: list[str], rules: list, shown, title=str, width: int = 12) -> None:
    """Per rule and pick (app / random): the lowest precision of the suggestions shown at >= 90 %
    over the stored states, how many below 95 %, and per family and budget lowest/share shown.
    ``shown(state, rule)`` is the boolean mask of the suggestions the rule shows."""
    for rule in rules:
        acc: dict = {}
        for r in runs:
            for pick in ("app", "random"):
                for bud in BUDGETS:
                    for st in [r["app"][bud]] if pick == "app" else r["random"][bud]:
                        if st is None:
                            continue
                        sh = shown(st, rule)
                        acc.setdefault((r["family"], pick, bud), []).append((len(sh), int(sh.sum()), int(st["right"][sh].sum())))
        for pick in ("app", "random"):
            precs = [right / s for (_, pk, _), vs in acc.items() if pk == pick for _, s, right in vs if s]
            print(f"{title(rule)} | {pick} | lowest {100 * min(precs) if precs else 100:.1f} % | below 95 %: "
                  f"{sum(v < 0.95 for v in precs)} of {len(precs)}")
            for f in names:
                cells = []
                for bud in BUDGETS:
                    vs = acc.get((f, pick, bud), [])
                    pr = [right / s for _, s, right in vs if s]
                    cells.append(f"{bud}:{format(100 * min(pr), '.1f') if pr else '-'}/"
                                 f"{100 * np.mean([s / n for n, s, _ in vs]) if vs else 0:.0f}%")
                print("    ", f.ljust(width), " ".join(cells))


def main() -> None:
    if sys.argv[1] == "table":
        table_main(sys.argv[2:])
        return
    if sys.argv[1] == "sim":
        sim_main(sys.argv[2:])
        return
    store = Path(sys.argv[1]) if os.path.isabs(sys.argv[1]) else HERE / "out" / sys.argv[1]
    seeds = [int(v) for v in sys.argv[2].split(",")]
    fams = sys.argv[3].split(",") if len(sys.argv) > 3 and sys.argv[3] != "all" else None
    variants = [None] + sys.argv[4:]
    runs = [pickle.loads(f.read_bytes()) for f in sorted(store.glob("*.pkl"))]
    runs = [r for r in runs if r["seed"] in seeds and (fams is None or r["family"] in fams)]
    names = sorted({r["family"] for r in runs})
    print(f"{store.name} seeds {seeds}: {len(runs)} runs; load average {[round(v, 1) for v in os.getloadavg()]}")
    print_table(runs, names, variants, lambda st, v: shown_mask(st, v)[0], lambda v: v or "app rule")

if __name__ == "__main__":
    main()
