"""Benchmark: the folder job against this machine's ceiling, old vs new in the same run.

What it measures, per repeat, interleaved (this machine is shared; say its load with the numbers):

* ``D`` decode-only throughput: the folder's photos through the stream's own loader (draft JPEG
  decoding + the model's resize/crop/normalise) on as many threads as physical cores, no model;
* ``I`` inference-only throughput: the preprocessed arrays through ONNX Runtime at the stream's
  batch size, the better of 1 thread (times the cores) and all cores' threads;
* the ceiling: a pipeline that keeps every core busy with the two stages can do no better than
  ``1 / (1/D + 1/I)`` images/s (each image costs ``d/cores + i/cores`` seconds of the whole CPU);
* the folder stream in-process (``classify_stream``, the CLI's settings: one ONNX Runtime thread,
  decoders on every core): the baseline revision's ``stream.py`` and this tree's, same classifier;
* ``cnndesk classify FOLDER -f csv`` end to end (process start included): the baseline revision
  (a ``git archive`` of it) and this tree, as separate processes;
* that both give the same answers (top-1 label and score of every photo);
* load-independent companions: CPU time per image of each job against decode + inference alone
  (``work_efficiency``: 1.0 = no overhead) and the share of both cores each job kept busy
  (``busy``: CPU seconds / (wall seconds x cores); on a loaded machine other programs take the rest).

Usage: python bench/bench_folder_ceiling.py [--photos 300] [--repeats 3] [--baseline b973217]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_classify import OUT, make_photos  # noqa: E402

from cnndesk.core.common import system  # noqa: E402
from cnndesk.core.images.load import load_image  # noqa: E402


def baseline_tree(rev: str) -> Path:
    dest = OUT / f"baseline-{rev}"
    if not (dest / "cnndesk").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "cnndesk"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", default="b973217")
    ap.add_argument("--out", type=Path, default=OUT / "bench_folder_ceiling.json")
    args = ap.parse_args()
    from cnndesk.core.predict import stream as new_stream
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.runtime.export_cache import make_session

    folder = OUT / f"folder-{args.photos}"  # exactly these photos (hard links), for the CLI runs
    folder.mkdir(parents=True, exist_ok=True)
    for p in make_photos(args.photos, OUT / "photos"):
        if not (folder / p.name).exists():
            os.link(p, folder / p.name)
    photos = sorted(str(p) for p in folder.glob("*.jpg"))
    n = len(photos)
    base = baseline_tree(args.baseline)
    old_stream = load_module(base / "cnndesk/core/predict/stream.py", "baseline_stream")
    cores = system.physical_cores()
    clf = Classifier(threads=1)  # as `cnndesk classify FOLDER` loads it
    batch = clf.preferred_batch
    prep = clf.preprocess

    def decode(p):
        return clf.prepare(load_image(p, min_side=prep.resize))

    arrays = np.stack([decode(p) for p in photos[:32]])
    sessions = {t: make_session(clf.engine.onnx_path, t) for t in (1, cores)}
    name = sessions[1].get_inputs()[0].name

    def infer_all(t):
        s = sessions[t]
        for _ in range(max(1, n // len(arrays))):
            for i in range(0, len(arrays), batch):
                s.run(None, {name: arrays[i:i + batch]})
        return max(1, n // len(arrays)) * len(arrays)

    def decode_all():
        with ThreadPoolExecutor(cores) as ex:
            return sum(1 for _ in ex.map(decode, photos))

    def run_stream(mod):
        return [(r.path, r.prediction.label, round(r.prediction.score, 5)) for r in mod.classify_stream(photos, clf, top_k=1)]

    env_new = {**os.environ, "PYTHONPATH": str(ROOT)}
    env_old = {**os.environ, "PYTHONPATH": str(base)}

    def cli(env):
        out = subprocess.run([sys.executable, "-m", "cnndesk", "classify", str(folder), "-f", "csv",
                              "-k", "1", "--quiet"], capture_output=True, text=True, env=env, check=True)
        return out.stdout

    rows: dict[str, list[float]] = {k: [] for k in ("D", "I1", "Iall", "old", "new", "cli_old", "cli_new",
                                                    "cpu_decode_ms", "cpu_infer_ms", "cpu_old_ms", "cpu_new_ms",
                                                    "busy_old", "busy_new", "cli_busy_old", "cli_busy_new")}
    loads = [os.getloadavg()[0]]
    answers = {}
    for r in range(args.repeats):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        dt, cpu, k = timed(decode_all)
        rows["D"].append(k / dt)
        rows["cpu_decode_ms"].append(1000 * cpu / k)
        for t, key in ((1, "I1"), (cores, "Iall")):
            dt, cpu, k = timed(lambda t=t: infer_all(t))
            rows[key].append(k / dt * (cores if t == 1 else 1))
            if t == 1:
                rows["cpu_infer_ms"].append(1000 * cpu / k)
        for which in order:
            dt, cpu, ans = timed(lambda w=which: run_stream(old_stream if w == "old" else new_stream))
            rows[which].append(n / dt)
            rows[f"cpu_{which}_ms"].append(1000 * cpu / n)
            rows[f"busy_{which}"].append(cpu / (dt * cores))  # share of both cores this job kept busy
            answers[which] = ans
        for which in order:
            c0 = os.times()
            dt, _, out = timed(lambda w=which: cli(env_old if w == "old" else env_new))
            c1 = os.times()
            rows[f"cli_{which}"].append(n / dt)
            child = (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system)
            rows[f"cli_busy_{which}"].append(child / (dt * cores))
            answers[f"cli_{which}"] = out
        loads.append(os.getloadavg()[0])
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rows.items()), flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    inf = max(med["I1"], med["Iall"])
    ceiling = 1 / (1 / med["D"] + 1 / inf)
    result = {
        "photos": n, "cores": cores, "batch": batch, "repeats": args.repeats, "baseline": args.baseline,
        "load_average_1min": loads, "median": med, "runs": rows,
        "ceiling_img_s": ceiling,
        "old_of_ceiling": med["old"] / ceiling, "new_of_ceiling": med["new"] / ceiling,
        "cli_old_of_ceiling": med["cli_old"] / ceiling, "cli_new_of_ceiling": med["cli_new"] / ceiling,
        # load-independent: CPU work per image of the job against decode + inference alone
        "work_efficiency_old": (med["cpu_decode_ms"] + med["cpu_infer_ms"]) / med["cpu_old_ms"],
        "work_efficiency_new": (med["cpu_decode_ms"] + med["cpu_infer_ms"]) / med["cpu_new_ms"],
        "same_answers_stream": answers["old"] == answers["new"],
        "same_answers_cli": answers["cli_old"] == answers["cli_new"],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
