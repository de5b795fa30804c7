"""Benchmark: a whole video file into a timeline, end to end (process start included).

Side by side in one run, alternating, on generated h264 clips (this machine is shared and noisy:
ratios matter more than absolutes):

* ``cnndesk classify CLIP -f json`` (decode thread, only sampled frames converted, batched ONNX
  Runtime, boundaries refined at cuts; default ``--every 0.5``);
* a naive single-thread loop as its own process: PyAV decodes every frame (one thread), one frame
  every 0.25 s is converted (``to_image``) and classified at batch 1 (ONNX Runtime, 1 thread).

Clips (cached in bench/out/video): 640x360 30 fps, 60 s, 15 segments of 4 s cycling three still
scenes (coffee, rocket, grace_hopper) with a slow zoom and noise — the shape of the held-out
target; and 1920x1080 30 fps, 20 s, 5 such segments. The app's segments are checked against the
truth: right labels in the right order, every boundary within 0.5 s.

Usage: python bench/bench_video.py [--repeats 3] [--skip-1080p]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "core"))

from videos import make_scene_clip  # noqa: E402

OUT = ROOT / "bench" / "out" / "video"
SCENES = ["coffee", "rocket", "grace_hopper"]

NAIVE = r"""
import sys, time, json
import av, numpy as np
from cnndesk.core.predict.classifier import Classifier
clf = Classifier(threads=1)
labels = []
with av.open(sys.argv[1]) as c:
    s = c.streams.video[0]
    s.thread_count = 1
    next_t = 0.0
    for frame in c.decode(s):
        t = float(frame.pts * frame.time_base)
        if t + 1e-6 < next_t:
            continue
        next_t += 0.25
        x = clf.prepare(frame.to_image())[None]
        labels.append((t, clf.predict_arrays(x, 1)[0].label))
print(json.dumps(labels))
"""


def clip(name: str, size, seconds_each: float, n: int) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_suffix(".part.mp4")
        make_scene_clip(tmp, (SCENES * n)[:n], seconds=seconds_each, fps=30, size=size, seed=7)
        tmp.rename(path)
        print(f"generated {name} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return path


CPU: dict[str, list[float]] = {}


def run(cmd, key: str = "") -> tuple[float, str]:
    """Wall seconds and stdout; the child's CPU seconds (user + system) go to CPU[key]."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(key, []).append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if out.returncode != 0:
        raise SystemExit(f"{cmd} failed: {out.stderr[-2000:]}")
    return dt, out.stdout


def check(segments, n: int, seconds_each: float, truth_labels) -> dict:
    ok_order = [s["label"] for s in segments] == truth_labels
    worst = max((abs(s["start"] - k * seconds_each) for k, s in enumerate(segments)), default=None) if ok_order else None
    return {"segments": len(segments), "expected": n, "order_ok": ok_order,
            "worst_boundary_s": None if worst is None else round(worst, 3)}


def bench(path: Path, n: int, seconds_each: float, repeats: int) -> dict:
    duration = n * seconds_each
    app_cmd = [sys.executable, "-m", "cnndesk", "classify", str(path), "-f", "json", "-q"]
    naive_cmd = [sys.executable, "-c", NAIVE, str(path)]
    run(app_cmd)  # warm-up: model export cache, file cache
    app, naive, stdout = [], [], ""
    CPU.clear()
    for _ in range(repeats):
        dt, stdout = run(app_cmd, "app")
        app.append(dt)
        naive.append(run(naive_cmd, "naive")[0])
    row = json.loads(stdout)[0]
    # the truth: the label the naive loop gives most often inside each scene's middle second
    _, naive_out = run(naive_cmd)
    samples = json.loads(naive_out)
    truth = []
    for k in range(n):
        mid = [lab for t, lab in samples if k * seconds_each + 1 <= t < (k + 1) * seconds_each - 1]
        truth.append(max(set(mid), key=mid.count))
    a, b = statistics.median(app), statistics.median(naive)
    return {"clip": path.name, "seconds": duration, "app_s": round(a, 2), "naive_s": round(b, 2),
            "app_x_realtime": round(duration / a, 1), "naive_x_realtime": round(duration / b, 1),
            "speedup": round(b / a, 2), "app_cpu_s": round(statistics.median(CPU["app"]), 2),
            "naive_cpu_s": round(statistics.median(CPU["naive"]), 2), **check(row["segments"], n, seconds_each, truth),
            "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-1080p", action="store_true")
    args = ap.parse_args()
    jobs = [(clip("scenes-640x360-60s.mp4", (640, 360), 4.0, 15), 15, 4.0)]
    if not args.skip_1080p:
        jobs.append((clip("scenes-1920x1080-20s.mp4", (1920, 1080), 4.0, 5), 5, 4.0))
    print(f"load before: {os.getloadavg()}", file=sys.stderr)
    results = [bench(p, n, s, args.repeats) for p, n, s in jobs]
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
