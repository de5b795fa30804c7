"""Experiment (issue 23 item 2, held-out look): does the doctor's label check report correctly
labelled images on families it was not tuned on, and does a second, independent witness -- the
image's nearest neighbours' labels -- remove those reports without losing planted flips?

Families with 5 % of the images moved into a wrong class folder: ``mixed`` and ``digits`` (those
of bench/bench_doctor_labels.py, the check was tuned on their seeds 0-1), and the labelling
benchmark's generated families ``textures`` (random hues), ``shapes``, ``objects``, ``symbols``
(bench/label_data.py; never used for the doctor) as class folders. For each: the check's
out-of-fold probabilities (``label_check.label_issues(quick=True)``, as ``cnndesk doctor``) and, per
candidate, the share of its k nearest neighbours (cosine on the check's 128 projected axes of
quick training's features) labelled with the suggested class vs its own.

Usage: python bench/exp_doctor_knn.py --families textures,shapes --seeds 0,1 [--out f.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import label_data  # noqa: E402
from bench_doctor_labels import candidates, make  # noqa: E402


def make_label_family(root: Path, family: str, seed: int, per_class: int | None, flip_share: float = 0.05) -> dict:
    pile = root.parent / f"{root.name}-pile"
    truth = label_data.make_pile(pile, family, seed, per_class)
    rng = random.Random(f"flips-{family}-{seed}")
    classes = sorted(set(truth.values()))
    flips = []
    files = sorted(truth)
    chosen = set(rng.sample(files, int(round(flip_share * len(files)))))
    for p in files:
        c = truth[p]
        if p in chosen:
            c = rng.choice([k for k in classes if k != truth[p]])
        (root / c).mkdir(parents=True, exist_ok=True)
        dst = root / c / Path(p).name
        os.link(p, dst)
        if p in chosen:
            flips.append({"path": str(dst.relative_to(root)), "true": truth[p], "labelled": c})
    return {"root": str(root), "flips": flips}


def run(family: str, seed: int, work: Path, per_class: int | None, ks=(5, 10, 20)) -> dict:
    from cnndesk.core.doctor import label_check as stats

    root = work / f"{family}-{seed}"
    if family in ("mixed", "digits"):
        man = make(family, root, per_class or 100, seed)
    else:
        man = make_label_family(root, family, seed, per_class)
    ok, y, x, found, probs, flipped = candidates(root, man)
    u = stats.unit(stats.project(x))
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1)
    rows = []
    for j in found:
        s = int(np.argmax(probs[j]))
        row = {"flip": ok[j] in flipped, "given": round(float(probs[j, y[j]]), 4), "top": round(float(probs[j].max()), 4)}
        for k in ks:
            nb = y[order[j, :k]]
            row[f"own{k}"] = round(float((nb == y[j]).mean()), 3)
            row[f"sugg{k}"] = round(float((nb == s).mean()), 3)
        rows.append(row)
    return {"family": family, "seed": seed, "images": len(ok), "flips": len(flipped), "candidates": rows}


def end_to_end(family: str, seed: int, work: Path, per_class: int | None) -> dict:
    """``cnndesk doctor``'s own reports (check_dataset), without the neighbour witness (old) and
    with it (new), on the same folder: label issues reported (strong evidence) vs planted flips."""
    from cnndesk.core.doctor import check as doctor_check
    from cnndesk.core.doctor import label_check as stats
    from cnndesk.core.doctor.check import check_dataset

    root = work / f"e2e-{family}-{seed}"
    if family in ("mixed", "digits"):
        man = make(family, root, per_class or 100, seed)
    else:
        man = make_label_family(root, family, seed, per_class)
    flipped = {os.path.realpath(os.path.join(man["root"], f["path"])) for f in man["flips"]}
    out = {"family": family, "seed": seed, "flips": len(flipped)}
    keep, version = stats.NEIGHBOURS_OWN_AT_MOST, doctor_check.VERSION
    for name, at_most in (("old", 1.0), ("new", keep)):
        stats.NEIGHBOURS_OWN_AT_MOST, doctor_check.VERSION = at_most, f"{version}-exp-{name}"  # no memo reuse
        try:
            rep = check_dataset(root, less_likely=True)
        finally:
            stats.NEIGHBOURS_OWN_AT_MOST, doctor_check.VERSION = keep, version
        shown = [os.path.realpath(i.path) for i in rep.issues if i.kind == "label" and i.likely]
        tp = sum(p in flipped for p in shown)
        out[name] = {"reported": len(shown), "true": tp, "wrongly": len(shown) - tp,
                     "recall": round(tp / max(len(flipped), 1), 3),
                     "precision": round(tp / len(shown), 3) if shown else None,
                     "images": rep.summary["images"]}
    return out


def rules():
    yield "current (given<=0.2, top>=0.6)", lambda r: r["given"] <= 0.2 and r["top"] >= 0.6
    for k in (5, 10, 20):
        yield f"current + own{k} < sugg{k}", lambda r, k=k: r["given"] <= 0.2 and r["top"] >= 0.6 and r[f"own{k}"] < r[f"sugg{k}"]
        yield f"current + own{k} <= 0.5", lambda r, k=k: r["given"] <= 0.2 and r["top"] >= 0.6 and r[f"own{k}"] <= 0.5
        yield f"current + sugg{k} >= 0.3", lambda r, k=k: r["given"] <= 0.2 and r["top"] >= 0.6 and r[f"sugg{k}"] >= 0.3


def summarise(results: list[dict]) -> dict:
    out = {}
    for name, rule in rules():
        rows = []
        for res in results:
            hit = [r["flip"] for r in res["candidates"] if rule(r)]
            tp = sum(hit)
            rows.append({"set": f"{res['family']}-{res['seed']}", "reported": len(hit), "true": tp,
                         "wrongly": len(hit) - tp, "recall": round(tp / max(res["flips"], 1), 3),
                         "precision": round(tp / len(hit), 3) if hit else None})
        out[name] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="mixed,digits,textures,shapes,objects,symbols")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--per-class", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--e2e", action="store_true", help="the doctor itself, old vs new rule")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cnndesk-exp-knn-"))
    os.environ.setdefault("CNNDESK_CACHE_DIR", str(work / "cache"))
    os.environ["CNNDESK_DATA_DIR"] = str(work / "data")
    results = []
    if args.e2e:
        for family in args.families.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                results.append(end_to_end(family, seed, work, args.per_class))
                print(json.dumps(results[-1]), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1))
        return
    for family in args.families.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            results.append(run(family, seed, work, args.per_class))
            print(json.dumps({k: v for k, v in results[-1].items() if k != "candidates"}), flush=True)
    summary = summarise(results)
    for name, rows in summary.items():
        print(name)
        for r in rows:
            print("   ", r)
    if args.out:
        Path(args.out).write_text(json.dumps({"results": results, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
