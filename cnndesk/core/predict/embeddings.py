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

import os
import zipfile
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
        added = 0
        try:
            for r in classify_stream(todo, self, cancel=cancel, infer=lambda b: list(self.embed_arrays(b)),
                                     batch_size=4 if self.engine.name == "onnx" else 8):
                done += 1
                if r.error:
                    errors.append((r.path, r.error))
                else:
                    out[r.path] = r.prediction
                    if cache is not None:
                        cache.put(r.path, r.prediction)
                        added += 1
                report(progress, done, total, "Computing image features")
        finally:  # stopped (Cancel, Ctrl+C) too: what was computed is kept, the next run goes on from there
            if cache is not None and added:
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


def file_key(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"


class EmbeddingCache:
    """path+size+mtime -> embedding, one .npz per base model (float32 rows), written atomically.

    ``compact``: hand the rows read from the file over as float16 (half the memory: 253 MB instead
    of 505 MB for 50,000 × 2,528 values), read from the file a block at a time so no float32 copy
    of the whole file is ever held (issue 25: the dataset doctor at 50,000 images within 1 GB).
    The file keeps float32: :meth:`save` copies those rows from the file as they are (never the
    float16 values), unless the file was replaced since it was read (then the float16 values are
    written as float32). A file whose values do not fit float16 is read as float32."""

    def __init__(self, model_key: str, folder: Path | None = None, compact: bool = False):
        self.path = (folder or user_cache_dir() / "embeddings") / f"{model_key}.npz"
        self._data: dict[str, np.ndarray] = {}
        self._from_file: dict[str, int] = {}  # compact rows: key -> row of the file (float32 there)
        self._file_id: tuple | None = None
        self.hits = 0
        self.compact = bool(compact)
        try:
            with np.load(self.path, allow_pickle=False) as z:
                keys = [str(k) for k in z["keys"]]
                vectors = _read_rows(z, "vectors", np.float16) if compact else None
                if vectors is None:  # not compact, or values too large for float16
                    vectors = z["vectors"]
                    self.compact = False
                elif len(vectors) != len(keys):
                    raise ValueError("keys and vectors differ in length")
                for r, (k, v) in enumerate(zip(keys, vectors, strict=True)):
                    if self.compact and k not in self._data:  # (a repeated key: its float16 value is kept)
                        self._from_file[k] = r
                    else:
                        self._from_file.pop(k, None)
                    self._data[k] = v
            if self.compact:
                self._file_id = _file_id(self.path)
            cache_budget.touch(self.path)  # used now: last in the LRU eviction order
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # a damaged file: no cache
            self._data.clear()
            self._from_file.clear()

    def get(self, path: str) -> np.ndarray | None:
        key = file_key(path)
        vec = self._data.get(key) if key else None
        if vec is not None:
            self.hits += 1
        return vec

    def put(self, path: str, vec: np.ndarray) -> None:
        key = file_key(path)
        if key:
            self._data[key] = np.asarray(vec, np.float32)
            self._from_file.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)

    def save(self) -> None:
        """Write every row (float32) atomically, a block at a time (no stacked copy of all rows)."""
        if not self._data:
            return
        keys = list(self._data)
        dim = int(np.size(next(iter(self._data.values()))))
        same_file = bool(self._from_file) and self._file_id is not None and _file_id(self.path) == self._file_id
        with cache_budget.adding(self.path), atomic_write(self.path, "wb") as fh:  # under the size cap
            old = np.load(self.path, allow_pickle=False) if same_file else None
            source = None
            try:
                if old is not None:
                    source = _RowReader(old, "vectors")
                with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                    with zf.open("keys.npy", "w", force_zip64=True) as out:
                        np.lib.format.write_array(out, np.array(keys, dtype=str), allow_pickle=False)
                    with zf.open("vectors.npy", "w", force_zip64=True) as out:
                        np.lib.format.write_array_header_2_0(
                            out, {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
                                  "shape": (len(keys), dim)})
                        step = max(1, _READ_BYTES // max(1, 4 * dim))
                        for start in range(0, len(keys), step):
                            block = np.empty((min(step, len(keys) - start), dim), "<f4")
                            for j, k in enumerate(keys[start:start + step]):
                                r = self._from_file.get(k) if source is not None else None
                                block[j] = self._data[k] if r is None else source.row(r)
                            out.write(memoryview(block).cast("B"))
            finally:
                if source is not None:
                    source.close()
                if old is not None:
                    old.close()
        if self.compact:
            self._from_file = {k: r for r, k in enumerate(keys) if k in self._from_file} if same_file else {}
            self._file_id = _file_id(self.path)


_READ_BYTES = 8 << 20  # rows read or written at a time


def _file_id(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size)  # every writer replaces the file (a new inode); touch() only sets times


def _npy_member(z, name: str):
    """(open member, shape, dtype) of the array ``name`` of an open .npz (C order only)."""
    fh = z.zip.open(f"{name}.npy")
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(fh)
    if fortran or len(shape) != 2 or dtype.hasobject:
        fh.close()
        raise ValueError(f"{name}: not a C-order matrix")
    return fh, shape, dtype


def _read_rows(z, name: str, dtype) -> np.ndarray | None:
    """The matrix ``name`` of the .npz ``z`` as ``dtype``, read a few MB of rows at a time (memory:
    the result plus one block); None when a value does not fit ``dtype`` (float16: ±65,504)."""
    fh, (n, d), src = _npy_member(z, name)
    with fh:
        out = np.empty((n, d), dtype)
        limit = float(np.finfo(dtype).max) if np.issubdtype(dtype, np.floating) else None
        step = max(1, _READ_BYTES // max(1, d * src.itemsize))
        for start in range(0, n, step):
            rows = min(step, n - start)
            raw = fh.read(rows * d * src.itemsize)
            if len(raw) != rows * d * src.itemsize:
                raise ValueError(f"{name}: the file is cut short")
            block = np.frombuffer(raw, src).reshape(rows, d)
            if limit is not None and rows and d and (block.max() > limit or block.min() < -limit):
                return None
            out[start:start + rows] = block
    return out


class _RowReader:
    """Rows of a matrix in an open .npz, asked for in rising order (a block read at a time)."""

    def __init__(self, z, name: str):
        self._fh, (self.n, self.d), self._dtype = _npy_member(z, name)
        self._start, self._block = 0, np.zeros((0, self.d), self._dtype)

    def row(self, r: int) -> np.ndarray:
        while r >= self._start + len(self._block):
            self._start += len(self._block)
            rows = min(max(1, _READ_BYTES // max(1, self.d * self._dtype.itemsize)), self.n - self._start)
            if rows <= 0:
                raise ValueError("row beyond the end of the file")
            raw = self._fh.read(rows * self.d * self._dtype.itemsize)
            self._block = np.frombuffer(raw, self._dtype).reshape(rows, self.d)
        if r < self._start:
            raise ValueError("rows must be asked for in rising order")
        return self._block[r - self._start]

    def close(self) -> None:
        self._fh.close()
