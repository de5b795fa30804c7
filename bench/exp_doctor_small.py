"""Experiment (issue 23 item 2, tiny classes): the doctor's label check on class folders of 6-20
images a class -- false "wrong class" reports on clean folders and planted flips found -- for rules
that differ by class size, compared offline on what ``check_dataset`` itself saw.

``capture``: clean class folders of bench/label_data.py's families (``--families``, ``--seeds``,
``--per-class``); ``check_dataset`` runs once on each and the script saves, per checked image,
quick training's (multi-stage) features, the folder's label, the doctor's 5 nearest neighbours
(row indices) and whether it was called an outlier. None of those depend on the labels, so flips
can be planted offline: ``eval`` moves ``--flip-share`` of the images (at least one) into a random
other class, ``--draws`` times per folder, and runs each rule's label check (the held-out head and
the strong-evidence rule, as ``_label_and_outlier_issues`` does) on the clean labels and on each
flipped draw. Counts: wrong reports on the clean folders, flips found and wrong reports on the
flipped ones (``old``: check VERSION 7, ``v8``: VERSION 8, ``new``: VERSION 9; the others are
variants tried while tuning). ``table``: VERSION 8's candidates on the clean and flipped draws,
judged by the rules of TABLE (the tuning step: which evidence to ask for below 15 a class).

Seeds: 100-102 (6, 10, 15, 20 per class) were used to choose the rule; 21-23 (those of
bench/doctor_small_clean.py) and 200-202 (6 and 10 per class) were evaluated once, after.

Usage: python bench/exp_doctor_small.py capture --seeds 100,101 --per-class 6,10 --out DIR
       python bench/exp_doctor_small.py table --out DIR --draws 6
       python bench/exp_doctor_small.py eval --out DIR [--match _6] [--rules old,v8,new] --draws 6
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import label_data  # noqa: E402

FAMILIES = "shapes,symbols,digits,textures,objects,glyphs"


def make_folder(base: Path, family: str, seed: int, per: int) -> Path:
    d = base / f"ds_{family}_{seed}_{per}"
    if d.exists():
        return d
    tmp = base / f"pile_{family}_{seed}_{per}"
    for p, c in label_data.make_pile(tmp, family, seed, per_class=per).items():
        (d / c).mkdir(parents=True, exist_ok=True)
        shutil.move(p, d / c / os.path.basename(p))
    shutil.rmtree(tmp)
    return d


def capture(root: Path, out: Path) -> dict:
    from cnndesk.core.doctor import check as doctor_check
    from cnndesk.core.doctor import label_check as stats

    seen = {}
    orig_li, orig_se, orig_out = stats.label_issues, stats.strong_evidence, stats.outliers

    def li(x, y, n_classes, cancel=None, quick=False):
        seen["x"] = (x.take(np.arange(len(x))) if isinstance(x, stats.Rows) else np.asarray(x)).astype(np.float32)
        return orig_li(x, y, n_classes, cancel, quick)

    def se(probs, y, neighbours=None):
        seen["nbr"] = np.asarray(neighbours, np.int32)
        return orig_se(probs, y, neighbours)

    def outl(z, k=5, spread=4.5, cancel=None, nearest=None):
        res = orig_out(z, k, spread, cancel, nearest)
        seen["stray"] = res[0]
        return res

    stats.label_issues, stats.strong_evidence, stats.outliers = li, se, outl
    version = doctor_check.VERSION
    doctor_check.VERSION = f"{version}-capture-{os.getpid()}-{time.time()}"
    try:
        rep = doctor_check.check_dataset(root)
    finally:
        stats.label_issues, stats.strong_evidence, stats.outliers = orig_li, orig_se, orig_out
        doctor_check.VERSION = version
    files = doctor_check.collect(root)
    paths = [os.path.realpath(p) for p, _, _ in files.items]
    cls = {c: k for k, c in enumerate(files.classes)}
    y = np.array([cls[c] for _, _, c in files.items])
    assert len(paths) == len(seen["x"])
    stray = np.zeros(len(y), bool)
    stray[np.asarray(seen.get("stray", []), int)] = True
    reported = {os.path.realpath(i.path) for i in rep.issues if i.kind == "label" and i.likely}
    np.savez_compressed(out / f"{root.name}.npz", x=seen["x"], y=y, nbr=seen["nbr"], stray=stray,
                        reported=np.array([p in reported for p in paths]), classes=np.array(files.classes),
                        paths=np.array(paths))
    return {"set": root.name, "images": len(y), "reported": len(reported)}


# --- rules ---------------------------------------------------------------------------------------

OLD = {"GIVEN_AT_MOST": 0.2, "SMALL_CLASS": 0, "NOT_OWN_AT_MOST": -1.0}  # check VERSION 7
V8_OFF = {"SMALL_CLASS": 0, "NOT_OWN_AT_MOST": -1.0}  # VERSION 8's head and second way off


def median_class(y: np.ndarray) -> float:
    counts = np.bincount(y)
    return float(np.median(counts[counts > 0]))


def nb_counts(y: np.ndarray, nbr: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(own, suggested, valid) counts among each image's neighbours."""
    valid = nbr >= 0
    lab = y[np.where(valid, nbr, 0)]
    own = ((lab == y[:, None]) & valid).sum(1)
    sug = ((lab == probs.argmax(1)[:, None]) & valid).sum(1)
    return own, sug, valid.sum(1)


def strict_nb(own_max: int, sug_min: int, below: float = 15):
    def hook(stats, probs, y, nbr, strong):
        if median_class(y) >= below:
            return strong
        own, sug, valid = nb_counts(y, nbr, probs)
        return strong & (own <= own_max) & (sug >= sug_min)
    return hook


def given_small(at_most: float, below: float = 15):
    def hook(stats, probs, y, nbr, strong):
        if median_class(y) >= below:
            return strong
        return strong & (probs[np.arange(len(y)), y] <= at_most)
    return hook


NEW = {"FEW_PER_CLASS": 15}  # check VERSION 9: below 15 a class, no neighbour may carry the label
V8 = {"FEW_PER_CLASS": 0}  # check VERSION 8
RULES = {"old": OLD, "v8": V8, "new": NEW,
         "gate15": {"small": V8_OFF},  # below 15 a class: VERSION 7's head, own <= 0.1
         "gate15old": {"small": {**V8_OFF, "GIVEN_AT_MOST": 0.2}},  # below 15: VERSION 7 entirely
         "gate15noNO": {"small": {"NOT_OWN_AT_MOST": -1.0}},  # below 15: v8 head, no second way
         "v8nb13": {"hook": strict_nb(1, 3)}, "v8nb02": {"hook": strict_nb(0, 2)},
         "v8nb12": {"hook": strict_nb(1, 2)}, "v8nb03": {"hook": strict_nb(0, 3)},
         "g15nb13": {"small": V8_OFF, "hook": strict_nb(1, 3)},
         "g15nb12": {"small": V8_OFF, "hook": strict_nb(1, 2)},
         "v8g03": {"hook": given_small(0.03)}, "v8g01": {"hook": given_small(0.01)},
         }
SMALL_FROM = 15


def reported_by(rule: dict, x: np.ndarray, y: np.ndarray, nbr: np.ndarray, stray: np.ndarray, n_classes: int) -> np.ndarray:
    """What _label_and_outlier_issues reports as likely, with the label_check constants in
    ``rule`` (and a ``hook``: a function of (stats, probs, y, nbr, strong) -> strong, for rules that
    are not constants)."""
    from cnndesk.core.doctor import label_check as stats

    consts = {**V8, **{k: v for k, v in rule.items() if k not in ("hook", "small")}}
    if "small" in rule and median_class(y) < SMALL_FROM:
        consts.update(rule["small"])
    keep = {k: getattr(stats, k) for k in consts}
    try:
        for k, v in consts.items():
            setattr(stats, k, v)
        found, probs = stats.label_issues(x, y, n_classes, quick=True)
        strong = stats.strong_evidence(probs, y, nbr)
        if "hook" in rule:
            strong = rule["hook"](stats, probs, y, nbr, strong)
    finally:
        for k, v in keep.items():
            setattr(stats, k, v)
    mask = np.zeros(len(y), bool)
    for j in found:
        if probs[j].argmax() != y[j] and not stray[j] and strong[j]:
            mask[j] = True
    return mask


def plant(y: np.ndarray, n_classes: int, share: float, draw: int, name: str) -> np.ndarray:
    rng = random.Random(f"{name}-flips-{draw}")
    n = max(1, int(round(share * len(y))))
    yf = y.copy()
    for j in rng.sample(range(len(y)), n):
        yf[j] = rng.choice([c for c in range(n_classes) if c != y[j]])
    return yf


def evaluate(npz: Path, rules: dict, draws: int, share: float) -> dict:
    d = np.load(npz)
    x, y, nbr, stray = d["x"], d["y"], d["nbr"], d["stray"]
    k = len(d["classes"])
    out = {"set": npz.stem, "images": len(y)}
    for name, rule in rules.items():
        clean = reported_by(rule, x, y, nbr, stray, k)
        found = wrong = flips = 0
        for r in range(draws):
            yf = plant(y, k, share, r, npz.stem)
            m = reported_by(rule, x, yf, nbr, stray, k)
            flipped = yf != y
            flips += int(flipped.sum())
            found += int((m & flipped).sum())
            wrong += int((m & ~flipped).sum())
        out[name] = {"clean": int(clean.sum()), "flips": flips, "found": found, "wrong": wrong}
    return out


def candidate_rows(npz: Path, draws: int, share: float) -> tuple[list[dict], int]:
    """Every candidate of VERSION 8's held-out head (another class predicted, not an outlier) on the
    clean labels (draw -1) and on each flipped draw: its folder's class, the top class, and how many
    of its 5 neighbours carry its label / the suggested one; and the number of planted flips."""
    from cnndesk.core.doctor import label_check as stats

    d = np.load(npz)
    x, y, nbr, stray = d["x"], d["y"], d["nbr"], d["stray"]
    k = len(d["classes"])
    rows, flips = [], 0
    for r in range(-1, draws):
        yf = y if r < 0 else plant(y, k, share, r, npz.stem)
        flips += int((yf != y).sum())
        found, probs = stats.label_issues(x, yf, k, quick=True)
        own, sug, valid = nb_counts(yf, nbr, probs)
        for j in found:
            if not stray[j] and probs[j].argmax() != yf[j]:
                rows.append({"draw": r, "flip": bool(yf[j] != y[j]), "given": float(probs[j, yf[j]]),
                             "top": float(probs[j].max()), "own": int(own[j]), "sug": int(sug[j]),
                             "valid": int(valid[j])})
    return rows, flips


# rules on the candidates (VERSION 8's "strong evidence" and the alternatives tried for few a class)
TABLE = {
    "VERSION 8": lambda r: (r["given"] <= 0.1 and r["top"] >= 0.6 and (r["own"] <= r["valid"] / 2 or not r["valid"]))
    or (r["given"] <= 0.05 and r["valid"] > 0 and r["own"] == 0),
    "VERSION 7 thresholds (own <= 0.2, top >= 0.6, <= half own)": lambda r: r["given"] <= 0.2 and r["top"] >= 0.6
    and (r["own"] <= r["valid"] / 2 or not r["valid"]),
    "own <= 0.1, no neighbour own (adopted below 15)": lambda r: r["given"] <= 0.1 and r["valid"] > 0 and r["own"] == 0,
    "own <= 0.05, no neighbour own": lambda r: r["given"] <= 0.05 and r["valid"] > 0 and r["own"] == 0,
    "own <= 0.1, no neighbour own, >= 1 suggested": lambda r: r["given"] <= 0.1 and r["valid"] > 0 and r["own"] == 0
    and r["sug"] >= 1,
    "own <= 0.1, no neighbour own, >= 2 suggested": lambda r: r["given"] <= 0.1 and r["valid"] > 0 and r["own"] == 0
    and r["sug"] >= 2,
    "own <= 0.1, no neighbour own, top >= 0.6": lambda r: r["given"] <= 0.1 and r["valid"] > 0 and r["own"] == 0
    and r["top"] >= 0.6,
    "own <= 0.05, <= 1 neighbour own, >= 2 suggested": lambda r: r["given"] <= 0.05 and r["valid"] > 0
    and r["own"] <= 1 and r["sug"] >= 2,
}


def table(paths: list[Path], draws: int, share: float) -> None:
    groups: dict = {}
    for npz in paths:
        _, fam, _, per = npz.stem.split("_")
        bench_family = fam in ("shapes", "symbols", "digits", "textures")
        rows, flips = candidate_rows(npz, draws, share)
        g = groups.setdefault((int(per), bench_family), {"flips": 0, "rows": []})
        g["flips"] += flips
        g["rows"] += rows
    for (per, bench_family), g in sorted(groups.items()):
        print(f"== {per} per class, {'shapes/symbols/digits/textures' if bench_family else 'objects/glyphs'}: "
              f"{g['flips']} planted flips")
        for name, rule in TABLE.items():
            hit = [r for r in g["rows"] if rule(r)]
            clean = sum(r["draw"] < 0 for r in hit)
            found = sum(r["draw"] >= 0 and r["flip"] for r in hit)
            wrong = sum(r["draw"] >= 0 and not r["flip"] for r in hit)
            print(f"  {name:60s} clean {clean:3d}  found {found:4d} ({found / max(g['flips'], 1):.2f})  "
                  f"wrong {wrong:4d}  precision {found / max(found + wrong, 1):.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["capture", "eval", "table"])
    ap.add_argument("--families", default=FAMILIES)
    ap.add_argument("--seeds", default="100,101")
    ap.add_argument("--per-class", default="6,10")
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--match", default="", help="eval: only captures whose name contains this")
    ap.add_argument("--rules", default="old,v8")
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--flip-share", type=float, default=0.05)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.what == "capture":
        work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cnndesk-exp-small-"))
        work.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("CNNDESK_CACHE_DIR", str(work / "cache"))
        os.environ["CNNDESK_DATA_DIR"] = str(work / "data")
        for per in (int(s) for s in args.per_class.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                for fam in args.families.split(","):
                    if (out / f"ds_{fam}_{seed}_{per}.npz").exists():
                        continue
                    print(json.dumps(capture(make_folder(work, fam, seed, per), out)), flush=True)
        return
    rules = {n: RULES[n] for n in args.rules.split(",")}
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        if args.what == "table":
            table([p for p in sorted(out.glob("*.npz")) if args.match in p.stem], args.draws, args.flip_share)
            return
        for npz in sorted(out.glob("*.npz")):
            if args.match and args.match not in npz.stem:
                continue
            print(json.dumps(evaluate(npz, rules, args.draws, args.flip_share)), flush=True)


if __name__ == "__main__":
    main()
