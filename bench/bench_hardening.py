"""Peak memory (RSS) of hostile-but-legal images, before and after the hardening (issue 13).

Each case runs in a fresh Python process that prints its own peak RSS (``ru_maxrss``); the same
case runs with the baseline code (``--baseline``, e.g. /work/main at the commit before the fix)
and with this checkout, one after the other, so the numbers compare on one machine. The images
are generated in a temporary folder (never kept in the repository).

    PYTHONPATH=. python bench/bench_hardening.py --baseline /path/to/old/checkout
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

LOAD = """
import sys
def hwm():  # peak RSS of this process (ru_maxrss would carry over the parent's peak across exec)
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
from cnndesk.core.images.load import load_image
from cnndesk.core.models.registry import default_model
pre = default_model().preprocess
try:
    x = pre(load_image(sys.argv[1], min_side=pre.resize))
except Exception as exc:  # the new code refuses what it cannot decode within its budget
    print("refused:", exc, file=sys.stderr)
print(hwm())
"""

FOLDER = """
import sys
def hwm():  # peak RSS of this process (ru_maxrss would carry over the parent's peak across exec)
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
import numpy as np
from cnndesk.core.predict.classifier import top_k
from cnndesk.core.models.registry import default_model
from cnndesk.core.predict.stream import classify_stream, expand_paths

class Decoder:  # the real decode + preprocess; a stand-in model (this measures decoding)
    preprocess = default_model().preprocess
    preferred_batch = 2
    def prepare(self, img):
        return self.preprocess(img)
    def predict_arrays(self, batch, k):
        return top_k(np.full((len(batch), 3), 1 / 3, np.float32), ["a", "b", "c"], k)

rows = list(classify_stream(expand_paths([sys.argv[1]]), Decoder(), decode_workers=2))
assert all(r.ok for r in rows), [r.error for r in rows]
print(hwm())
"""

EXPLAIN = """
import sys
def hwm():  # peak RSS of this process (ru_maxrss would carry over the parent's peak across exec)
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
from cnndesk.cli import main
rc = main(["explain", sys.argv[1], "--out", sys.argv[2], "--force"] + sys.argv[3:])
assert rc == 0, rc
print(hwm())
"""


def make_images(folder: Path, big_side: int, n_folder: int) -> dict[str, Path]:
    import numpy as np
    from PIL import Image

    out = {}
    for key, side in (("webp", big_side), ("webp100", 10000)):
        webp = folder / f"{key}.webp"
        Image.new("RGB", (side, side), (200, 30, 40)).save(webp, "WEBP", lossless=True, quality=0, method=0)
        out[key] = webp
    many = folder / "many"
    many.mkdir()
    for i in range(n_folder):
        os.link(out["webp100"], many / f"b{i}.webp")
    out["folder"] = many
    # a photo-like 24-megapixel JPEG (smooth gradients + noise)
    h, w = 4000, 6000
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(0)
    rgb = np.stack([xx / w * 255, yy / h * 255, (xx + yy) / (w + h) * 255], -1)
    rgb += rng.normal(0, 8, rgb.shape).astype(np.float32)
    jpg = folder / "photo24.jpg"
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(jpg, "JPEG", quality=90)
    out["photo"] = jpg
    png = folder / "big.png"
    Image.new("RGB", (big_side, big_side), (10, 200, 30)).save(png, "PNG", compress_level=1)
    out["png"] = png
    rgba = folder / "rgba100.png"  # transparency: converted to RGB on white (full-size copies)
    Image.new("RGBA", (10000, 10000), (10, 200, 30, 128)).save(rgba, "PNG", compress_level=1)
    out["rgba"] = rgba
    many_png = folder / "many_png"
    many_png.mkdir()
    for i in range(n_folder):
        os.link(rgba, many_png / f"p{i}.png")
    out["folder_png"] = many_png
    return out


def image_paths(folder: Path) -> dict[str, Path]:
    return {"webp": folder / "webp.webp", "webp100": folder / "webp100.webp", "folder": folder / "many",
            "photo": folder / "photo24.jpg", "png": folder / "big.png", "rgba": folder / "rgba100.png",
            "folder_png": folder / "many_png"}


def run(code: str, root: Path, args: list[str], env: dict) -> tuple[float, float]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       env={**os.environ, **env, "PYTHONPATH": str(root)}, timeout=1800,
                       cwd=str(root))  # `python -c` puts the cwd first on sys.path
    if p.returncode != 0:
        raise SystemExit(f"failed ({root}): {p.stderr[-2000:]}")
    refused = [ln for ln in p.stderr.splitlines() if ln.startswith("refused:")]
    return int(p.stdout.split()[-1]) / 1024, time.perf_counter() - t0, (refused[0][9:120] if refused else "")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", required=True, help="a checkout of the code before the fix")
    ap.add_argument("--side", type=int, default=13000, help="side of the big square images (13000: 169 MP)")
    ap.add_argument("--folder", type=int, default=6, help="big images in the folder case")
    ap.add_argument("--skip-baseline-png", action="store_true", default=True,
                    help="do not run the baseline on the 169-MP PNG explain (about 14 GB)")
    args = ap.parse_args()
    env = {"CNNDESK_CACHE_DIR": os.environ.get("CNNDESK_CACHE_DIR", str(Path(tempfile.gettempdir()) / "cnndesk-bench-cache"))}
    results = []
    with tempfile.TemporaryDirectory(prefix="cnndesk-harden-bench-") as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, __file__, "--make", str(tmp), str(args.side), str(args.folder)], check=True)
        imgs = image_paths(tmp)
        mp = args.side * args.side / 1e6
        cases = [
            (f"load one {mp:.0f}-MP WebP ({imgs['webp'].stat().st_size} bytes) for classification", LOAD, [str(imgs["webp"])], True),
            (f"load one 100-MP WebP ({imgs['webp100'].stat().st_size} bytes) for classification", LOAD, [str(imgs["webp100"])], True),
            (f"folder of {args.folder} 100-MP WebPs, 2 decode threads", FOLDER, [str(imgs["folder"])], True),
            ("load one 100-MP RGBA PNG for classification", LOAD, [str(imgs["rgba"])], True),
            (f"folder of {args.folder} 100-MP RGBA PNGs, 2 decode threads", FOLDER, [str(imgs["folder_png"])], True),
            ("explain (occlusion, torch-free) a 24-MP photo", EXPLAIN, [str(imgs["photo"]), str(tmp / "o.png"), "--method", "occlusion"], True),
            ("explain (Grad-CAM) a 24-MP photo", EXPLAIN, [str(imgs["photo"]), str(tmp / "o.png")], True),
            (f"explain (occlusion) a {mp:.0f}-MP PNG", EXPLAIN, [str(imgs["png"]), str(tmp / "o2.png"), "--method", "occlusion"],
             not args.skip_baseline_png),
        ]
        for name, code, cargs, with_base in cases:
            base = run(code, Path(args.baseline), cargs, env) if with_base else (None, None, "")
            new = run(code, HERE, cargs, env)
            row = {"case": name, "baseline_mb": base[0], "baseline_s": base[1], "baseline_note": base[2],
                   "new_mb": new[0], "new_s": new[1], "new_note": new[2]}
            results.append(row)
            print(json.dumps(row), flush=True)
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--make"]:
        make_images(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
