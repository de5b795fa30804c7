"""Classification speed of a full model with its novelty detector: this tree (the detector on the
fine-tuned network's multi-stage features, its "multi" ONNX export) against a checkout of the
previous code (``--base``, default /work/wt/base: the detector on the penultimate layer, the
"features" export), the same network weights, in one run.

One full model is trained with this tree on generated textures (bench/unknown_data.py); the "old"
file is the same network with the detector the previous code fitted (``trust.fit_novelty_heldout``
on the penultimate layer, stored under "novelty"), which is what that code reads. Each side runs
in its own process with its own code on the app's path (``Classifier``: ONNX Runtime on the CPU,
exported once before timing), alternating old/new ``--repeats`` times; reported: ms per image for
``Classifier.run`` (logits and novelty, one pass) in the app's preferred batch size, and the
ratio new/old of the medians and of the best runs (the least disturbed by other programs).

``--old late``: the "old" file is instead the same network with its late-stage detector alone (the
"multi" export and ``knn+maha+synth``, under "novelty2": the code before the early-stage detector,
issue 23), against the "multi_early" export with both detectors.

Usage: python bench/bench_novelty_speed.py [--base /work/wt/base] [--images 64] [--repeats 3] [--old late]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def worker(model: str, paths: list[str]) -> dict:
    from cnndesk.core.images.load import load_image
    from cnndesk.core.predict.classifier import Classifier

    clf = Classifier(model)
    pre = clf.preprocess
    x = np.stack([pre(load_image(p, min_side=pre.resize)) for p in paths])
    bs = clf.preferred_batch
    clf.run(x[:bs])  # warm
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for s in range(0, len(x), bs):
            clf.run(x[s:s + bs])
        best = min(best, time.perf_counter() - t)
    return {"ms_per_image": best * 1000 / len(x), "runtime": clf.engine.name, "batch": bs,
            "metric": clf.novelty.metric if clf.novelty is not None else None,
            "features": clf.novelty.features if clf.novelty is not None else None}


def make_models(tmp: Path, old_kind: str = "penultimate") -> tuple[Path, Path, list[str]]:
    import unknown_data

    from cnndesk.core.images.load import load_image
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train
    from cnndesk.core.trust import scores as trust

    data = unknown_data.make_user_set(tmp / "train", "textures", 30, seed=0)
    test = unknown_data.make_user_set(tmp / "test", "textures", 30, seed=1)
    ds = scan(data)
    model = train(ds, TrainConfig(mode="full", epochs=1, image_size=96, unfrozen_blocks=1, seed=0))
    new = model.save(tmp / "new")
    clf = Classifier(str(new))
    width = model.state_dict[model.head_keys[0]].shape[1]
    pre = clf.preprocess

    def pen(items):
        x = np.stack([pre(load_image(p, min_side=pre.resize)) for p, _ in items])
        return clf.engine.features.run(x)[:, -width:]

    if old_kind == "late":
        import copy

        late = copy.copy(model.novelty)
        late.early, late.lead, late.features = None, 0, "multi"
        return replace(model, novelty=late).save(tmp / "old"), new, sorted(str(p) for p in test.rglob("*.png"))
    old_nov, _ = trust.fit_novelty_heldout(pen(ds.train), pen(ds.val), features="penultimate")
    old = replace(model, novelty=old_nov).save(tmp / "old")
    return old, new, sorted(str(p) for p in test.rglob("*.png"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="/work/wt/base")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--old", default="penultimate", choices=("penultimate", "late"))
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1:])))
        return
    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-bench-novspeed-"))
    os.environ.setdefault("CNNDESK_CACHE_DIR", str(tmp / "cache"))
    os.environ["CNNDESK_DATA_DIR"] = str(tmp / "data")
    sys.path.insert(0, str(ROOT))
    old, new, test = make_models(tmp, args.old)
    rng = np.random.default_rng(0)
    paths = [test[i] for i in sorted(rng.choice(len(test), min(args.images, len(test)), replace=False))]
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for _ in range(args.repeats):
        for side, tree, model in (("old", args.base, old), ("new", str(ROOT), new)):
            env = {**os.environ, "PYTHONPATH": tree}
            out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(model), *paths],
                                 capture_output=True, text=True, env=env, cwd=tree, timeout=1200)
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            runs[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {s: float(np.median([r["ms_per_image"] for r in rs])) for s, rs in runs.items()}
    best = {s: float(min(r["ms_per_image"] for r in rs)) for s, rs in runs.items()}  # least disturbed by load
    res = {"old": args.old, "load": Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?",
           "images": len(paths), "runs": runs, "median_ms_per_image": med, "ratio_new_over_old": med["new"] / med["old"],
           "best_ms_per_image": best, "best_ratio_new_over_old": best["new"] / best["old"]}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
