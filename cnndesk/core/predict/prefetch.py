"""Decoding a folder's first images before the model is ready.

Loading a model (imports, the ONNX Runtime session) keeps one core busy for a few hundred
milliseconds while the other waits; a folder job can decode its first photos meanwhile: only the
model's preprocessing (from its registry entry) is needed to decode. :class:`EarlyDecode` starts
the stream's decode pool early; :func:`cnndesk.core.predict.stream.classify_stream` takes it over
(``early=``), so every image is still decoded exactly once, by the same loader: no answer changes.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

from cnndesk.core.common.errors import CnndeskError, ImageLoadError
from cnndesk.core.images.load import load_image
from cnndesk.core.images.preprocess import Preprocess


def preprocess_loader(preprocess: Preprocess):
    """The folder stream's default loader for a model with this preprocessing (what
    ``classifier.prepare(load_image(path, min_side=...))`` does)."""

    def load(path: str):
        return preprocess(load_image(path, min_side=preprocess.resize))

    return load


def decode_one(load, path: str):
    """(loaded, None) or (None, plain reason): one odd file never stops a folder."""
    try:
        return load(path), None
    except ImageLoadError as exc:
        return None, str(exc)
    except CnndeskError as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"{os.path.basename(path)}: could not be processed ({exc})"


class EarlyDecode:
    """A decode pool started before the model loads, already decoding the first ``count`` of
    ``paths`` with ``preprocess``. Hand it to ``classify_stream(..., early=...)``, or
    :meth:`close` it when the model cannot be loaded."""

    def __init__(self, paths: list[str], preprocess: Preprocess, workers: int, count: int):
        self.preprocess = preprocess
        self.paths = [os.fspath(p) for p in paths]
        self.workers = max(1, workers)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="cnndesk-decode")
        load = preprocess_loader(preprocess)
        self.futures: dict[int, Future] = {
            i: self.pool.submit(decode_one, load, p) for i, p in enumerate(self.paths[:max(0, count)])
        }

    def take(self, index: int, path: str) -> Future | None:
        """The decode already started for item ``index`` (None when it was not started early)."""
        if index < len(self.paths) and self.paths[index] == path:
            return self.futures.pop(index, None)
        return None

    def close(self) -> None:
        for f in self.futures.values():
            f.cancel()
        self.futures.clear()
        self.pool.shutdown(wait=True, cancel_futures=True)
