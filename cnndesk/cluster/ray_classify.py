"""`cnndesk classify --engine ray`: classify a folder (or any path Ray Data can read) on a Ray
cluster and stream the results into one Parquet or CSV file with the local run's columns.

Ray Data reads the files as bytes; an actor pool decodes them with cnndesk's own loader and runs
the same Classifier (ONNX Runtime on CPU actors, PyTorch on GPU actors), so the results equal the
local pipeline's. Actors ask for a fraction of a CPU: on a 2-CPU machine, actors that each want a
whole CPU starve the read tasks and the pipeline deadlocks.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np


class ClassifyActor:
    def __init__(self, model, top_k: int, device: str, threads: int):
        from cnndesk.core.predict.classifier import Classifier

        self.clf = Classifier(model, device=device, threads=threads)
        self.top_k = top_k

    def __call__(self, batch: dict) -> dict:
        from cnndesk.core.common.errors import CnndeskError
        from cnndesk.core.images.load import load_image

        paths = [str(p) for p in batch["path"]]
        arrays, ok, errors = [], [], []
        for path, data in zip(paths, batch["bytes"], strict=True):
            try:
                img = load_image(bytes(data), min_side=self.clf.preprocess.resize, name=path)
                arrays.append(self.clf.prepare(img))
                ok.append(True)
                errors.append("")
            except CnndeskError as exc:
                ok.append(False)
                errors.append(str(exc))
        preds = iter(self.clf.predict_arrays(np.stack(arrays), self.top_k) if arrays else [])
        out: dict[str, list] = {"path": paths}
        for i in range(1, self.top_k + 1):
            out[f"label_{i}"], out[f"score_{i}"] = [], []
        for good in ok:
            p = next(preds) if good else None
            for i in range(self.top_k):
                out[f"label_{i + 1}"].append(p.labels[i] if p is not None and i < len(p.labels) else "")
                out[f"score_{i + 1}"].append(float(p.scores[i]) if p is not None and i < len(p.scores) else float("nan"))
        out["error"] = errors
        return out


def classify_with_ray(paths: list[str], out: str, *, model=None, top_k: int = 5, device: str = "cpu",
                      actors: int | None = None, batch_size: int = 16, progress=None) -> int:
    """Classify ``paths`` (files) with Ray Data; write ``out`` (.parquet or .csv). Returns rows."""
    import pyarrow as pa
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                 log_to_driver=False, logging_level="WARNING")
    import logging

    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    gpu = device == "cuda"
    cpus = ray.cluster_resources().get("CPU", 1)
    n_actors = actors or max(1, int(cpus))  # each takes half a CPU: room is left for the reads
    ds = ray.data.read_binary_files(paths, include_paths=True, file_extensions=None)
    ds = ds.map_batches(
        ClassifyActor,
        fn_constructor_args=(model, top_k, "cuda" if gpu else "cpu", 1),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        num_cpus=0 if gpu else 0.5,  # fractional: whole-CPU actors deadlock beside the read tasks
        num_gpus=1 if gpu else 0,
    )
    order = {p: i for i, p in enumerate(paths)}
    rows = []
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=256):
        rows.append(batch)
        if progress:
            progress(sum(b.num_rows for b in rows), len(paths))
    table = pa.concat_tables(rows) if rows else pa.table({"path": []})
    # the local run's order (Ray Data may interleave blocks)
    idx = sorted(range(table.num_rows), key=lambda i: order.get(str(table["path"][i]), 1 << 62))
    table = table.take(pa.array(idx, pa.int64())) if rows else table
    from cnndesk.core.common.safeio import safe_write  # exclusive temp file, renamed into place

    if out.endswith(".parquet"):
        import pyarrow.parquet as pq

        with safe_write(out, "wb") as fh:
            pq.write_table(table, fh)
    else:
        with safe_write(out, "w", newline="") as fh:
            _write_csv(table, fh, top_k)
    return table.num_rows


def _write_csv(table, fh, top_k: int) -> None:
    from cnndesk.core.predict import results as results_io

    rows = []
    cols = table.to_pydict()
    for i, p in enumerate(cols.get("path", [])):
        preds = [{"label": cols[f"label_{k}"][i], "score": cols[f"score_{k}"][i]}
                 for k in range(1, top_k + 1) if cols[f"label_{k}"][i]]
        rows.append({"path": p, "predictions": preds, "error": cols["error"][i] or None})
    w = results_io.writer("csv", fh, top_k)
    for r in rows:
        w.write(r)
    w.close()


def main(args) -> int:
    """The CLI entry (cnndesk classify --engine ray ... --out FILE)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        print("cnndesk: --engine ray needs Ray: pip install 'cnndesk[cluster]'", file=sys.stderr)
        return 2
    if not args.out or not args.out.endswith((".parquet", ".csv")):
        print("cnndesk classify: error: --engine ray writes a file: add --out results.parquet (or .csv)", file=sys.stderr)
        return 2
    from cnndesk.core.predict.stream import expand_paths, select_shard

    files = expand_paths(args.paths, recursive=args.recursive)
    if args.shard is not None:
        files = select_shard(files, args.paths, *args.shard)
    t0 = time.perf_counter()

    def progress(done, total):
        if not args.quiet and sys.stderr.isatty():
            sys.stderr.write(f"\r\033[K{done}/{total} images")
            sys.stderr.flush()

    n = classify_with_ray(files, args.out, model=args.model, top_k=args.top_k,
                          device="cuda" if args.device == "cuda" else "cpu", batch_size=args.batch_size or 16,
                          progress=progress)
    print(f"cnndesk: {n} results in {args.out} ({n / (time.perf_counter() - t0):.1f} images/s)", file=sys.stderr)
    return 0
