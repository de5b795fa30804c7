"""Benchmark: default-model latency, folder throughput and draft-decoding agreement.

Side by side in one run (this machine is shared and noisy, so ratios matter more than absolutes):

1. model latency, batch 1, 224 px: ONNX Runtime (the app's CPU path) vs PyTorch eager;
2. end-to-end folder throughput, process start included: ``cnndesk classify FOLDER`` vs a naive
   per-image loop (PIL open, full decode, torchvision transform, PyTorch eval, batch 1, default
   threads) run as its own process;
3. JPEG decoding: full decode vs the loader's draft mode, and top-1 agreement between them.

Photos: 300 photo-sized (6-megapixel, 3000x2000) JPEGs synthesized from the bundled samples
(random crops, flips, colour jitter, sensor-like noise, quality 92), cached in bench/out/photos.

Usage: python bench/bench_classify.py [--photos 300] [--repeats 3] [--out docs/benchmarks.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnndesk.core.common.paths import sample_images  # noqa: E402
from cnndesk.core.images.load import load_image  # noqa: E402

OUT = ROOT / "bench" / "out"


def make_photos(n: int, folder: Path, size=(3000, 2000)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("*.jpg"))
    if len(existing) >= n:
        return existing[:n]
    rng = np.random.default_rng(42)
    sources = [Image.open(p).convert("RGB") for p in sample_images()]
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        w, h = src.size
        frac = rng.uniform(0.6, 1.0)
        cw, ch = int(w * frac), int(h * frac)
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        img = src.crop((x0, y0, x0 + cw, y0 + ch))
        if rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
        img = ImageEnhance.Color(img).enhance(rng.uniform(0.8, 1.2))
        portrait = rng.random() < 0.3
        target = (size[1], size[0]) if portrait else size
        img = img.resize(target, Image.Resampling.BICUBIC)
        arr = np.asarray(img, dtype=np.int16)
        arr = arr + rng.normal(0, 4, arr.shape).astype(np.int16)  # sensor-like noise
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        p = folder / f"photo_{i:04d}.jpg"
        img.save(p, quality=92)
        paths.append(p)
    return paths


def median_ms(fn, repeats: int, inner: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) * 1000 / inner)
    return statistics.median(times)


def bench_latency(repeats: int) -> dict:
    import torch

    from cnndesk.core.predict.classifier import Classifier

    clf = Classifier()  # ONNX Runtime, physical-core threads
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    for _ in range(10):
        clf.logits(x)
    ort_ms = median_ms(lambda: clf.logits(x), repeats, 100)
    naive = Classifier(backend="torch")  # eager, channels_last, inference_mode
    model = naive.engine.module
    xt = torch.from_numpy(x)
    with torch.inference_mode():
        for _ in range(5):
            model(xt)
        torch_ms = median_ms(lambda: model(xt), repeats, 20)
    return {"ort_ms": ort_ms, "torch_eager_ms": torch_ms, "ort_threads": clf.threads,
            "torch_threads": torch.get_num_threads()}


NAIVE = textwrap.dedent(
    """
    import sys, time, csv
    t0 = time.perf_counter()
    import torch, timm
    from PIL import Image
    from torchvision import transforms as T
    from cnndesk.core.models.registry import default_model
    from cnndesk.core.runtime.resolve import torch_model
    spec = default_model()
    model = torch_model(spec).eval()
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(spec.preprocess.mean, spec.preprocess.std)])
    w = csv.writer(sys.stdout)
    for p in sys.argv[1:]:
        img = Image.open(p).convert("RGB")
        with torch.no_grad():
            probs = model(tf(img).unsqueeze(0)).softmax(1)[0]
        i = int(probs.argmax())
        w.writerow([p, spec.labels[i], float(probs[i])])
    """
)


def run_timed(cmd: list[str], env=None) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed: {out.stderr[-2000:]}")
    return dt, out.stdout


def bench_folder(photos: list[Path], repeats: int) -> dict:
    folder = photos[0].parent
    ours, naive = [], []
    naive_n = len(photos)
    for _ in range(repeats):
        dt, out = run_timed([sys.executable, "-m", "cnndesk", "classify", str(folder), "-f", "csv", "-k", "1", "--quiet"])
        assert out.count("\n") == len(photos) + 1
        ours.append(len(photos) / dt)
        dt, out = run_timed([sys.executable, "-c", NAIVE, *map(str, photos[:naive_n])])
        assert out.count("\n") == naive_n
        naive.append(naive_n / dt)
    return {"ours_img_s": statistics.median(ours), "naive_img_s": statistics.median(naive),
            "photos": len(photos), "naive_photos": naive_n}


def bench_decode(photos: list[Path], repeats: int) -> dict:
    from cnndesk.core.images import load as images
    from cnndesk.core.predict.classifier import Classifier

    clf = Classifier()
    pre = clf.preprocess
    sub = photos[:30]
    full_ms = median_ms(lambda: [pre.resized_crop(load_image(p)) for p in sub], repeats, 1) / len(sub)
    draft_ms = median_ms(lambda: [pre.resized_crop(load_image(p, min_side=256)) for p in sub], repeats, 1) / len(sub)

    def top1(**kw):
        labels, scores = [], []
        for i in range(0, len(photos), 16):
            batch = np.stack([clf.prepare(load_image(p, **kw)) for p in photos[i:i + 16]])
            for pred in clf.predict_arrays(batch, 1):
                labels.append(pred.label)
                scores.append(pred.score)
        return labels, scores

    full, full_scores = top1()
    draft, _ = top1(min_side=256)
    saved = images.DRAFT_SAFETY
    images.DRAFT_SAFETY = 1.0  # draft straight to the model's input size: what we avoid
    try:
        naive_draft, _ = top1(min_side=256)
    finally:
        images.DRAFT_SAFETY = saved
    agree = sum(a == b for a, b in zip(full, draft, strict=False))
    agree1 = sum(a == b for a, b in zip(full, naive_draft, strict=False))
    return {"full_decode_ms": full_ms, "draft_decode_ms": draft_ms, "agree": agree,
            "agree_draft_1x": agree1, "n": len(photos)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT / "bench_classify.json")
    args = ap.parse_args()
    photos = make_photos(args.photos, OUT / "photos")
    results = {"cpu_count": os.cpu_count()}
    print("latency…", flush=True)
    results["latency"] = lat = bench_latency(args.repeats)
    print(f"  ORT {lat['ort_ms']:.2f} ms vs PyTorch eager {lat['torch_eager_ms']:.2f} ms "
          f"({lat['torch_eager_ms'] / lat['ort_ms']:.1f}x)", flush=True)
    print("decode + agreement…", flush=True)
    results["decode"] = dec = bench_decode(photos, args.repeats)
    print(f"  full {dec['full_decode_ms']:.1f} ms, draft {dec['draft_decode_ms']:.1f} ms per photo; "
          f"top-1 agreement {dec['agree']}/{dec['n']} (drafting to 1x: {dec['agree_draft_1x']}/{dec['n']})", flush=True)
    print("folder throughput (process start included)…", flush=True)
    results["folder"] = fol = bench_folder(photos, args.repeats)
    print(f"  cnndesk classify {fol['ours_img_s']:.1f} img/s vs naive loop {fol['naive_img_s']:.1f} img/s "
          f"({fol['ours_img_s'] / fol['naive_img_s']:.1f}x)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
