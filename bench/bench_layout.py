"""Benchmark: the same user commands on two checkouts of cnndesk, side by side in one run, to show
that a change of layout (modules moved into packages, cycles broken) costs nothing.

For each checkout, alternately (old, new, old, new, ...: the machine is shared and noisy, so the
ratio of medians taken in the same run is what counts):

1. start-up: ``cnndesk classify ONE.jpg`` (one answer from a warm export cache: imports, model
   lookup, one inference);
2. a folder: ``cnndesk classify FOLDER`` on generated photos (decode + ONNX Runtime);
3. quick training: ``cnndesk train DATA --mode quick`` on generated shapes, embeddings cached.

Both checkouts share one cache folder (warmed before timing), so only the code differs.

Usage: python bench/bench_layout.py --old /path/to/old/checkout [--new /path/to/new] [--repeats 3] [--photos 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "core"))


def photos(folder: Path, n: int) -> Path:
    from cnndesk.core.images.load import load_image

    samples = sorted((ROOT / "resources" / "samples").glob("*.jpg"))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = load_image(samples[i % len(samples)]).resize((1600, 1200)).rotate(i % 7)
        im.save(folder / f"p{i:03d}.jpg", quality=90)
    return folder


def run(tree: Path, args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "cnndesk", *args], cwd=tree, env={**env, "PYTHONPATH": str(tree)},
                         capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{tree}: cnndesk {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, type=Path, help="a checkout of the baseline")
    ap.add_argument("--new", type=Path, default=ROOT, help="the checkout to compare (default: this one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--photos", type=int, default=60)
    a = ap.parse_args()
    from shapes import make_dataset

    work = Path(tempfile.mkdtemp(prefix="cnndesk-bench-layout-"))
    env = {**os.environ, "CNNDESK_CACHE_DIR": str(work / "cache"), "CNNDESK_DATA_DIR": str(work / "data"),
           "QT_QPA_PLATFORM": "offscreen", "CNNDESK_NO_GPU": "1"}
    folder = photos(work / "photos", a.photos)
    one = next(folder.iterdir())
    data = make_dataset(work / "shapes", (40, 40, 40), size=128)
    trees = {"old": a.old.resolve(), "new": a.new.resolve()}
    cases = {
        "classify one image (start-up)": lambda t, i: ["classify", str(one)],
        f"classify a folder of {a.photos} photos": lambda t, i: ["classify", str(folder), "--format", "json"],
        "quick training, 120 images (embeddings cached)": lambda t, i: [
            "train", str(data), "--mode", "quick", "--out", str(work / f"m-{t}-{i}.safetensors")],
    }
    for label, tree in trees.items():  # warm: exports and embeddings into the shared cache
        for name, argv in cases.items():
            run(tree, argv(f"warm-{label}", name[:5]), env)
    times: dict[tuple[str, str], list[float]] = {}
    for i in range(a.repeats):
        for name, argv in cases.items():
            for label, tree in trees.items():
                times.setdefault((name, label), []).append(run(tree, argv(label, i), env))
    print("| case | old (s) | new (s) | new / old |\n|---|---|---|---|")
    for name in cases:
        old, new = statistics.median(times[(name, "old")]), statistics.median(times[(name, "new")])
        print(f"| {name} | {old:.2f} | {new:.2f} | {new / old:.2f} |")


if __name__ == "__main__":
    main()
