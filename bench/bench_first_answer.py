"""The first answer with an empty cache folder (issue 14 point 11): a new process, a new
CNNDESK_CACHE_DIR, the default model, one sample photo. Side by side: the old path (export and
verify ONNX first, then answer) and the app's path (answer with PyTorch, export in the
background). Prints seconds from process start to the first prediction and to ONNX Runtime.

    python bench/bench_first_answer.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from cnndesk.core.predict.classifier import Classifier
clf = Classifier(background_export=sys.argv[1] == "background")
p = clf.predict([sys.argv[2]])[0]
first = time.perf_counter() - t0
backend = clf.backend
clf.export_done.wait(300)
print(json.dumps({"first": first, "label": p.label, "backend_first": backend,
                  "onnx_ready": time.perf_counter() - t0, "backend_after": clf.backend}))
"""


def run(mode: str, resources: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="cnndesk-first-") as tmp:
        env = dict(os.environ, CNNDESK_CACHE_DIR=tmp, PYTHONPATH=str(ROOT), CNNDESK_NO_GPU="1")
        env.pop("CNNDESK_NO_BUNDLED_EXPORT", None)
        if resources:
            env["CNNDESK_RESOURCES"] = resources
        sample = str(ROOT / "resources" / "samples" / "coffee.jpg")
        out = subprocess.run([sys.executable, "-c", CHILD, "background" if mode == "prepared" else mode, sample], env=env, capture_output=True, text=True, timeout=600)
        if out.returncode:
            raise SystemExit(out.stderr[-2000:])
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print("load:", os.getloadavg())
    # "prepared": after `make run`'s set-up step (python -m cnndesk.prepare) in a copy of resources/
    import shutil

    res = Path(tempfile.mkdtemp(prefix="cnndesk-res-")) / "resources"
    shutil.copytree(ROOT / "resources", res, ignore=shutil.ignore_patterns("onnx"))
    env = dict(os.environ, CNNDESK_RESOURCES=str(res), PYTHONPATH=str(ROOT), CNNDESK_NO_GPU="1")
    subprocess.run([sys.executable, "-m", "cnndesk.prepare"], env=env, check=True, timeout=900)
    results: dict[str, list[dict]] = {"blocking": [], "background": [], "prepared": []}
    for _ in range(args.repeats):
        for mode in results:  # interleaved, so all see the same machine load
            r = run(mode, str(res) if mode == "prepared" else None)
            results[mode].append(r)
            print(mode, r, flush=True)
    for mode, rs in results.items():
        print(f"{mode}: first answer median {statistics.median(r['first'] for r in rs):.2f} s "
              f"(runs {', '.join(format(r['first'], '.2f') for r in rs)}), ONNX ready "
              f"{statistics.median(r['onnx_ready'] for r in rs):.2f} s, label {rs[0]['label']}, "
              f"answered by {rs[0]['backend_first']} then {rs[0]['backend_after']}")
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
