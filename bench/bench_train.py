"""Fine-tuning benchmark on the 2-core CPU, default model, 224 px.

quick: 300 generated images in 3 classes (256 px renders of shapes on cluttered backgrounds):
first run (embedding included; the one-off ONNX export of the feature extractor reported apart),
then a re-run with cached embeddings. Side by side, embedding the same images with PyTorch eager
(what quick mode would cost without ONNX Runtime).
full: seconds per epoch per 100 images, last 2 blocks trained, fp32 vs bfloat16 autocast (and the
validation accuracy each reaches), on a 100-image subset for 2 epochs.

Usage: python bench/bench_train.py
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "core"))


def main() -> None:
    from shapes import make_dataset

    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-bench-train-"))
    os.environ["CNNDESK_CACHE_DIR"] = str(tmp / "cache")  # cold cache: embeddings computed
    data = make_dataset(tmp / "shapes", (100, 100, 100), size=256)
    from cnndesk.core.models.registry import default_model
    from cnndesk.core.predict.embeddings import FeatureExtractor
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train

    t = time.perf_counter()
    FeatureExtractor(default_model())  # one-off: export + verify the feature extractor
    export_s = time.perf_counter() - t
    ds = scan(data)
    t = time.perf_counter()
    first = train(ds, TrainConfig(mode="quick"))
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    train(scan(data), TrainConfig(mode="quick"))
    again_s = time.perf_counter() - t
    print(f"quick, 300 images: first run {first_s:.2f} s (val acc {first.evaluation.accuracy:.1%}); "
          f"re-run with cached embeddings {again_s:.2f} s; one-off feature export {export_s:.1f} s")

    import numpy as np
    import torch

    from cnndesk.core.images.load import load_image
    from cnndesk.core.networks.surgery import feature_extractor
    from cnndesk.core.runtime.resolve import torch_model

    pre = default_model().preprocess
    paths = [p for p, _ in ds.train[:64]]
    x = np.stack([pre(load_image(p, min_side=256)) for p in paths])
    fx = FeatureExtractor(default_model())
    t = time.perf_counter()
    for i in range(0, len(x), 8):
        fx.embed_arrays(x[i:i + 8])
    ort_ms = (time.perf_counter() - t) / len(x) * 1000
    model, _ = feature_extractor(torch_model(default_model()), default_model().arch)
    model = model.eval().to(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(torch.from_numpy(x[:8]))
        t = time.perf_counter()
        for i in range(0, len(x), 8):
            model(torch.from_numpy(x[i:i + 8]).contiguous(memory_format=torch.channels_last))
    torch_ms = (time.perf_counter() - t) / len(x) * 1000
    print(f"embedding per image: ONNX Runtime {ort_ms:.1f} ms vs PyTorch eager {torch_ms:.1f} ms ({torch_ms / ort_ms:.1f}x)")

    sub = scan(data, val_split=0.2)
    sub.train = sub.train[::2][:100]  # balanced across the classes (scan lists them class by class)
    for bf16 in (False, True):
        t = time.perf_counter()
        m = train(sub, TrainConfig(mode="full", epochs=2, cpu_bf16=bf16, patience=5))  # noqa: E501
        per_epoch = np.mean([h.seconds for h in m.history])
        print(f"full, last 2 blocks, {'bf16 autocast' if bf16 else 'fp32'}: {per_epoch:.1f} s per epoch per 100 images "
              f"(incl. validation of {len(sub.val)}), val acc after 2 epochs {m.evaluation.accuracy:.1%}, total {time.perf_counter() - t:.1f} s")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
