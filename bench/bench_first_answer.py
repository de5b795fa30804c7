"""The first answer with an empty cache folder (issue 14 point 11, issue 24 point 5): a new
process, a new CNNDESK_CACHE_DIR, the default model, one sample photo, seconds from process start
to the first prediction (and to ONNX Runtime taking over).

Set-ups: *unprepared* is a plain `pip install .` with `python -m cnndesk.prepare` skipped (the
resources without a verified export: a copy of resources/ without onnx/); *prepared* is every
other set-up (make run, make test, the wheel, the bundles carry the export). Paths: the app's
(``Classifier(background_export=True)``, in-process), the CLI's (`cnndesk classify one.jpg`, time
to its answer on stdout) and the old blocking path (export and verify first, then answer).
``--old DIR``: the same runs with another checkout's code (side by side, interleaved).

    python bench/bench_first_answer.py [--repeats 2] [--old /work/wt/base]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = str(ROOT / "resources" / "samples" / "coffee.jpg")
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


def _env(code: Path, resources: Path, cache: str) -> dict:
    env = dict(os.environ, CNNDESK_CACHE_DIR=cache, PYTHONPATH=str(code), CNNDESK_NO_GPU="1",
               CNNDESK_RESOURCES=str(resources))
    env.pop("CNNDESK_NO_BUNDLED_EXPORT", None)
    return env


def run_app(code: Path, resources: Path, mode: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="cnndesk-first-") as tmp:
        out = subprocess.run([sys.executable, "-c", CHILD, mode, SAMPLE], env=_env(code, resources, tmp),
                             cwd=tmp, capture_output=True, text=True, timeout=900)
        if out.returncode:
            raise SystemExit(out.stderr[-2000:])
        return json.loads(out.stdout.strip().splitlines()[-1])


def run_cli(code: Path, resources: Path) -> dict:
    """Seconds to the CLI's answer on stdout, and to the process's end (it finishes the export)."""
    with tempfile.TemporaryDirectory(prefix="cnndesk-first-") as tmp:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "cnndesk", "classify", SAMPLE, "--format", "csv"],
                                env=_env(code, resources, tmp), cwd=tmp, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        first, label = None, None
        for line in proc.stdout:
            if line.startswith(SAMPLE) and first is None:
                first, label = time.perf_counter() - t0, line.split(",")[1]
        proc.wait(900)
        return {"first": first, "label": label, "exit": time.perf_counter() - t0, "rc": proc.returncode}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--old", type=Path, help="another checkout to run side by side (the baseline)")
    args = ap.parse_args()
    print("load:", os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="cnndesk-res-"))
    bare = work / "unprepared"
    shutil.copytree(ROOT / "resources", bare, ignore=shutil.ignore_patterns("onnx"))
    prepared = work / "prepared"
    shutil.copytree(bare, prepared)
    subprocess.run([sys.executable, "-m", "cnndesk.prepare"], env=_env(ROOT, prepared, str(work / "c")),
                   check=True, timeout=900)
    codes = {"new": ROOT} | ({"old": args.old} if args.old else {})
    cases = {}
    for name, code in codes.items():
        cases[f"{name} app, unprepared"] = lambda c=code: run_app(c, bare, "background")
        cases[f"{name} CLI, unprepared"] = lambda c=code: run_cli(c, bare)
        cases[f"{name} app, prepared"] = lambda c=code: run_app(c, prepared, "background")
    cases["blocking export first, unprepared"] = lambda: run_app(ROOT, bare, "blocking")
    results: dict[str, list[dict]] = {k: [] for k in cases}
    for _ in range(args.repeats):
        for name, case in cases.items():  # interleaved, so all see the same machine load
            r = case()
            results[name].append(r)
            print(name, r, "load", round(os.getloadavg()[0], 1), flush=True)
    print()
    for name, rs in results.items():
        firsts = [r["first"] for r in rs]
        extra = (f", ONNX ready {statistics.median(r['onnx_ready'] for r in rs):.1f} s "
                 f"({rs[0]['backend_first']} then {rs[0]['backend_after']})" if "onnx_ready" in rs[0]
                 else f", process ends {statistics.median(r['exit'] for r in rs):.1f} s")
        print(f"{name}: first answer median {statistics.median(firsts):.2f} s "
              f"(runs {', '.join(format(f, '.2f') for f in firsts)}){extra}, {rs[0]['label']}")
    print("load:", os.getloadavg())
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
