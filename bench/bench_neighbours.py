"""Nearest-neighbour search libraries on this machine: faiss-cpu vs usearch vs exact numpy
(issue 25 point 1), for the choice behind ``cnndesk.core.common.neighbours``.

Each configuration runs in its own child process (peak RSS is the child's, minus what the data
alone costs): build + all-vs-all query of k nearest neighbours, recall against the exact top-k
(numpy, chunked, float32), one thread unless --threads. Data, unit rows:

* ``clusters``: N rows in D dims around 50 class centres with isotropic noise (256 dims, as the
  doctor's embedding space: a worst case, every direction equally spread);
* ``lowrank``: the same with most of the spread in 48 directions (as CNN embeddings are);
* ``pixels``: the doctor's 304-value pixel search vectors of N thumbnails made from 1,000 generated
  pictures (turned, mirrored, colour-shifted: many look-alikes, the hard case for a graph index).

Also the wheel and installed sizes and the import time of each library.

    PYTHONPATH=. python bench/bench_neighbours.py [--n 5000 20000 50000] [--k 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

CONFIGS = ("exact-numpy", "faiss-flat", "faiss-ivf", "faiss-hnsw", "usearch-exact", "usearch-hnsw",
           "usearch-hnsw-f16", "cnndesk")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_data(kind: str, n: int, d: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "lowrank":  # CNN embeddings: most of the spread in a few dozen directions
        latent = rng.normal(0, 1, (50, 48)).astype(np.float32)[rng.integers(0, 50, n)]
        latent += rng.normal(0, 0.8, latent.shape).astype(np.float32)
        x = latent @ rng.normal(0, 1, (48, d)).astype(np.float32) + rng.normal(0, 0.6, (n, d)).astype(np.float32)
    elif kind == "clusters":
        centres = rng.normal(0, 1, (50, d)).astype(np.float32)
        spread = rng.uniform(0.6, 1.4, 50).astype(np.float32)
        y = rng.integers(0, 50, n)
        x = centres[y] + rng.normal(0, 1, (n, d)).astype(np.float32) * spread[y, None]
        dup = rng.choice(n, n // 100, replace=False)  # 1 % near-copies of another row
        x[dup] = x[rng.integers(0, n, len(dup))] + rng.normal(0, 0.05, (len(dup), d)).astype(np.float32)
    else:
        import random

        import doctor_data

        from cnndesk.core.doctor.duplicates import search_vectors

        pyrng = random.Random(seed)
        pool = np.stack([np.asarray(doctor_data.draw(doctor_data.CLASSES[i % 10], pyrng).resize((32, 32)), np.uint8)
                         for i in range(1000)])
        pick, turn, flip = rng.integers(0, 1000, n), rng.integers(0, 4, n), rng.integers(0, 2, n)
        thumbs = np.empty((n, 32 * 32 * 3), np.uint8)
        for i in range(n):
            t = np.rot90(pool[pick[i]], turn[i])
            t = t[:, ::-1] if flip[i] else t
            thumbs[i] = np.clip(t.astype(np.int16) + rng.integers(-80, 80, 3), 0, 255).reshape(-1)
        return search_vectors(thumbs)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_topk(x: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    n = len(x)
    out = np.empty((n, k), np.int64)
    for s in range(0, n, chunk):
        sim = x[s:s + chunk] @ x.T
        sim[np.arange(len(sim)), np.arange(len(sim)) + s] = -np.inf
        top = np.argpartition(-sim, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, top, 1), axis=1, kind="stable")
        out[s:s + chunk] = np.take_along_axis(top, order, 1)
    return out


def run_config(config: str, x: np.ndarray, k: int, threads: int) -> tuple[np.ndarray, float, float]:
    """(indices n × k without self, build seconds, query seconds)."""
    n, d = x.shape
    kk = k + 1  # self is among the answers of an index built on the queries
    t = time.perf_counter()
    if config == "exact-numpy":
        from threadpoolctl import threadpool_limits

        with threadpool_limits(threads):
            build = time.perf_counter() - t
            return exact_topk(x, k), build, time.perf_counter() - t - build
    if config == "cnndesk":
        from cnndesk.core.common import neighbours

        _, idx = neighbours.knn(x, x, k, exclude_self=True, threads=threads)
        return idx, 0.0, time.perf_counter() - t
    if config.startswith("faiss"):  # faiss-ivf-pN: N cells scanned per query
        import faiss

        faiss.omp_set_num_threads(threads)
        if config == "faiss-flat":
            index = faiss.IndexFlatIP(d)
        elif config.startswith("faiss-ivf"):
            nlist = int(4 * np.sqrt(n))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = 0
            index.train(x[np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)])
            index.nprobe = int(config.split("-p")[1]) if "-p" in config else max(8, nlist // 12)
        else:
            index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = 96
        index.add(x)
        build = time.perf_counter() - t
        _, idx = index.search(x, kk)
    else:
        from usearch.index import Index, search

        if config == "usearch-exact":
            build = 0.0
            idx = search(x, x, kk, "ip", exact=True, threads=threads).keys
        else:
            index = Index(ndim=d, metric="ip", dtype="f16" if config.endswith("f16") else "f32",
                          connectivity=16, expansion_add=128, expansion_search=96)
            index.add(np.arange(n), x, threads=threads)
            build = time.perf_counter() - t
            idx = index.search(x, kk, threads=threads).keys
    query = time.perf_counter() - t - build
    idx = np.asarray(idx, np.int64)
    rows = np.arange(n)[:, None]
    keep = []
    for i in range(n):  # drop self (or the first extra) so each row has k others
        r = idx[i][idx[i] != i]
        keep.append(r[:k] if len(r) >= k else np.pad(r, (0, k - len(r)), constant_values=-1))
    _ = rows
    return np.stack(keep), build, query


def child(args) -> None:
    base = _peak_mb()
    x = make_data(args.data, args.n)
    data_mb = _peak_mb() - base
    truth = None
    if args.config != "exact-numpy":
        truth_path = Path(args.truth)
        truth = np.load(truth_path)
    before = _peak_mb()
    idx, build, query = run_config(args.config, x, args.k, args.threads)
    peak = _peak_mb()
    out = {"config": args.config, "data": args.data, "n": args.n, "k": args.k, "threads": args.threads,
           "build_s": round(build, 2), "query_s": round(query, 2), "peak_mb": round(peak),
           "index_mb": round(peak - before), "data_mb": round(data_mb)}
    if truth is None:
        np.save(args.truth, idx)
    else:
        hits = sum(len(set(a) & set(b)) for a, b in zip(idx.tolist(), truth.tolist(), strict=True))
        out["recall"] = round(hits / truth.size, 4)
    print(json.dumps(out))


def sizes() -> dict:
    import importlib.metadata as md

    out = {}
    for dist in ("faiss-cpu", "usearch", "numkong"):
        try:
            files = md.distribution(dist).files or []
        except md.PackageNotFoundError:
            continue
        total = sum((Path(f.locate()).stat().st_size for f in files if Path(f.locate()).is_file()), 0)
        out[dist] = {"version": md.version(dist), "installed_mb": round(total / 2**20, 1)}
    for mod in ("faiss", "usearch.index"):
        r = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {mod}"], capture_output=True, text=True)
        last = r.stderr.strip().splitlines()[-1].split("|")
        out[f"import {mod} (ms)"] = round(int(last[1]) / 1000)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="*", default=[5000, 20000, 50000])
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", nargs="*", default=["lowrank", "pixels", "clusters"])
    p.add_argument("--configs", nargs="*", default=list(CONFIGS))
    p.add_argument("--config")
    p.add_argument("--truth")
    p.add_argument("--truth-dir", help="keep the exact answers here and reuse them (no exact-numpy row then)")
    a = p.parse_args()
    if a.config:
        a.data, a.n = a.data[0], a.n[0]
        return child(a)
    print(json.dumps({"uptime": os.getloadavg(), **sizes()}), flush=True)
    import tempfile

    tmp = Path(a.truth_dir) if a.truth_dir else Path(tempfile.mkdtemp(prefix="cnndesk-bench-nn-"))
    tmp.mkdir(parents=True, exist_ok=True)
    for data in a.data:
        for n in a.n:
            truth = tmp / f"{data}{n}.npy"
            for config in ["exact-numpy"] + [c for c in a.configs if c != "exact-numpy"]:
                if config == "exact-numpy" and truth.exists() and a.truth_dir:
                    continue
                load = os.getloadavg()[0]
                r = subprocess.run([sys.executable, __file__, "--config", config, "--truth", str(truth), "--n", str(n),
                                    "--k", str(a.k), "--threads", str(a.threads), "--data", data],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    print(json.dumps({"config": config, "data": data, "n": n, "error": r.stderr[-500:]}), flush=True)
                    continue
                row = json.loads(r.stdout.strip().splitlines()[-1])
                row["load"] = round(load, 1)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
