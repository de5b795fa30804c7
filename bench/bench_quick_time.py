"""Quick training time with an empty embedding cache: this tree (novelty detector with synthesised
outliers: 60 training images read again, 180 extra images through the network) against a checkout
of the previous code (``--base``, default /work/wt/base), in one run, alternating, each side in its
own process with its own code. The one-off ONNX export of the base network is done first and not
counted (as in bench/bench_train.py); the embedding cache is emptied before every training.

Data: 10 classes of small grey digits (bench/unknown_data.py), ``--per-class`` images each
(default 120: 1,200 images).

Usage: python bench/bench_quick_time.py [--base /work/wt/base] [--per-class 120] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def worker(data: str) -> dict:
    from cnndesk.core.common.paths import user_cache_dir
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train

    shutil.rmtree(user_cache_dir() / "embeddings", ignore_errors=True)
    ds = scan(Path(data))
    t = time.perf_counter()
    model = train(ds, TrainConfig(mode="quick"))
    return {"seconds": time.perf_counter() - t, "images": len(ds.train) + len(ds.val),
            "metric": model.novelty.metric if model.novelty is not None else None,
            "val_accuracy": model.metrics().get("val_accuracy")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="/work/wt/base")
    ap.add_argument("--per-class", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    import unknown_data

    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-bench-quicktime-"))
    os.environ.setdefault("CNNDESK_CACHE_DIR", str(tmp / "cache"))
    os.environ["CNNDESK_DATA_DIR"] = str(tmp / "data")
    data = unknown_data.make_user_set(tmp / "digits", "digits", args.per_class, seed=0)
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    sides = (("old", args.base), ("new", str(ROOT)))
    for i in range(args.repeats + 1):  # the first round only makes the ONNX exports
        for side, tree in sides:
            env = {**os.environ, "PYTHONPATH": tree}
            out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(data)],
                                 capture_output=True, text=True, env=env, cwd=tree, timeout=1800)
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            if i:
                runs[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {s: float(np.median([r["seconds"] for r in rs])) for s, rs in runs.items()}
    print(json.dumps({"load": Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?",
                      "runs": runs, "median_s": med, "ratio_new_over_old": med["new"] / med["old"]}, indent=1))


if __name__ == "__main__":
    main()
