"""Embeddings for the dataset doctor: the pooled last layer of the base network (what the doctor's
thresholds were set with), from the fastest source this machine has. Qt-free, torch-free on the
CPU.

Sources, in order:

1. the ONNX "features" export (exported once if there is none yet);
2. when that export is recorded as failed, the ONNX "multi" export (quick training's: the pooled
   late stages *followed by* the same pooled last layer, from one forward pass), of which the
   doctor keeps the last columns. Its embeddings land in quick training's cache, so training after
   a check reuses them;
3. PyTorch (what :class:`~cnndesk.core.predict.embeddings.FeatureExtractor` falls back to).

Vectors come over as float16 (``EmbeddingCache(compact=True)``: the file keeps float32; half
the memory, 253 MB instead of 505 MB of 2,528-value vectors at 50,000 images); the doctor turns a
block of rows at a time into float32 (``label_check.Rows``). Vectors computed in this call are
rounded the same way, so a folder gets the same report whether its vectors were cached or not.

Why 2 exists: a failed export is recorded (``onnx_cache``; the runtime retries it up to
``onnx_cache.EXPORT_ATTEMPTS`` times in all), and the PyTorch fallback costs about 31 ms per image
against 3-4 ms for ONNX Runtime on 2 cores. A transient failure (two exports at once in one
process, before the export lock) left such a record in real caches, and a 1,533-image cold check
took 50 s instead of about 10 s (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from cnndesk.core.common.progress import CancelToken, ProgressCallback

log = logging.getLogger("cnndesk")


def last_layer_width(onnx_path: Path) -> int | None:
    """How many of a "multi" export's output columns are the pooled last layer: the width of the
    last input of the Concat that makes the output (``MultiStage.forward`` puts it last). Read from
    the graph with the ``onnx`` package (there whenever torch can export); None when it cannot be
    read, so the caller uses another source instead of guessing."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        graph = onnx.load(str(onnx_path), load_external_data=False).graph
        out = graph.output[0]
        node = next(n for n in graph.node if out.name in n.output)
        if node.op_type != "Concat" or len(node.input) < 2:
            return None
        info = {v.name: v for v in list(graph.value_info) + list(graph.output)}
        dims = info[node.input[-1]].type.tensor_type.shape.dim
        total = out.type.tensor_type.shape.dim[1].dim_value
        width = int(dims[-1].dim_value) if len(dims) == 2 else 0
    except Exception:  # an unexpected graph: not this source
        return None
    return width if 0 < width < total else None


def export_ok(spec, variant: str) -> bool | None:
    """True / False when the ONNX export of ``variant`` is recorded as working / failed, None when
    there is no record (or the weights are not there yet)."""
    from cnndesk.core.common.errors import ModelError
    from cnndesk.core.runtime import resolve as runtime

    try:
        entry = runtime.resolve(spec, variant, export=False).entry
    except ModelError:
        return None
    return None if entry is None else entry.ok


def on_cpu(device: str) -> bool:
    from cnndesk.core.runtime.devices import resolve_device

    return resolve_device(device).device == "cpu"


def embed(paths: list[str], spec, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
          device: str = "auto") -> tuple[dict[str, np.ndarray], dict[str, str], str]:
    """Last-layer embeddings of ``paths`` through the shared embedding cache.

    Returns (path -> vector, path -> error, source), source one of "onnx", "onnx-multi", "pytorch"."""
    from cnndesk.core.predict.embeddings import EmbeddingCache, FeatureExtractor

    cpu = on_cpu(device)
    if cpu and export_ok(spec, "features") is False and export_ok(spec, "multi") is not False:
        fx = FeatureExtractor(spec, device=device, progress=progress, cancel=cancel, stages="multi")  # exports once
        width = multi_width(spec)
        if width:
            got, errors = fx.embed_paths(paths, EmbeddingCache(fx.key, compact=True), progress=progress, cancel=cancel)
            return {p: np.ascontiguousarray(v[-width:], np.float16) for p, v in got.items()}, dict(errors), "onnx-multi"
        log.info("doctor: no last-layer columns found in the multi-stage export; using the features extractor")
    fx = FeatureExtractor(spec, device=device, progress=progress, cancel=cancel, stages="last")
    got, errors = fx.embed_paths(paths, EmbeddingCache(fx.key, compact=True), progress=progress, cancel=cancel)
    return _compact(got), dict(errors), "onnx" if cpu and export_ok(spec, "features") else "pytorch"


def _compact(got: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every vector as float16, as the compact cache hands cached ones over (those are left as they
    are; the ones computed in this call are rounded): the same values, cached or not."""
    return {p: np.asarray(v, np.float16) for p, v in got.items()}


def multi_width(spec) -> int | None:
    from cnndesk.core.runtime import resolve as runtime

    entry = runtime.resolve(spec, "multi", export=False).entry
    return last_layer_width(entry.path) if entry is not None and entry.ok else None


def embed_multi(paths: list[str], spec, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                device: str = "auto") -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None, dict[str, str], str]:
    """Quick training's multi-stage embeddings (the label check judges with quick training's
    features and head) and their last-layer columns (duplicates and outliers), from one pass and
    the shared cache. Returns (path -> last-layer vector, path -> multi-stage vector or None when
    that export is unavailable here, path -> error, source)."""
    from cnndesk.core.predict.embeddings import EmbeddingCache, FeatureExtractor

    if on_cpu(device) and export_ok(spec, "multi") is not False:
        try:
            fx = FeatureExtractor(spec, device=device, progress=progress, cancel=cancel, stages="multi")  # exports once
        except Exception as exc:  # noqa: BLE001 - no multi-stage export here: the last layer alone
            from cnndesk.core.common.errors import Cancelled

            if isinstance(exc, Cancelled):
                raise
            log.info("doctor: multi-stage features unavailable (%s)", exc)
        else:
            width = multi_width(spec)
            if width:
                got, errors = fx.embed_paths(paths, EmbeddingCache(fx.key, compact=True), progress=progress, cancel=cancel)
                got = _compact(got)
                last = {p: v[-width:] for p, v in got.items()}  # views: no second copy of N × 1,280 values
                return last, got, dict(errors), "onnx-multi"
    feats, errors, source = embed(paths, spec, progress, cancel, device)
    return feats, None, errors, source
