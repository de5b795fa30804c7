"""Dataset doctor benchmark: detection rates on generated datasets with planted problems, cold and
rerun time, and time / peak memory against image count.

    PYTHONPATH=. python bench/bench_doctor.py                 # detection (3 seeds) + scale
    PYTHONPATH=. python bench/bench_doctor.py --seeds 10 --scale 1500 50000
    # old vs new in one run, with the cache state of the 50.1 s quiet-machine run (the ONNX features
    # export recorded as failed):
    git -C . archive main | tar -x -C /tmp/old
    PYTHONPATH=. python bench/bench_doctor.py --seeds 10 --scale --features-export failed --baseline-code /tmp/old

Detection: bench/doctor_data.py datasets, 10 classes × 150 images (train/ + val/), 5 % of the
training images moved to a wrong class, 15 near-duplicate copies inside train, 15 leaked into val,
3 unrelated photos. Seeds 10+ were never looked at while the thresholds were set (seeds 0-4).
Each check runs in a fresh process; "cold" starts with an empty embedding/thumbnail cache (the
one-time ONNX export is already there), "rerun" is `cnndesk doctor` again on the unchanged folder.
Each row gives wall and CPU seconds (user + system; less load-dependent) and where the embeddings
came from ("onnx", "onnx-multi" or "pytorch": a silent PyTorch fallback made the cold check 10×
slower once).

Scale: the stages after decoding (candidate search, verification, PCA, cross-validated labels,
outliers) on N synthetic images (cached-looking thumbnails and embeddings: class centroids plus
noise, thumbnails of generated pictures with shifted colours), against the baseline of a full
N × N similarity matrix. Peak memory is the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# --baseline-code: the children import cnndesk from another checkout (the code before a change)
sys.path.insert(0, os.environ.get("CNNDESK_BENCH_CODE") or str(HERE.parent))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds of this process so far (user + system, all threads): less load-dependent than
    wall time on a shared machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child_check(root: str) -> None:
    from cnndesk.core.doctor.check import check_dataset

    t, c = time.perf_counter(), _cpu_s()
    rep = check_dataset(root)
    print(json.dumps({"seconds": time.perf_counter() - t, "cpu_s": _cpu_s() - c, "peak_mb": _peak_mb(),
                      "report": rep.to_json()}))


def child_embed(root: str) -> None:
    """The baseline: only the embeddings quick training computes anyway (its multi-stage features,
    cold cache)."""
    from cnndesk.core.doctor.check import collect
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.predict.embeddings import EmbeddingCache, FeatureExtractor

    t, c = time.perf_counter(), _cpu_s()
    paths = [p for p, _, _ in collect(root).items]
    fx = FeatureExtractor(get_spec("efficientnet-lite0"), stages="multi")
    fx.embed_paths(paths, EmbeddingCache(fx.key))
    print(json.dumps({"seconds": time.perf_counter() - t, "cpu_s": _cpu_s() - c, "peak_mb": _peak_mb(),
                      "onnx": fx.engine.name == "onnx"}))


def child_scale(n: int, baseline: bool) -> None:
    import doctor_data
    import numpy as np

    from cnndesk.core.doctor import check as doctor
    from cnndesk.core.doctor import duplicates as doctor_dupes

    rng = np.random.default_rng(0)
    k = 10
    pyrng = random.Random(0)
    pool = np.stack([np.asarray(doctor_data.draw(doctor_data.CLASSES[i % k], pyrng).resize((32, 32)), np.uint8)
                     for i in range(1000)])
    y = rng.integers(0, k, n)
    pick = rng.integers(0, 100, n) * k + y  # a pool picture of the same class, turned or mirrored
    turn, flip = rng.integers(0, 4, n), rng.integers(0, 2, n)
    thumbs = np.empty((n, 32 * 32 * 3), np.uint8)
    for i in range(n):
        t = np.rot90(pool[pick[i]], turn[i])
        t = t[:, ::-1] if flip[i] else t
        shift = rng.integers(-80, 80, 3)
        thumbs[i] = np.clip(t.astype(np.int16) + shift, 0, 255).reshape(-1)
    centres = rng.normal(0, 1, (k, 1280)).astype(np.float32)
    feats = np.abs(centres[y] + rng.normal(0, 1.2, (n, 1280)).astype(np.float32))
    classes = [f"c{i}" for i in range(k)]
    paths = [f"/synthetic/{'val' if i % 5 == 0 else 'train'}/{classes[y[i]]}/{i:06d}.png" for i in range(n)]
    items = [(p, p.split("/")[2], p.split("/")[3]) for p in paths]
    files = doctor.Files(Path("/synthetic"), "splits", classes, items, {c: [f"/synthetic/train/{c}"] for c in classes}, [])
    doctor.collect = lambda root: files
    doctor_dupes.thumbnails = lambda ps, cache=None, progress=None, cancel=None, threads=2: (thumbs, np.full((n, 2), 64, np.int32), {})
    # (features, multi-stage features, errors, input size, source), as check.embed_files returns
    doctor.embed_files = lambda ps, spec, progress=None, cancel=None, device="auto": (
        {p: feats[i] for i, p in enumerate(paths)}, None, {}, 224, "synthetic")
    doctor.load_memo = lambda path: (None, 0, "")
    doctor.save_memo = lambda *a: None
    base_mb = _peak_mb()
    t = time.perf_counter()
    if baseline:  # the naive way: one N × N similarity matrix, then threshold it
        v = doctor_dupes.search_vectors(thumbs)
        sim = v @ v.T
        np.fill_diagonal(sim, -1)
        found = int((np.triu(sim) >= 0.9).sum())
        out = {"pairs_over_0.9": found}
    else:
        rep = doctor.check_dataset("/synthetic")
        out = {"issues": rep.summary["issues"]}
    print(json.dumps({"n": n, "seconds": time.perf_counter() - t, "peak_mb": _peak_mb(), "before_mb": base_mb, **out}))


def _run_child(args: list[str], env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def score(rep: dict, man: dict) -> dict:
    root = man["root"]

    def j(r):
        return os.path.join(root, r)

    issues = rep["issues"]
    flips = {j(f["path"]): f["true"] for f in man["flips"]}
    labels = [i for i in issues if i["kind"] == "label"]
    tp = [i for i in labels if i["path"] in flips]
    planted = {frozenset((j(a), j(b))): "duplicate" for a, b in man["dupes"]}
    planted |= {frozenset((j(a), j(b))): "leak" for a, b in man["leaks"]}
    files = {p for pair in planted for p in pair}
    pairs = {frozenset((i["path"], i["other"])): i["kind"] for i in issues if i["kind"] in ("duplicate", "leak")}
    hit = [k for k in planted if k in pairs]
    outliers = {i["path"] for i in issues if i["kind"] == "outlier"}
    return {
        "label_recall": len(tp) / max(1, len(flips)), "label_precision": len(tp) / max(1, len(labels)),
        "suggested_right": sum(flips[i["path"]] == i["suggested"] for i in tp) / max(1, len(tp)),
        "pairs_found": len(hit), "pairs_planted": len(planted),
        "leaks_as_leak": sum(pairs[k] == "leak" for k in hit if planted[k] == "leak"),
        "false_pairs": sum(1 for k in pairs if not k & files),
        "outliers_found": sum(j(p) in outliers for p in man["outliers"]), "outliers_planted": len(man["outliers"]),
        "outliers_reported": len(outliers),
    }


def _fail_features_export(cache: Path) -> None:
    """Record the ONNX "features" export as failed in ``cache`` (as a transient export failure left
    it in real caches: the state of the 50.1 s quiet-machine run; see docs/benchmarks.md)."""
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.runtime import export_cache as onnx_cache

    spec = get_spec("efficientnet-lite0")
    old = os.environ.get("CNNDESK_CACHE_DIR")
    os.environ["CNNDESK_CACHE_DIR"] = str(cache)
    try:
        key = onnx_cache.cache_key(spec, spec.weights.local_path(), "features")
        onnx_path, record = onnx_cache.entry_paths(spec, key, "features")
    finally:
        if old is None:
            os.environ.pop("CNNDESK_CACHE_DIR", None)
        else:
            os.environ["CNNDESK_CACHE_DIR"] = old
    onnx_path.unlink(missing_ok=True)
    record.write_text(json.dumps({"model": spec.name, "variant": "features", "ok": False,
                                  "reason": "ConversionError (recorded by bench_doctor --features-export failed)"}))


def detection(seeds: list[int], per_class: int, work: Path, features_export: str = "as-is",
              baseline_code: str | None = None) -> list[dict]:
    import doctor_data

    from cnndesk.core.common.paths import user_cache_dir

    warm = user_cache_dir()
    rows = []
    for seed in seeds:
        root = work / f"data{seed}"
        man = doctor_data.make(root, per_class=per_class, n_outliers=3, seed=seed)

        def fresh_cache(name: str, seed: int = seed) -> Path:
            cache = work / f"{name}{seed}"
            shutil.copytree(warm / "onnx", cache / "onnx")  # the one-time export, not per dataset
            if (warm / "hashes.json").exists():
                shutil.copy(warm / "hashes.json", cache / "hashes.json")
            if features_export == "failed":
                _fail_features_export(cache)
            return cache

        cache = fresh_cache("cache")
        env = {**os.environ, "CNNDESK_CACHE_DIR": str(cache)}
        load = os.getloadavg()[0]
        embed = _run_child(["--child-embed", str(root)], {**os.environ, "CNNDESK_CACHE_DIR": str(fresh_cache("base"))})
        old = None
        if baseline_code:  # the same cold check by the code before the change, same data and cache state
            old = _run_child(["--child-check", str(root)], {**os.environ, "CNNDESK_CACHE_DIR": str(fresh_cache("old")),
                                                           "CNNDESK_BENCH_CODE": baseline_code})
        cold = _run_child(["--child-check", str(root)], env)
        t = time.perf_counter()
        cli = subprocess.run([sys.executable, "-m", "cnndesk", "doctor", str(root), "--format", "json", "--quiet"],
                             env=env, capture_output=True, text=True, check=False)
        rerun_cli = time.perf_counter() - t
        rerun = json.loads(cli.stdout)
        n = man["n_train"] + man["n_val"]
        row = {"seed": seed, "images": n, "load": round(load, 1), "load_after": round(os.getloadavg()[0], 1),
               "features_export": features_export,
               "embed_only_s": round(embed["seconds"], 1), "embed_only_cpu_s": round(embed["cpu_s"], 1),
               "cold_s": round(cold["seconds"], 1), "cold_cpu_s": round(cold["cpu_s"], 1),
               "cold_ms_per_image": round(1000 * cold["seconds"] / n, 1),
               "cold_cpu_ms_per_image": round(1000 * cold["cpu_s"] / n, 1),
               "embeddings": cold["report"]["summary"].get("embeddings"),
               "cold_peak_mb": round(cold["peak_mb"]),
               "rerun_check_s": rerun["summary"]["seconds"], "rerun_cli_s": round(rerun_cli, 1),
               **score(cold["report"], man)}
        if old is not None:
            row["old"] = {"cold_s": round(old["seconds"], 1), "cold_cpu_s": round(old["cpu_s"], 1),
                          "cold_ms_per_image": round(1000 * old["seconds"] / n, 1),
                          "cold_cpu_ms_per_image": round(1000 * old["cpu_s"] / n, 1),
                          "cold_peak_mb": round(old["peak_mb"]), **score(old["report"], man)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def scale(sizes: list[int], baseline_max: int) -> list[dict]:
    rows = []
    for n in sizes:
        load = os.getloadavg()[0]
        r = _run_child(["--child-scale", str(n)], dict(os.environ))
        r["load"] = round(load, 1)
        rows.append(r)
        print(json.dumps(r), flush=True)
        if n <= baseline_max:
            b = _run_child(["--child-scale", str(n), "--baseline"], dict(os.environ))
            b["baseline"] = True
            rows.append(b)
            print(json.dumps(b), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="*", default=[10, 11, 12])
    p.add_argument("--per-class", type=int, default=150)
    p.add_argument("--scale", type=int, nargs="*", default=[1500, 10000, 50000])
    p.add_argument("--baseline-max", type=int, default=20000, help="largest N for the N × N matrix baseline")
    p.add_argument("--child-check")
    p.add_argument("--child-embed")
    p.add_argument("--child-scale", type=int)
    p.add_argument("--baseline", action="store_true")
    p.add_argument("--features-export", choices=("as-is", "failed"), default="as-is",
                   help="the ONNX features export in each fresh cache: as the user cache has it, or recorded as failed")
    p.add_argument("--baseline-code", help="a checkout of older code (e.g. `git archive main`): its cold check runs "
                   "side by side on the same data and cache state")
    a = p.parse_args()
    if a.child_check:
        return child_check(a.child_check)
    if a.child_embed:
        return child_embed(a.child_embed)
    if a.child_scale:
        return child_scale(a.child_scale, a.baseline)
    work = Path(tempfile.mkdtemp(prefix="cnndesk-bench-doctor-"))
    try:
        if a.seeds:
            detection(a.seeds, a.per_class, work, a.features_export,
                      str(Path(a.baseline_code).resolve()) if a.baseline_code else None)
        if a.scale:
            scale(a.scale, a.baseline_max)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
