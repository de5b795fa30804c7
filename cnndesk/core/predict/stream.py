"""Streaming folder classification: files are decoded in parallel (draft-mode JPEG decoding) while
the model runs on the previous batch; results come back in input order; memory stays bounded
(at most ``max_in_flight`` decoded images exist at any time, whatever the number of files).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnndesk.core.common import system
from cnndesk.core.common.errors import Cancelled
from cnndesk.core.common.progress import CancelToken, ProgressCallback, report
from cnndesk.core.images.load import is_image_path, load_image
from cnndesk.core.predict.classifier import Prediction
from cnndesk.core.predict.prefetch import EarlyDecode, decode_one


@dataclass(frozen=True)
class FileResult:
    index: int
    path: str
    prediction: Prediction | None
    error: str | None = None
    extra: object = field(default=None, compare=False, repr=False)  # e.g. a thumbnail

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict:
        row = {
            "path": self.path,
            "predictions": self.prediction.as_list() if self.prediction else [],
            "error": self.error,
        }
        pred = self.prediction
        if isinstance(pred, Prediction) and pred.novelty is not None:  # user models (core.trust)
            row["unknown"] = pred.unknown
            row["novelty"] = round(pred.novelty, 6)
        return row


def _is_dir(p: Path) -> bool:
    try:  # Path.is_dir raises PermissionError for a path inside a folder we may not enter
        return p.is_dir()
    except OSError:
        return False


def expand_paths(inputs: Iterable[str | os.PathLike], recursive: bool = False, videos: bool = False,
                 skipped: list[tuple[str, str]] | None = None) -> list[str]:
    """Turn the user's files and folders into a list of image files (and with ``videos`` video
    files too), in the order given.

    Folders contribute their image files (sorted by name; hidden files and folders skipped;
    subfolders only with ``recursive``; symlink loops followed once). Files named explicitly are
    kept whatever their extension, and so are paths that do not exist: the loader then reports
    them with a clear reason instead of them silently vanishing. Folders that cannot be read
    are added to ``skipped`` as (folder, reason).
    """
    files: list[str] = []
    for item in inputs:
        p = Path(item)
        if _is_dir(p):
            files.extend(walk_images(p, recursive, videos, skipped))
        else:
            files.append(os.fspath(item))
    return files


def walk_images(root: Path, recursive: bool, videos: bool = False,
                skipped: list[tuple[str, str]] | None = None, within: str | None = None) -> list[str]:
    """Image files (and with ``videos`` video files) under ``root`` (sorted by name, files before
    subfolders, hidden entries skipped, symlink loops followed once). Folders that cannot be read
    go to ``skipped``; so do links to folders outside ``within`` (a dataset's real path), unfollowed."""
    from cnndesk.core.common.links import is_link, leaves

    wanted = is_image_path
    if videos:
        from cnndesk.core.predict.media import is_video_path

        wanted = lambda n: is_image_path(n) or is_video_path(n)  # noqa: E731
    out: list[str] = []
    seen: set[str] = set()

    # depth first with a stack of its own, not recursion: a folder nested 1,100 deep (an archive
    # made so) stopped classify, train and label with "nested too deeply" (RecursionError)
    stack = [(root, os.path.realpath(root))]
    while stack:
        folder, real = stack.pop()
        if real in seen:
            continue
        seen.add(real)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if skipped is not None:
                from cnndesk.core.common.safeio import describe_oserror

                exc.filename = None
                skipped.append((os.fspath(folder), describe_oserror(exc)))
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir():
                    if leaves(e, within):
                        if skipped is not None:
                            skipped.append((e.path, "a link to a folder outside the dataset; not followed"))
                        continue
                    # a real folder's real path is its parent's and its name (realpath on every folder
                    # cost depth lstats each: 10 s for a folder 1,100 deep)
                    sub_real = os.path.realpath(e.path) if is_link(e) else os.path.join(real, e.name)
                    subdirs.append((Path(e.path), sub_real))
                elif e.is_file() and wanted(e.name):
                    out.append(e.path)
            except OSError:
                continue
        if recursive:
            stack.extend(reversed(subdirs))  # the first subfolder is walked next, as before
    return out


# A loader returns the preprocessed array, or (array, extra) to attach something (a thumbnail made
# from the already-decoded image) to the result.
Loader = Callable[[str], "np.ndarray | tuple[np.ndarray, object]"]


def classify_stream(
    paths: Iterable[str],
    classifier,
    *,
    top_k: int = 5,
    batch_size: int | None = None,
    decode_workers: int | None = None,
    total: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    load: Loader | None = None,
    max_in_flight: int | None = None,
    infer: Callable[[np.ndarray], list] | None = None,
    early: EarlyDecode | None = None,
) -> Iterator[FileResult]:
    """Classify ``paths`` (any iterable, consumed lazily) and yield one FileResult per path, in
    input order. A file that cannot be loaded yields a result with ``error`` set; the rest go on.

    ``classifier`` needs ``preprocess`` (with ``.resize``), ``prepare(img)`` and
    ``predict_arrays(batch, k)``. Raises Cancelled when ``cancel`` is set. ``infer`` replaces
    ``predict_arrays`` (e.g. to compute embeddings); its per-image outputs land in ``prediction``.
    ``early``: a decode pool started while the model loaded (:class:`prefetch.EarlyDecode`); the
    stream takes it over (and closes it), using the decodes it already started.
    """
    if infer is None:

        def infer(batch: np.ndarray) -> list:
            return classifier.predict_arrays(batch, top_k)

    system.tune_allocator()
    batch_size = batch_size or getattr(classifier, "preferred_batch", 8)
    workers = decode_workers or (early.workers if early is not None else system.physical_cores())
    # enough decoded images queued that a stall of the model (or of the machine) never idles the
    # decoders: each is one preprocessed array (about 0.6 MB at 224 px)
    limit = max_in_flight or max(batch_size * 2, batch_size + 4 * workers)
    if early is not None and (load is not None or getattr(classifier, "preprocess", None) != early.preprocess):
        early.close()  # decoded by another loader: not used
        early = None
    if load is None:
        min_side = classifier.preprocess.resize

        def load(path: str) -> np.ndarray:
            return classifier.prepare(load_image(path, min_side=min_side))

    if total is None and hasattr(paths, "__len__"):
        total = len(paths)  # type: ignore[arg-type]
    source = enumerate(paths)
    queue: deque[tuple[int, str, Future]] = deque()
    done = 0
    started = time.perf_counter()
    exhausted = False

    def refill(pool, exhausted: bool) -> bool:
        """Submit decodes until ``limit`` are in flight; returns whether the input ran out."""
        while not exhausted and len(queue) < limit:
            try:
                i, path = next(source)
            except StopIteration:
                return True
            path = os.fspath(path)
            fut = early.take(i, path) if early is not None else None
            queue.append((i, path, fut or pool.submit(decode_one, load, path)))
        return exhausted

    pool = early.pool if early is not None else ThreadPoolExecutor(max_workers=workers,
                                                                   thread_name_prefix="cnndesk-decode")
    with pool:
        try:
            while True:
                exhausted = refill(pool, exhausted)
                if not queue:
                    break
                # take the next batch in input order (waiting for its decodes); the decodes of
                # the items behind it carry on while the model runs
                pending: list[tuple[int, str, object, str | None]] = []
                arrays = 0
                while queue and arrays < batch_size:
                    if cancel is not None and cancel.cancelled:
                        raise Cancelled()
                    i, path, fut = queue[0]
                    array, error = _result(fut, cancel)
                    queue.popleft()
                    pending.append((i, path, array, error))
                    arrays += array is not None
                    exhausted = refill(pool, exhausted)  # as we go: the decoders never starve
                if cancel is not None and cancel.cancelled:
                    raise Cancelled()
                preds: list[Prediction] = []
                if arrays:
                    batch = np.stack([_array(a) for _, _, a, _ in pending if a is not None])
                    preds = infer(batch)
                it = iter(preds)
                for i, path, array, error in pending:
                    pred = next(it) if array is not None else None
                    if isinstance(pred, Prediction) and not all(math.isfinite(v) for v in pred.scores):
                        pred, error = None, (f"{os.path.basename(path)}: the model gave no valid score "
                                             "(NaN or infinite: its weights are damaged)")
                    result = FileResult(i, path, pred, error, _extra(array))
                    done += 1
                    yield result
                elapsed = time.perf_counter() - started
                rate = done / elapsed if elapsed > 0 else 0.0
                report(progress, done, total, f"{rate:.1f} images/s")
        finally:
            for _, _, fut in queue:
                fut.cancel()
            if early is not None:
                early.close()


def _array(loaded) -> np.ndarray:
    return loaded[0] if isinstance(loaded, tuple) else loaded


def _extra(loaded) -> object:
    return loaded[1] if isinstance(loaded, tuple) else None


def _result(fut: Future, cancel: CancelToken | None):
    while True:
        try:
            return fut.result(timeout=0.1)
        except TimeoutError:
            if cancel is not None and cancel.cancelled:
                raise Cancelled() from None


def shard_key(path: str) -> tuple:
    """Sort key reproducing the folder walk's order (files of a folder before its subfolders,
    names sorted at each level), so merged shards line up with an unsharded run."""
    parts = os.path.normpath(path).split(os.sep)
    return tuple((1, p) for p in parts[:-1]) + ((0, parts[-1]),)


def select_shard(files: list[str], roots: Iterable[str | os.PathLike], index: int, count: int) -> list[str]:
    """The deterministic 1/count of ``files`` that shard ``index`` (0-based) classifies.

    A file belongs to the shard given by a hash of its path *relative to the root it was found
    under* (sorted, stable across machines and mount points), so Slurm array tasks or Kubernetes
    job indexes can split a folder without talking to each other.
    """
    import hashlib

    if not 0 <= index < count:
        raise ValueError(f"shard {index} of {count} does not exist (use I/N with 0 <= I < N)")
    roots = [os.path.abspath(r) for r in roots]
    out = []
    for f in files:
        absf = os.path.abspath(f)
        rel = os.path.basename(absf)
        for r in roots:
            if os.path.isdir(r) and absf.startswith(r.rstrip(os.sep) + os.sep):
                rel = os.path.relpath(absf, r)
                break
        digest = hashlib.sha256(rel.replace(os.sep, "/").encode("utf-8", "surrogateescape")).digest()  # non-UTF-8 names: their bytes
        if int.from_bytes(digest[:8], "big") % count == index:
            out.append(f)
    return out
