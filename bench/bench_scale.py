"""Scale-out benchmark on this 2-CPU machine, side by side in one run:

1. Ray Data (local instance, ray.init(num_cpus=2)) vs the local pipeline, same folder of photos,
   both in-process after warm-up: the overhead ratio of the Ray path (and Ray's start-up apart);
2. torchrun with 2 gloo processes vs a single process: seconds per epoch of full fine-tuning on
   the same dataset (each process gets one core).

Usage: python bench/bench_scale.py [--photos 120]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "core"))
sys.path.insert(0, str(ROOT / "bench"))


def epoch_seconds(cmd, env) -> tuple[float, float]:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-2000:])
    lines = [line for line in r.stderr.splitlines() if line.startswith("epoch ")]
    secs = [float(line.rsplit("(", 1)[1].split(" s")[0]) for line in lines]
    return sum(secs) / len(secs), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=120)
    args = ap.parse_args()
    from bench_classify import OUT, make_photos

    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.predict.stream import classify_stream

    photos = [str(p) for p in make_photos(300, OUT / "photos")[: args.photos]]
    clf = Classifier(threads=1)
    list(classify_stream(photos[:10], clf))
    t = time.perf_counter()
    n = sum(1 for _ in classify_stream(photos, clf))
    local = n / (time.perf_counter() - t)

    import ray

    from cnndesk.cluster.ray_classify import classify_with_ray

    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    start = time.perf_counter() - t
    out = Path(tempfile.mkdtemp()) / "r.parquet"
    classify_with_ray(photos[:10], str(out))  # warm-up: actors start, model loads
    t = time.perf_counter()
    classify_with_ray(photos, str(out))
    rayr = len(photos) / (time.perf_counter() - t)
    ray.shutdown()
    print(f"{len(photos)} x 6 MP photos: local pipeline {local:.1f} img/s, Ray Data {rayr:.1f} img/s "
          f"(overhead {local / rayr:.2f}x); ray.init {start:.1f} s")

    from shapes import make_dataset

    data = make_dataset(Path(tempfile.mkdtemp()) / "shapes", (40, 40, 40), size=256)
    env = {**os.environ}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["-m", "cnndesk", "train", str(data), "--mode", "full", "--epochs", "2", "--force"]
    single, single_total = epoch_seconds([sys.executable, *common, "--out", "/tmp/bench-1p"], env)
    ddp, ddp_total = epoch_seconds([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                                    f"--master_port={port}", *common, "--out", "/tmp/bench-2p"], env)
    print(f"full fine-tuning, 96 training images at 224 px: 1 process {single:.1f} s/epoch, "
          f"torchrun 2 processes {ddp:.1f} s/epoch ({single / ddp:.2f}x); wall {single_total:.0f} s vs {ddp_total:.0f} s")
    _ = json


if __name__ == "__main__":
    main()
