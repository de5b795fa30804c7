"""Embeddings for quick training, novelty scores and data checks, with an on-disk cache.

Two kinds (``stages``): "last", the pooled penultimate layer, and "multi", the mean+max pooled
outputs of three late stages next to it, from the same single forward pass (much better for
images unlike ImageNet's; see ``models.multistage``). Other modules call :func:`embed_paths`.

On the CPU the features come from ONNX Runtime (the model's "features" export, verified against
PyTorch once), so quick training needs no torch once that export is cached; on a GPU they come
from PyTorch. The cache is keyed by the base model's weights and by each file's path, size and
modification time, so re-running on a grown dataset embeds only the new files.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from cnndesk.core.common import cache_budget
from cnndesk.core.common.paths import atomic_write, user_cache_dir
from cnndesk.core.common.progress import CancelToken, ProgressCallback, report
from cnndesk.core.models.registry import ModelSpec
from cnndesk.core.predict.stream import classify_stream
from cnndesk.core.runtime.backends import open_backend


class FeatureExtractor:
    """The embeddings of a network (``stages``: "last" or "multi"), run by the backend that
    :func:`cnndesk.core.runtime.backends.open_backend` picks for it (ONNX Runtime on the CPU)."""

    def __init__(self, spec: ModelSpec, device: str = "auto", threads: int | None = None,
                 progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                 stages: str = "last"):
        if stages not in STAGES:
            raise ValueError(f"stages must be one of {STAGES}")
        self.spec = spec
        self.preprocess = spec.preprocess
        self.stages = stages
        variant = "multi" if stages == "multi" else "features"
        self.engine = open_backend(spec, variant, device, threads=threads, progress=progress, cancel=cancel)
        self.device = self.engine.device.device
        self.threads = self.engine.threads
        self.key = f"{spec.name}-{self.engine.resolved.cache_key()}"

    def prepare(self, img):
        return self.preprocess(img)

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:
        return self.engine.run(batch).astype(np.float32, copy=False)

    def embed_paths(
        self,
        paths: list[str],
        cache: EmbeddingCache | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
        """Embeddings of ``paths`` (cached ones are reused); returns (path -> vector, errors)."""
        out: dict[str, np.ndarray] = {}
        todo = []
        for p in paths:
            vec = cache.get(p) if cache is not None else None
            if vec is not None:
                out[p] = vec
            else:
                todo.append(p)
        errors: list[tuple[str, str]] = []
        total = len(paths)
        done = len(out)
        report(progress, done, total, f"{done} of {total} images from the cache")
        for r in classify_stream(todo, self, cancel=cancel, infer=lambda b: list(self.embed_arrays(b)),
                                 batch_size=4 if self.engine.name == "onnx" else 8):
            done += 1
            if r.error:
                errors.append((r.path, r.error))
            else:
                out[r.path] = r.prediction
                if cache is not None:
                    cache.put(r.path, r.prediction)
            report(progress, done, total, "Computing image features")
        if cache is not None and todo:
            cache.save()
        return out, errors


STAGES = ("last", "multi")


def embed_paths(
    paths: list[str],
    spec: ModelSpec | None = None,
    stages: str = "multi",
    cache: bool | EmbeddingCache = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    errors: list[tuple[str, str]] | None = None,
    device: str = "auto",
) -> np.ndarray:
    """Embeddings of image files, one row per path, in order: the public entry point.

    ``spec``: the base network (default: the built-in model). ``stages``: "multi" (mean+max pooled
    late stages + the pooled last layer, 2528 values for EfficientNet-Lite0) or "last" (the pooled
    last layer, 1280). ``cache``: True uses the on-disk cache in the user cache folder (keyed by
    the network's weights and each file's path, size and modification time), False none, or an
    :class:`EmbeddingCache`. A file that cannot be read gets a row of NaN and its (path, reason)
    is appended to ``errors`` when given. Raises Cancelled when ``cancel`` is set. Torch-free on
    the CPU once the network's ONNX export is cached (the first call exports it, once).
    """
    from cnndesk.core.models.registry import default_model

    spec = spec or default_model()
    fx = FeatureExtractor(spec, device=device, progress=progress, cancel=cancel, stages=stages)
    store = EmbeddingCache(fx.key) if cache is True else (cache or None)
    got, errs = fx.embed_paths(list(paths), store, progress=progress, cancel=cancel)
    if errors is not None:
        errors.extend(errs)
    if not got:
        return np.full((len(paths), 0), np.nan, np.float32)
    dim = len(next(iter(got.values())))
    out = np.full((len(paths), dim), np.nan, np.float32)
    for i, p in enumerate(paths):
        v = got.get(p)
        if v is not None:
            out[i] = v
    return out


def _file_key(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"


class EmbeddingCache:
    """path+size+mtime -> embedding, one .npz per base model, written atomically."""

    def __init__(self, model_key: str, folder: Path | None = None):
        self.path = (folder or user_cache_dir() / "embeddings") / f"{model_key}.npz"
        self._data: dict[str, np.ndarray] = {}
        self.hits = 0
        try:
            with np.load(self.path, allow_pickle=False) as z:
                for k, v in zip(z["keys"], z["vectors"], strict=True):
                    self._data[str(k)] = v
            cache_budget.touch(self.path)  # used now: last in the LRU eviction order
        except (OSError, KeyError, ValueError):
            pass

    def get(self, path: str) -> np.ndarray | None:
        key = _file_key(path)
        vec = self._data.get(key) if key else None
        if vec is not None:
            self.hits += 1
        return vec

    def put(self, path: str, vec: np.ndarray) -> None:
        key = _file_key(path)
        if key:
            self._data[key] = np.asarray(vec, np.float32)

    def __len__(self) -> int:
        return len(self._data)

    def save(self) -> None:
        if not self._data:
            return
        keys = np.array(list(self._data), dtype=str)
        vectors = np.stack(list(self._data.values())).astype(np.float32)
        buf = io.BytesIO()
        np.savez(buf, keys=keys, vectors=vectors)
        with cache_budget.adding(self.path), atomic_write(self.path, "wb") as fh:  # under the size cap
            fh.write(buf.getvalue())
