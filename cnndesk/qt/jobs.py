"""Job functions run by the worker abstraction: plain functions ``fn(job, ...)`` that call the core
and return plain data (QImages, never QPixmaps). No widgets here."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from PIL import Image

from cnndesk.core.errors import CnndeskError
from cnndesk.core.images import load_image
from cnndesk.core.inference import Classifier, Prediction
from cnndesk.core.pipeline import FileResult, classify_stream, expand_paths
from cnndesk.qt.imaging import display_copy, pil_to_qimage, qimage_to_pil, thumbnail

_ids = itertools.count(1)

# decode at least this short side for display (the loader keeps >= 2x, so about 1200 px)
DISPLAY_MIN_SIDE = 600


@dataclass
class ImageResult:
    """One classified image in the session gallery."""

    name: str
    path: str | None
    prediction: Prediction | None = None
    error: str | None = None
    thumb: object = None  # QImage
    display: object = None  # QImage, at most 1600 px
    source: object = None  # a PIL image for pasted images (no file to re-read)
    original_size: tuple[int, int] | None = None
    id: int = field(default_factory=lambda: next(_ids))


def load_classifier(job, spec, device: str) -> Classifier:
    return Classifier(spec, device=device, progress=job.progress, cancel=job.cancel, background_export=True)


def _classify_image(clf: Classifier, img: Image.Image, top_k: int) -> Prediction:
    import math

    from cnndesk.core.errors import ModelError

    pred = clf.predict_arrays(clf.prepare(img)[None], top_k)[0]
    if not all(math.isfinite(s) for s in pred.scores):  # never show "nan%"
        raise ModelError("the model gave no valid score (NaN or infinite: its weights are damaged)")
    return pred


def classify_items(job, clf: Classifier, items: list[ImageResult], top_k: int) -> list[ImageResult]:
    """Load, classify and thumbnail each item; emits each finished item as a partial result."""
    done = []
    for i, item in enumerate(items):
        job.cancel.raise_if_cancelled()
        try:
            if item.source is not None:
                img = item.source
            else:
                img = load_image(item.path, min_side=DISPLAY_MIN_SIDE)
            item.original_size = img.info.get("original_size", img.size)
            item.prediction = _classify_image(clf, img, top_k)
            item.error = None
            if item.thumb is None:
                item.thumb = thumbnail(img)
            if item.display is None:
                item.display = pil_to_qimage(display_copy(img))
        except CnndeskError as exc:
            item.error, item.prediction = str(exc), None
        job.partial(item)
        job.progress(i + 1, len(items), item.name)
        done.append(item)
    return done


def image_from_clipboard(qimage) -> ImageResult:
    """Build a gallery item from a pasted QImage (converted on the worker)."""
    img = qimage_to_pil(qimage)
    return ImageResult(name=f"Pasted image {time.strftime('%H:%M:%S')}", path=None, source=img)


@dataclass
class SkippedSorted:
    folders: list[str]  # sort destinations below the opened folder, left out


@dataclass
class FolderBatch:
    results: list[FileResult]
    done: int
    total: int
    rate: float


def classify_folder(job, clf: Classifier, roots: list[str], top_k: int, recursive: bool = True):
    """Expand folders, classify everything with the streaming pipeline, and emit results in
    batches (at most every 100 ms) so a 10,000-file table grows smoothly."""
    from cnndesk.core.journal import exclude_sorted

    # files cnndesk sorted into <folder>/sorted before are not the folder's own photos
    files, skipped = exclude_sorted(expand_paths(roots, recursive=recursive), roots)
    total = len(files)
    job.progress(0, total, "Scanning")
    if skipped:
        job.partial(SkippedSorted(skipped))
    min_side = clf.preprocess.resize

    def load(path: str):
        img = load_image(path, min_side=min_side)
        return clf.prepare(img), thumbnail(img, 64)

    pending: list[FileResult] = []
    last = time.perf_counter()
    started = last
    done = 0
    for result in classify_stream(files, clf, top_k=top_k, cancel=job.cancel, load=load):
        pending.append(result)
        done += 1
        now = time.perf_counter()
        if now - last >= 0.1 or done == total:
            rate = done / (now - started) if now > started else 0.0
            job.partial(FolderBatch(pending, done, total, rate))
            job.progress(done, total, f"{rate:.1f} images/s")
            pending, last = [], now
    if pending:
        job.partial(FolderBatch(pending, done, total, 0.0))
    return total


def reclassify(job, clf: Classifier, items: list[ImageResult], top_k: int):
    """After a model switch: classify the gallery again (images are re-read on the worker)."""
    for item in items:
        item.prediction = None
    return classify_items(job, clf, items, top_k)


def load_paths_as_items(paths: list[str]) -> list[ImageResult]:
    import os

    return [ImageResult(name=os.path.basename(p) or p, path=p) for p in paths]


def paths_in_text(text: str) -> list[str]:
    """Existing files or folders named in pasted text: one per line, plain or ``file://`` URLs,
    with or without quotes (what "Copy path" in file managers puts on the clipboard)."""
    import os
    from urllib.parse import unquote, urlparse

    out = []
    for line in (text or "").splitlines()[:1000]:
        s = line.strip().strip('"').strip("'")
        if s.startswith("file://"):
            s = unquote(urlparse(s).path)
        s = os.path.expanduser(s)
        if s and os.path.exists(s):
            out.append(os.path.abspath(s))
    return out


def thumbnails(job, wanted: list[tuple[int, str]], size: int = 64):
    """Thumbnails made again for table rows scrolled back into view: partial (row, path, QImage)."""
    for row, path in wanted:
        job.cancel.raise_if_cancelled()
        try:
            job.partial((row, path, thumbnail(load_image(path, min_side=size), size)))
        except CnndeskError:
            continue
