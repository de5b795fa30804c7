"""The doctor's label check: recall and precision of what it reports as wrong labels, with 5 % of
the training images moved into a wrong class folder, on two families of generated data:

* ``mixed``: bench/doctor_data.py (six classes of small symbols, four of textures; train/ + val/,
  with planted near-duplicates and leaks, whose detection is reported too);
* ``digits``: ten classes of small grey hand-stroked digits (bench/unknown_data.py), class folders.

``--tune``: instead, for seeds 0-1 (never the reported seeds 2-3), the grid of the "strong
evidence" thresholds (doctor_labels.GIVEN_AT_MOST, OTHER_AT_LEAST) with recall and precision
over what each would report, from the same out-of-fold probabilities the check uses.

Usage: python bench/bench_doctor_labels.py [--per-class 100] [--seeds 2,3] [--tune] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import doctor_data  # noqa: E402
import unknown_data  # noqa: E402


def make_digits(root: Path, per_class: int, seed: int, flip_share: float = 0.05) -> dict:
    unknown_data.make_user_set(root, "digits", per_class, seed)
    rng = random.Random(f"flips-{seed}")
    files = sorted(root.rglob("*.png"))
    classes = sorted(p.name for p in root.iterdir())
    flips = []
    for src in rng.sample(files, int(round(flip_share * len(files)))):
        wrong = rng.choice([c for c in classes if c != src.parent.name])
        target = root / wrong / src.name
        src.rename(target)
        flips.append({"path": str(target.relative_to(root)), "true": src.parent.name, "labelled": wrong})
    return {"root": str(root), "flips": flips, "dupes": [], "leaks": [], "outliers": []}


def make(family: str, root: Path, per_class: int, seed: int) -> dict:
    if family == "digits":
        return make_digits(root, per_class, seed)
    return doctor_data.make(root, per_class=per_class, seed=seed)


def evaluate(man: dict, rep) -> dict:
    from bench_doctor import score

    return score(rep.to_json(), man)


def candidates(root: Path, man: dict) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, set[str]]:
    """The label check's candidates on a made folder: (readable paths, their class indices, their
    multi-stage features, candidate rows, out-of-fold probabilities, the planted flips' paths)."""
    from cnndesk.core.doctor import check as doctor
    from cnndesk.core.doctor import embed as doctor_embed
    from cnndesk.core.doctor import label_check as stats
    from cnndesk.core.models.registry import get_spec

    files = doctor.collect(root)
    paths = [p for p, _, _ in files.items]
    _, multi, _, _ = doctor_embed.embed_multi(paths, get_spec(doctor.DEFAULT_MODEL))
    ok = [p for p in paths if p in multi]
    cls = {c: k for k, c in enumerate(files.classes)}
    labels = {p: c for p, _, c in files.items}
    y = np.array([cls[labels[p]] for p in ok])
    x = np.stack([multi[p] for p in ok])
    found, probs = stats.label_issues(x, y, len(files.classes), quick=True)
    flipped = {os.path.join(man["root"], f["path"]) for f in man["flips"]}
    return ok, y, x, found, probs, flipped


def tune(args, work: Path) -> dict:
    rows = []
    for family in ("mixed", "digits"):
        for seed in (0, 1):
            root = work / f"{family}-{seed}"
            man = make(family, root, args.per_class, seed)
            ok, y, _, found, probs, flipped = candidates(root, man)
            given = probs[found, y[found]]
            top = probs[found].max(1)
            hit = np.array([ok[j] in flipped for j in found])
            rows.append((family, seed, given, top, hit, len(flipped)))
    grid = {}
    for g in (0.1, 0.15, 0.2, 0.3, 0.4, 0.5):
        for o in (0.4, 0.5, 0.6, 0.7, 0.8):
            res = []
            for family, seed, given, top, hit, n in rows:
                m = (given <= g) & (top >= o)
                res.append({"family": family, "seed": seed, "recall": round(float(hit[m].sum() / max(n, 1)), 3),
                            "precision": round(float(hit[m].mean()) if m.any() else 1.0, 3), "reported": int(m.sum())})
            grid[f"given<={g}, other>={o}"] = res
    base = [{"family": f, "seed": s, "candidates": len(h), "recall": round(float(h.sum() / n), 3),
             "precision": round(float(h.mean()), 3)} for f, s, _, _, h, n in rows]
    return {"all_candidates": base, "grid": grid}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--seeds", default="2,3")
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cnndesk-bench-labels-"))
    os.environ.setdefault("CNNDESK_CACHE_DIR", str(work / "cache"))
    os.environ["CNNDESK_DATA_DIR"] = str(work / "data")
    if args.tune:
        results = tune(args, work)
    else:
        from cnndesk.core.doctor.check import check_dataset

        results = {}
        for family in ("mixed", "digits"):
            for seed in (int(s) for s in args.seeds.split(",")):
                root = work / f"{family}-{seed}"
                man = make(family, root, args.per_class, seed)
                t = time.perf_counter()
                rep = check_dataset(root, less_likely=True)
                seconds = time.perf_counter() - t
                strong = type(rep)(rep.root, [i for i in rep.issues if i.likely], rep.summary)
                res = {"images": rep.summary["images"], "seconds": round(seconds, 1), "planted_flips": len(man["flips"]),
                       "reported": evaluate(man, strong), "with_less_likely": evaluate(man, rep)}
                results[f"{family}/{seed}"] = res
                print(family, seed, json.dumps(res), flush=True)
    text = json.dumps(results, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
