"""Experiment (issue 23 item 2, fine-grained look-alike classes): capture what the doctor's label
check sees on folders with 5 % planted flips (``check_dataset`` end to end, its own embeddings and
neighbours), so that rules can be compared offline on the same inputs.

``capture``: for each family / seed / size, run ``check_dataset`` once and save, per checked image,
quick training's features, the folder's label, the true label, the doctor's neighbours (indices
into the checked rows), and the out-of-fold probabilities of the committed check. ``--time``
measures check_dataset cold (embeddings cached), old vs new rule, in one run.

``e2e``: ``check_dataset`` itself with the old rule (VERSION 7: the folder's class <= 0.2, five
folds of 100 epochs for every set), the first step of the new one ("mid": <= 0.1; ten folds of 200
epochs where the median class has fewer than 50 images) and the new one (also: the folder's class
<= 0.05 and none of the 5 neighbours in it), on the same folders in one run; reported label issues vs
planted flips, and the time of each check with the embeddings cached (alternating order).
``--clean``: the same folders without flips (the textures family at 30 per class: the new user's
clean folder).

Usage: python bench/exp_doctor_pairs.py capture --families objects --seeds 0,1 --per-class 30 --out DIR
       python bench/exp_doctor_pairs.py e2e --seeds 2,3 --per-class 30,0 --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench_doctor_labels import make  # noqa: E402
from exp_doctor_knn import make_label_family  # noqa: E402


def folder(family: str, seed: int, work: Path, per_class: int | None, clean: bool = False) -> tuple[Path, set[str], dict]:
    root = work / f"{family}-{seed}-{per_class or 'd'}{'-clean' if clean else ''}"
    saved = work / f"{root.name}-manifest.json"
    if saved.exists():
        man = json.loads(saved.read_text())
    elif family in ("mixed", "digits"):
        man = make(family, root, per_class or 100, seed)
    else:
        man = make_label_family(root, family, seed, per_class, 0.0 if clean else 0.05)
    if not saved.exists():
        saved.write_text(json.dumps({"root": man["root"], "flips": man["flips"]}))
    flips = {os.path.realpath(os.path.join(man["root"], f["path"])): f["true"] for f in man["flips"]}
    return root, flips, man


def capture(family: str, seed: int, work: Path, per_class: int | None, out_dir: Path) -> dict:
    from cnndesk.core.doctor import check as doctor_check
    from cnndesk.core.doctor import label_check as stats

    root, flips, _ = folder(family, seed, work, per_class)
    seen = {}
    orig_li, orig_se, orig_out = stats.label_issues, stats.strong_evidence, stats.outliers

    def li(x, y, n_classes, cancel=None, quick=False):
        seen["x"] = (x.take(np.arange(len(x))) if isinstance(x, stats.Rows) else np.asarray(x)).astype(np.float32)
        return orig_li(x, y, n_classes, cancel, quick)

    def se(probs, y, neighbours=None):
        seen["probs"], seen["nbr"] = np.asarray(probs, np.float32), np.asarray(neighbours, np.int32)
        return orig_se(probs, y, neighbours)

    def out(z, k=5, spread=4.5, cancel=None, nearest=None):
        seen["emb"], seen["nbr_d"] = np.asarray(z, np.float32), np.asarray(nearest[0], np.float32)
        return orig_out(z, k, spread, cancel, nearest)

    stats.label_issues, stats.strong_evidence, stats.outliers = li, se, out
    version = doctor_check.VERSION
    doctor_check.VERSION = f"{version}-capture"
    try:
        rep = doctor_check.check_dataset(root, less_likely=True)
    finally:
        stats.label_issues, stats.strong_evidence, stats.outliers = orig_li, orig_se, orig_out
        doctor_check.VERSION = version
    files = doctor_check.collect(root)  # every generated image is readable: the checked rows in this order
    seen["paths"] = [p for p, _, _ in files.items]
    seen["labels"] = [c for _, _, c in files.items]
    seen["classes"] = list(files.classes)
    assert len(seen["paths"]) == len(seen["x"]) == len(seen["probs"])
    cls = {c: k for k, c in enumerate(seen["classes"])}
    real = [os.path.realpath(p) for p in seen["paths"]]
    y = np.array([cls[c] for c in seen["labels"]])
    true = np.array([cls[flips.get(r, c)] for r, c in zip(real, seen["labels"], strict=True)])
    strays = {os.path.realpath(i.path) for i in rep.issues if i.kind == "outlier"}
    stray = np.array([r in strays for r in real])
    reported = {os.path.realpath(i.path) for i in rep.issues if i.kind == "label" and i.likely}
    rep_mask = np.array([r in reported for r in real])
    name = f"{family}-{seed}-{per_class or 'd'}"
    np.savez_compressed(out_dir / f"{name}.npz", x=seen["x"], y=y, true=true, nbr=seen["nbr"], nbr_d=seen["nbr_d"],
                        emb=seen["emb"], probs=seen["probs"], stray=stray, reported=rep_mask,
                        classes=np.array(seen["classes"]), paths=np.array(real))
    tp = int((rep_mask & (y != true)).sum())
    return {"set": name, "images": len(y), "flips": int((y != true).sum()), "reported": int(rep_mask.sum()), "true": tp}


OLD = {"GIVEN_AT_MOST": 0.2, "SMALL_CLASS": 0, "NOT_OWN_AT_MOST": -1.0}  # check VERSION 7
MID = {"NOT_OWN_AT_MOST": -1.0}  # the first step of VERSION 8: the small-class head and <= 0.1 only


def e2e(family: str, seed: int, work: Path, per_class: int | None, clean: bool = False) -> dict:
    """Old and new rule on one folder: reported label issues vs planted flips, and times."""
    import time

    from cnndesk.core.doctor import check as doctor_check
    from cnndesk.core.doctor import label_check as stats

    root, flips, _ = folder(family, seed, work, per_class, clean)
    new = {k: getattr(stats, k) for k in OLD}
    version = doctor_check.VERSION
    token = f"{os.getpid()}-{time.time()}"

    def one(name: str, values: dict, tag: str):
        for k, v in values.items():
            setattr(stats, k, v)
        doctor_check.VERSION = f"{version}-exp-{name}-{tag}-{token}"  # no memo reuse
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            rep = doctor_check.check_dataset(root, less_likely=True)
            return rep, time.perf_counter() - t0, time.process_time() - c0
        finally:
            for k, v in new.items():
                setattr(stats, k, v)
            doctor_check.VERSION = version

    one("old", OLD, "warm")  # embeddings and thumbnails into the cache
    out = {"set": f"{family}-{seed}-{per_class or 'd'}{'-clean' if clean else ''}", "flips": len(flips)}
    mid = {**new, **MID}
    order = [("old", OLD), ("mid", mid), ("new", new)]
    if seed % 2:
        order.reverse()
    for name, values in order:
        rep, wall, cpu = one(name, values, "timed")
        shown = [i for i in rep.issues if i.kind == "label" and i.likely]
        tp = sum(os.path.realpath(i.path) in flips for i in shown)
        wrong = [(i.label, i.suggested, round(1 - i.score, 3)) for i in shown if os.path.realpath(i.path) not in flips]
        out[name] = {"reported": len(shown), "true": tp, "wrongly": len(shown) - tp,
                     "recall": round(tp / max(len(flips), 1), 3) if flips else None,
                     "precision": round(tp / len(shown), 3) if shown else None,
                     "less_likely": sum(i.kind == "label" and not i.likely for i in rep.issues),
                     "images": rep.summary["images"], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                     "wrong": wrong}
    return out


def head_time(repeats: int = 3) -> list[dict]:
    """CPU seconds of the label check's held-out head (quick_oof_probs), old vs new constants,
    alternating, on synthetic features of quick training's length (2,528 values): 1,500 images as
    50 classes of 30 (the new rule's most expensive case below the big-set path) and 10 of 150."""
    import time

    from cnndesk.core.doctor import label_check as stats

    new = {k: getattr(stats, k) for k in OLD}
    rng = np.random.default_rng(0)
    out = []
    for n_classes, per in ((50, 30), (10, 150), (10, 30)):
        y = np.repeat(np.arange(n_classes), per)
        centres = np.maximum(rng.normal(0, 1, (n_classes, 2528)), 0)
        x = (centres[y] + np.abs(rng.normal(0, 1, (len(y), 2528)))).astype(np.float32)
        times = {"old": [], "new": []}
        for _ in range(repeats):
            for name, values in (("old", OLD), ("new", new)):
                for k, v in values.items():
                    setattr(stats, k, v)
                try:
                    c0 = time.process_time()
                    stats.quick_oof_probs(x, y, n_classes)
                    times[name].append(time.process_time() - c0)
                finally:
                    for k, v in new.items():
                        setattr(stats, k, v)
        out.append({"images": len(y), "classes": n_classes, "old_cpu_s": [round(t, 2) for t in times["old"]],
                    "new_cpu_s": [round(t, 2) for t in times["new"]]})
        print(json.dumps(out[-1]), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["capture", "e2e", "head-time"])
    ap.add_argument("--clean", action="store_true", help="e2e: the folders without flips")
    ap.add_argument("--work", default=None, help="reuse this work folder (its folders and embedding cache)")
    ap.add_argument("--families", default="mixed,digits,textures,shapes,objects,symbols")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--per-class", default="30,0", help="0: the family's default size")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.what == "head-time":
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # as check_dataset runs the analysis
            head_time()
        return
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cnndesk-exp-pairs-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CNNDESK_CACHE_DIR", str(work / "cache"))
    os.environ["CNNDESK_DATA_DIR"] = str(work / "data")
    for pc in (int(s) or None for s in args.per_class.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            for family in args.families.split(","):
                name = f"{family}-{seed}-{pc or 'd'}"
                if args.what == "e2e":
                    res = e2e(family, seed, work, pc, args.clean)
                    with open(out / "e2e.jsonl", "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(res) + "\n")
                    print(json.dumps(res), flush=True)
                    continue
                if (out / f"{name}.npz").exists():
                    continue
                print(json.dumps(capture(family, seed, work, pc, out)), flush=True)


if __name__ == "__main__":
    main()
