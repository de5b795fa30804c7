"""Every job of the Qt layer, in one place: plain functions ``fn(job, ...)`` run by the worker
abstraction (:mod:`cnndesk.qt.workers`). Each calls the core and *creates* its results - typed
objects (the dataclasses below or the core's own result types) made of plain data and QImages,
never QPixmaps or widgets - so no job writes to an object the UI thread reads. Errors are raised
as the core's typed exceptions. (The training dialog's scan and train jobs live with the dialog,
in the training lane.)"""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from cnndesk.core.common.errors import CnndeskError, ModelError
from cnndesk.core.images.load import load_image
from cnndesk.core.predict.classifier import Classifier, Prediction
from cnndesk.core.predict.media import is_video_path
from cnndesk.core.predict.stream import FileResult, classify_stream, expand_paths
from cnndesk.qt.imaging import (
    THUMB,
    display_copy,
    gray_to_qimage,
    pil_to_qimage,
    qimage_to_pil,
    thumbnail,
)

_ids = itertools.count(1)

# decode at least this short side for display (the loader keeps >= 2x, so about 1200 px)
DISPLAY_MIN_SIDE = 600


# -- the session gallery ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ImageResult:
    """One image in the session gallery. Immutable: a job returns a new one (same ``id``) and
    the gallery swaps it in on the UI thread. Its thumbnail and display image live in the
    gallery's bounded caches, not here."""

    name: str
    path: str | None
    prediction: Prediction | None = None
    error: str | None = None
    source: Any = None  # a PIL image for pasted images and snapshots (no file to re-read)
    original_size: tuple[int, int] | None = None
    id: int = field(default_factory=lambda: next(_ids))


@dataclass(frozen=True)
class ItemImages:
    """The thumbnail (and, when asked for, the display image: at most 1600 px) of one item."""

    item_id: int
    thumb: Any = None  # QImage
    display: Any = None  # QImage


@dataclass(frozen=True)
class ItemClassified:
    """A partial result of :func:`classify_items`: the new item and its images."""

    item: ImageResult
    images: ItemImages


def list_user_models(job) -> tuple[list, list]:
    """(usable, unusable) model files of the models folder, checked off the UI thread."""
    from cnndesk.core.models.registry import user_model_entries

    return user_model_entries()


def load_classifier(job, spec, device: str) -> Classifier:
    return Classifier(spec, device=device, progress=job.progress, cancel=job.cancel, background_export=True)


def _classify_image(clf: Classifier, img: Image.Image, top_k: int) -> Prediction:
    pred = clf.predict_arrays(clf.prepare(img)[None], top_k)[0]
    if not all(math.isfinite(s) for s in pred.scores):  # never show "nan%"
        raise ModelError("the model gave no valid score (NaN or infinite: its weights are damaged)")
    return pred


def _decode(item: ImageResult, min_side: int = DISPLAY_MIN_SIDE) -> Image.Image:
    return item.source if item.source is not None else load_image(item.path, min_side=min_side)


def classify_items(job, clf: Classifier, items: list[ImageResult], top_k: int,
                   displays: frozenset[int] = frozenset()) -> list[ImageResult]:
    """Load, classify and thumbnail each item (and make the display image of the items whose id
    is in ``displays``); each finished item is a partial :class:`ItemClassified` carrying a *new*
    ImageResult. Returns the new items."""
    done = []
    for i, item in enumerate(items):
        job.cancel.raise_if_cancelled()
        images = ItemImages(item.id)
        try:
            img = _decode(item)
            new = ImageResult(item.name, item.path, _classify_image(clf, img, top_k), None, item.source,
                              img.info.get("original_size", img.size), item.id)
            display = pil_to_qimage(display_copy(img)) if item.id in displays else None
            images = ItemImages(item.id, thumbnail(img), display)
        except CnndeskError as exc:
            new = ImageResult(item.name, item.path, None, str(exc), item.source, item.original_size, item.id)
        job.partial(ItemClassified(new, images))
        job.progress(i + 1, len(items), item.name)
        done.append(new)
    return done


def gallery_images(job, wanted: list[tuple[ImageResult, bool]]) -> None:
    """Thumbnails (and display images where the flag says so) made again for gallery items whose
    cached ones were evicted: partial :class:`ItemImages`."""
    for item, with_display in wanted:
        job.cancel.raise_if_cancelled()
        try:
            img = _decode(item, DISPLAY_MIN_SIDE if with_display else THUMB)
        except CnndeskError:
            continue
        job.partial(ItemImages(item.id, thumbnail(img), pil_to_qimage(display_copy(img)) if with_display else None))


def image_from_clipboard(job, qimage) -> ImageResult:
    """Build a gallery item from a pasted or dropped QImage (converted on the worker)."""
    img = qimage_to_pil(qimage)
    return ImageResult(name=f"Pasted image {time.strftime('%H:%M:%S')}", path=None, source=img)


def load_paths_as_items(paths: list[str]) -> list[ImageResult]:
    return [ImageResult(name=os.path.basename(p) or p, path=p) for p in paths]


def paths_in_text(text: str) -> list[str]:
    """Existing files or folders named in pasted text: one per line, plain or ``file://`` URLs,
    with or without quotes (what "Copy path" in file managers puts on the clipboard)."""
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


# -- folders, thumbnails, sorting -------------------------------------------------------------
@dataclass(frozen=True)
class SkippedSorted:
    folders: list[str]  # sort destinations below the opened folder, left out


@dataclass(frozen=True)
class SkippedFiles:
    """Files in the opened folders that are not images cnndesk reads (doc.pdf, image.svg, clip.mp4)."""

    count: int
    kinds: list[str]  # their extensions, the most common first (".pdf", ".svg", "no extension")
    videos: int = 0  # of count: videos (they have their own timeline: Camera / Video)

    def describe(self) -> str:
        parts = []
        others = self.count - self.videos
        if others:
            kinds = [k for k in self.kinds if not is_video_path("x" + k)]
            shown = ", ".join(kinds[:4]) + (", …" if len(kinds) > 4 else "")
            s = "s" if others != 1 else ""
            parts.append(f"skipped {others:,} file{s} that {'are' if s else 'is'} not a photo format cnndesk reads "
                         f"({shown}; PDFs, SVG drawings and documents are left out)")
        if self.videos:
            s = "s" if self.videos != 1 else ""
            vkinds = ", ".join(k for k in self.kinds if is_video_path("x" + k))
            verb = "skipped" if not parts else "and"
            parts.append(f"{verb} {self.videos:,} video{s} ({vkinds}): open one with Camera / Video (Ctrl+K) for its timeline")
        return " ".join(parts) if len(parts) < 2 else f"{parts[0]}, {parts[1]}"


def not_images(roots: list[str], recursive: bool = True) -> SkippedFiles | None:
    """Count the visible files under ``roots`` that the folder walk leaves out as not images."""
    from collections import Counter

    from cnndesk.core.images.load import is_image_path

    kinds: Counter[str] = Counter()
    for root in roots:
        if not os.path.isdir(root):
            continue
        for _folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
            for f in files:
                if not f.startswith(".") and not is_image_path(f):
                    kinds[os.path.splitext(f)[1].lower() or "no extension"] += 1
    if not kinds:
        return None
    videos = sum(n for k, n in kinds.items() if is_video_path("x" + k))
    return SkippedFiles(sum(kinds.values()), [k for k, _ in kinds.most_common()], videos)


@dataclass(frozen=True)
class FolderBatch:
    results: list[FileResult]
    done: int
    total: int
    rate: float


def classify_folder(job, clf: Classifier, roots: list[str], top_k: int, recursive: bool = True) -> int:
    """Expand folders, classify everything with the streaming pipeline, and emit results in
    batches (at most every 100 ms) so a 10,000-file table grows smoothly. Returns the count."""
    from cnndesk.core.organize.journal import exclude_sorted

    # files cnndesk sorted into <folder>/sorted before are not the folder's own photos
    files, skipped = exclude_sorted(expand_paths(roots, recursive=recursive), roots)
    total = len(files)
    job.progress(0, total, "Scanning")
    if skipped:
        job.partial(SkippedSorted(skipped))
    others = not_images(roots, recursive)
    if others is not None:  # said when the folder is done (a PDF left out without a word looked lost)
        job.partial(others)
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


@dataclass(frozen=True)
class Thumb:
    key: Any  # what the asker files it under (a table row, a path)
    path: str
    image: Any  # QImage


def thumbnails(job, wanted: list[tuple[Any, str]], size: int = 64, min_side: int | None = None) -> None:
    """Thumbnails of files (table rows scrolled back into view, doctor and evaluation tiles):
    a partial :class:`Thumb` for each readable one."""
    for key, path in wanted:
        job.cancel.raise_if_cancelled()
        try:
            job.partial(Thumb(key, path, thumbnail(load_image(path, min_side=min_side or size), size)))
        except CnndeskError:
            continue


def sort_files(job, plan, mode: str, journal, dest: str, roots: list[str]):
    """Move or copy the planned files, journaled (so Undo puts them back)."""
    from cnndesk.core.organize import sorting

    report = sorting.execute(plan, mode, job.progress, job.cancel)
    journal.record_sort(report, mode, dest, roots)  # also marks dest so it is not re-read
    return report


def undo(job, journal, entry):
    return journal.undo(entry, job.progress, job.cancel)


# -- camera and video -------------------------------------------------------------------------
def save_sample(job, image, folder, cls: str, stamp: str, n: int):
    """Write one camera frame (a QImage) as a JPEG into the class folder: atomically, never over
    an existing file (or a planted symlink). Returns the path."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    from cnndesk.core.common.safeio import safe_write, unique_path

    folder.mkdir(parents=True, exist_ok=True)
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buf, "JPG", 92):
        raise OSError("could not encode the camera frame")
    for _ in range(100):
        target, _ = unique_path(folder / f"{cls}_{stamp}_{n:04d}.jpg")
        try:
            with safe_write(target, "wb", overwrite=False) as fh:
                fh.write(bytes(data))
            return target
        except FileExistsError:
            continue
    raise OSError(f"no free file name in {folder}")


def classify_video(job, path: str, clf: Classifier, every: float):
    from cnndesk.core.predict.video import classify_video as run

    return run(path, clf, every=every, progress=job.progress, cancel=job.cancel)


def export_clips(job, video_path: str, segments, folder: str) -> list:
    from cnndesk.core.predict.clips import export_label_clips

    return export_label_clips(video_path, segments, folder, progress=job.progress, cancel=job.cancel)


# -- models: export, dataset check, explaining ------------------------------------------------
def export_bundle(job, model_path: str, fmt: str, out: str, data: str | None):
    """The bundle and its parity report."""
    from cnndesk.core.export.bundle import export_bundle as run

    return run(model_path, fmt, out, data=data or None, progress=job.progress, cancel=job.cancel)


def check_dataset(job, root: str, base: str, device: str):
    from cnndesk.core.doctor import check as doctor

    return doctor.check_dataset(root, base=base, progress=job.progress, cancel=job.cancel, device=device,
                                less_likely=True)  # the panel hides those unless "Show less likely"


@dataclass(frozen=True)
class ExplainerReady:
    explainer: Any
    stages: list
    filters: list  # QImages of the first layer's filters
    summary: str


@dataclass(frozen=True)
class Heatmap:
    image: Image.Image  # the picture explained (at most 1200 px)
    heat: Any  # the heat map at the picture's size
    index: int  # the class explained
    overlay: Any  # QImage


@dataclass(frozen=True)
class FeatureMaps:
    stage: str
    maps: list  # QImages
    order: list[int]


def load_explainer(job, spec) -> ExplainerReady:
    import numpy as np

    from cnndesk.core.predict.explain import Explainer

    job.progress(0, None, "Loading PyTorch to look inside the network…")
    ex = Explainer(spec)
    stages = ex.stages()
    filters = [pil_to_qimage(Image.fromarray((f * 255).astype(np.uint8)).resize((24, 24), Image.Resampling.NEAREST))
               for f in ex.first_conv_filters()]
    return ExplainerReady(ex, stages, filters, ex.summary_text())


def heatmap(job, explainer, classifier, source, method: str, class_index, opacity: float) -> Heatmap:
    from cnndesk.core.predict import explain

    img = source if isinstance(source, Image.Image) else load_image(source, min_side=600)
    img = display_copy(img, 1200)
    job.cancel.raise_if_cancelled()
    if method == "occlusion":
        heat, idx = explain.occlusion(classifier, img, class_index, cancel=job.cancel)
    else:
        heat, idx = explainer.gradcam(img, class_index)
    full = explain.to_image_heat(heat, img.size, explainer.preprocess if explainer else classifier.preprocess)
    return Heatmap(img, full, idx, pil_to_qimage(explain.overlay(img, full, opacity)))


def overlay(job, image, heat, opacity: float):
    from cnndesk.core.predict import explain

    return pil_to_qimage(explain.overlay(image, heat, opacity))


def feature_maps(job, explainer, source, stage: str) -> FeatureMaps:
    img = source if isinstance(source, Image.Image) else load_image(source, min_side=256)
    maps, order = explainer.feature_maps(img, stage, limit=48)
    return FeatureMaps(stage, [gray_to_qimage(m) for m in maps], [int(c) for c in order])


# -- the training dialog --------------------------------------------------------------------------


@dataclass(frozen=True)
class ScannedDataset:
    dataset: Any  # core.training.datasets.Dataset
    thumbs: dict  # class name -> up to three thumbnails (QImage)


def scan_dataset(job, folder: str, val_split: float, seed: int) -> ScannedDataset:
    """Scan the dataset and make up to three thumbnails per class (on the worker)."""
    from cnndesk.core.training.datasets import scan

    ds = scan(folder, val_split=val_split, seed=seed)
    thumbs: dict[str, list] = {}
    for i, name in enumerate(ds.classes):
        files = [p for p, y in ds.train + ds.val if y == i][:3]
        thumbs[name] = []
        for p in files:
            job.cancel.raise_if_cancelled()
            try:
                thumbs[name].append(thumbnail(load_image(p, min_side=64), 56))
            except CnndeskError:
                continue
    return ScannedDataset(ds, thumbs)


def train_model(job, ds, config):
    """Train (quick or full); each epoch's statistics arrive as partial results."""
    from cnndesk.core.training.dispatch import train

    return train(ds, config, progress=job.progress, cancel=job.cancel, on_epoch=job.partial)


# -- the on-disk caches (Preferences) -----------------------------------------------------------
@dataclass(frozen=True)
class CacheSizes:
    """Each cache's size (core ``CacheInfo`` rows), the cap, and what a clear just did."""

    caches: tuple
    limit: int
    cleared: Any = None  # a core ClearResult after a clear


def cache_sizes(job) -> CacheSizes:
    """Measure the caches (walks their folders: never on the UI thread)."""
    from cnndesk.core.common import cache_budget

    return CacheSizes(tuple(cache_budget.info()), cache_budget.limit_bytes())


def clear_cache(job, what: str) -> CacheSizes:
    """Clear one cache (or ``all``; entries in use stay), then measure again."""
    from cnndesk.core.common import cache_budget

    cleared = cache_budget.clear(what)
    return CacheSizes(tuple(cache_budget.info()), cache_budget.limit_bytes(), cleared)
