"""Classification speed of a full model trained at the network's own 224 px (issue 23, seventh
step: the default since full training keeps the earlier stages pretrained) against the same kind
of full model at the images' own size (the rule before: 96 px for these textures) and against a
quick model of the same images (the app's common ONNX path: the base network at 224 px and a numpy
head), in one run.

Three models of generated textures (bench/unknown_data.py, 30 images a class) are trained with
this tree; each is then timed in its own process on the app's path (``Classifier``: ONNX Runtime on
the CPU, exported once before timing, logits and novelty in one pass), alternating, ``--repeats``
times (``bench_novelty_speed.worker``: best of 5 passes over ``--images`` images at the app's
preferred batch size). Reported: ms per image, median over the repeats, and the ratios to the
quick model.

Usage: python bench/bench_full_size_speed.py [--images 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def make_models(tmp: Path) -> tuple[dict[str, Path], list[str]]:
    import unknown_data

    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train

    data = unknown_data.make_user_set(tmp / "train", "textures", 30, seed=0)
    test = unknown_data.make_user_set(tmp / "test", "textures", 30, seed=1)
    ds = scan(data)
    models = {"quick": train(ds, TrainConfig(mode="quick", seed=0)).save(tmp / "quick")}
    for size in (96, 224):
        cfg = TrainConfig(mode="full", epochs=1, image_size=size, seed=0)
        models[f"full {size} px"] = train(ds, cfg).save(tmp / f"full{size}")
    return models, sorted(str(p) for p in test.rglob("*.png"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-bench-fullsize-"))
    os.environ.setdefault("CNNDESK_CACHE_DIR", str(tmp / "cache"))
    os.environ["CNNDESK_DATA_DIR"] = str(tmp / "data")
    sys.path.insert(0, str(ROOT))
    models, test = make_models(tmp)
    rng = np.random.default_rng(0)
    paths = [test[i] for i in sorted(rng.choice(len(test), min(args.images, len(test)), replace=False))]
    runs: dict[str, list[dict]] = {name: [] for name in models}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(args.repeats):
        for name, model in models.items():
            out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_novelty_speed.py"), "--worker", str(model),
                                  *paths], capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=1200)
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {name: float(np.median([r["ms_per_image"] for r in rs])) for name, rs in runs.items()}
    load = os.getloadavg()[0]
    for name, rs in runs.items():
        ms = ", ".join(f"{r['ms_per_image']:.2f}" for r in rs)
        print(f"{name:12s} {rs[0]['runtime']:>12s} features={rs[0]['features']}: {ms} ms/image; median "
              f"{med[name]:.2f} = {med[name] / med['quick']:.2f}x the quick model")
    print(json.dumps({"median_ms": med, "load_end": round(load, 2), "images": len(paths)}))


if __name__ == "__main__":
    main()
