"""Classify a whole video file into a timeline of labelled segments (no Qt, no torch).

Pipeline: a decode thread (PyAV, FFmpeg's own frame threads) reads every frame but converts only
the frames at the sample times (every ``every`` seconds, by the stream's timestamps, so variable
frame rates come out right) to the model's input size; the calling thread classifies them in
batches while decoding goes on. Between two samples the decoder also remembers the frame that
differs most from its predecessor (a cheap grey-thumbnail difference): where the label changes,
that frame, if it is a clear cut, is classified too and the boundary lands on it; otherwise the
boundary goes midway between the samples. Temporal smoothing is a Viterbi pass over the
per-sample probabilities with a switching cost, then single-sample runs are merged away, so one
odd frame does not split a segment.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from cnndesk.core.common.errors import Cancelled, CnndeskError
from cnndesk.core.common.progress import CancelToken, ProgressCallback, report
from cnndesk.core.predict.media import (
    is_media_path,
)
from cnndesk.core.predict.video_checks import declared_duration as _duration
from cnndesk.core.predict.video_checks import frame_too_big, invalid_scores
from cnndesk.core.trust.scores import softmax

DEFAULT_EVERY = 0.5  # seconds between samples: 2 model calls per second of video
SWITCH_COST = 2.5  # Viterbi penalty (in nats) for changing label between two samples
SEEK_STEP = 10.0  # from this step on, seek to each sample instead of decoding all between
_END = object()


class VideoError(CnndeskError):
    """A video could not be read at all; the message names the file and says why in one line."""

    def __init__(self, path, reason: str):
        self.reason = reason
        super().__init__(f"{os.path.basename(os.fspath(path))}: {reason}")


@dataclass
class Segment:
    start: float
    end: float
    label: str
    score: float  # mean probability of ``label`` over the segment's samples
    unknown: bool | None = None  # user models: most of its samples are "not one of my classes"

    def as_dict(self) -> dict:
        d = {"start": round(self.start, 3), "end": round(self.end, 3), "label": self.label, "score": round(self.score, 6)}
        return d if self.unknown is None else {**d, "unknown": self.unknown}


@dataclass
class VideoResult:
    path: str
    segments: list[Segment]
    duration: float  # seconds analysed (up to the damage for a damaged file)
    samples: int = 0
    error: str | None = None
    stopped_at: float | None = None  # where decoding stopped early (damaged or cut-short file)
    top_k: int = 5
    times: list[float] = field(default_factory=list, repr=False)  # sample times
    sample_labels: list[str] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict:
        segs = [s.as_dict() for s in self.segments]
        d = {"path": self.path, "predictions": predictions_from_segments(segs, self.top_k), "error": self.error,
             "segments": segs, "duration": round(self.duration, 3)}
        if self.stopped_at is not None:
            d["stopped_at"] = round(self.stopped_at, 3)
        return d


def predictions_from_segments(segments: list[dict], top_k: int = 5) -> list[dict]:
    """The labels covering the most time; ``score`` is the share of the analysed time."""
    cover: dict[str, float] = {}
    for s in segments:
        cover[s["label"]] = cover.get(s["label"], 0.0) + (s["end"] - s["start"])
    total = sum(cover.values()) or 1.0
    ranked = sorted(cover.items(), key=lambda kv: -kv[1])[:top_k]
    return [{"label": lab, "score": round(sec / total, 6)} for lab, sec in ranked]


# -- opening ------------------------------------------------------------------------------------
def open_video(path):
    """Open ``path`` with PyAV and return ``(container, video_stream)``; VideoError otherwise."""
    import av

    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise VideoError(path, "the file does not exist (was it moved or deleted?)") from None
    except OSError as exc:
        raise VideoError(path, f"cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise VideoError(path, "the file is empty (0 bytes)")
    try:
        container = av.open(path, metadata_errors="ignore")
    except PermissionError:
        raise VideoError(path, "permission denied: cnndesk may not read this file") from None
    except av.error.FFmpegError as exc:
        raise VideoError(path, f"not a readable video: the file is damaged, incomplete or not a video ({_ff(exc)})") from None
    if not container.streams.video:
        what = "an audio file with no pictures" if container.streams.audio else "a file with no video stream"
        container.close()
        raise VideoError(path, f"this is {what}: there is nothing to classify")
    stream = container.streams.video[0]
    cc = stream.codec_context  # the image loader's pixel limit too, before a frame is decoded
    why = ("the video uses a codec this installation cannot decode" if cc is None or not cc.name
           else frame_too_big(cc.width, cc.height))
    if why is not None:
        container.close()
        raise VideoError(path, why)
    stream.thread_type = "AUTO"
    return container, stream


def skip_nonref(stream) -> None:
    """Skip frames no other frame depends on (most B-frames): about half the decoding work, and
    frames stay at most two apart, far finer than the sampling step."""
    try:
        stream.codec_context.skip_frame = "NONREF"
    except (AttributeError, ValueError):  # an older PyAV: decode everything
        pass


def _ff(exc) -> str:
    return getattr(exc, "strerror", None) or str(exc).split(":")[0]


def input_size(width: int, height: int, resize: int) -> tuple[int, int]:
    """The frame size whose shorter side is ``resize`` (as :class:`Preprocess` would resize)."""
    short, long = min(width, height), max(width, height)
    new_long = int(resize * long / short)
    return (resize, new_long) if width <= height else (new_long, resize)


def _thumb(frame, step: int) -> np.ndarray:
    """A small grey thumbnail (about 80 px wide) from the luma plane: four strided reads averaged
    (noise halved) for about 0.03 ms a frame, whatever the resolution."""
    plane = frame.planes[0]
    y = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]
    h, w = (y.shape[0] // step) * step, (y.shape[1] // step) * step
    half = step // 2
    acc = y[:h:step, :w:step].astype(np.float32)
    if half:
        acc += y[half:h:step, half:w:step]
        acc += y[:h:step, half:w:step]
        acc += y[half:h:step, :w:step]
    return acc * (0.25 if half else 1.0)


@dataclass
class _Sample:
    t: float
    array: np.ndarray
    cut_t: float | None = None  # time of the clearest cut in (previous sample, t]
    cut_array: np.ndarray | None = None  # converted cut frame (None: the cut is this frame)
    probs: np.ndarray | None = None
    cut_probs: np.ndarray | None = None
    unknown: bool | None = None  # user models with a novelty detector: "not one of my classes"


class _Decoder(threading.Thread):
    """Decodes every frame, converts the sampled ones, finds the cut in each interval."""

    def __init__(self, container, stream, every: float, convert, out: queue.Queue, cancel: CancelToken):
        super().__init__(name="cnndesk-video-decode", daemon=True)
        self.container, self.stream, self.every = container, stream, every
        self.convert, self.out, self.cancel = convert, out, cancel
        self.first_t: float | None = None
        self.last_end = 0.0
        self.error: str | None = None
        self.step = max(1, (stream.codec_context.width or 80) // 80)
        self.seeking = every >= SEEK_STEP  # long steps: seek (no cut detection between samples)

    def frames(self):
        stream = self.stream
        if not self.seeking:
            for packet in self.container.demux(stream):
                if self.cancel.cancelled:
                    return
                yield from packet.decode()
            return
        tb, origin, target = stream.time_base, stream.start_time or 0, 0.0
        while not self.cancel.cancelled:
            self.container.seek(origin + int(target / tb), stream=stream, backward=True)
            frame = next((f for f in self.container.decode(stream)
                          if f.pts is None or float((f.pts - origin) * tb) + 1e-6 >= target), None)
            if frame is None:
                return
            yield frame
            t = float((frame.pts - origin) * tb) if frame.pts is not None else target
            target = (math.floor(t / self.every + 1e-9) + 1) * self.every

    def put(self, item) -> bool:
        while not self.cancel.cancelled:
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        import av

        stream = self.stream
        rate = stream.average_rate or stream.guessed_rate or 30
        default_dur = 1.0 / float(rate)
        next_t = 0.0
        prev_thumb = None
        diffs: list[float] = []  # frame differences since the last sample
        best: tuple | None = None  # (diff, t, frame) of the biggest one
        last_t = -1.0
        try:
            for frame in self.frames():
                if frame.pts is None:
                    t = last_t + default_dur if last_t >= 0 else 0.0
                else:
                    t = float(frame.pts * frame.time_base)
                if self.first_t is None:
                    start = stream.start_time
                    self.first_t = float(start * stream.time_base) if start is not None else t
                    self.first_t = min(self.first_t, t)
                t -= self.first_t
                if t <= last_t:  # out-of-order or repeated timestamps: keep time moving
                    t = last_t + 1e-6
                dur = float(frame.duration * frame.time_base) if frame.duration else default_dur
                self.last_end = t + dur
                last_t = t
                thumb = None if self.seeking else _thumb(frame, self.step)
                if prev_thumb is not None and thumb is not None and prev_thumb.shape == thumb.shape:
                    diff = float(np.abs(thumb - prev_thumb).mean())
                    diffs.append(diff)
                    if best is None or diff > best[0]:
                        best = (diff, t, frame)  # only this frame is kept, not the interval
                prev_thumb = thumb
                if t + 1e-6 < next_t:
                    continue
                sample = _Sample(t, self.convert(frame))
                if best is not None and _clear_cut(best[0], diffs):
                    sample.cut_t = best[1]
                    if best[2] is not frame:
                        sample.cut_array = self.convert(best[2])
                diffs, best = [], None
                next_t = (math.floor(t / self.every + 1e-9) + 1) * self.every
                if not self.put(sample):
                    return
        except av.error.FFmpegError as exc:
            self.error = f"the video is damaged at {fmt_time(max(last_t, 0.0))}: decoding stopped there ({_ff(exc)})"
        except Exception as exc:  # noqa: BLE001 - reported to the user in one line
            self.error = f"decoding stopped at {fmt_time(max(last_t, 0.0))} ({type(exc).__name__}: {exc})"
        finally:
            self.put(_END)


def _clear_cut(best: float, diffs: list[float]) -> bool:
    """Whether the biggest frame difference of an interval is a clear cut (far above the rest)."""
    rest = sorted(diffs)[:-1]
    typical = rest[len(rest) // 2] if rest else 0.0
    return best >= 8.0 and best >= 4.0 * typical + 4.0


def fmt_time(seconds: float) -> str:
    seconds = max(0.0, seconds)
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:04.1f}"


# -- smoothing and segments ------------------------------------------------------------------------
def smooth_labels(probs: np.ndarray, switch_cost: float = SWITCH_COST) -> np.ndarray:
    """Most likely label sequence: per-sample -log p plus ``switch_cost`` per change (Viterbi),
    then runs of a single sample are merged into a neighbour."""
    n, c = probs.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cost = -np.log(np.maximum(probs.astype(np.float64), 1e-9))
    back = np.zeros((n, c), dtype=np.int32)
    acc = cost[0].copy()
    idx = np.arange(c)
    for j in range(1, n):
        best = int(acc.argmin())
        switch = acc[best] + switch_cost
        stay = acc <= switch
        back[j] = np.where(stay, idx, best)
        acc = np.where(stay, acc, switch) + cost[j]
    labels = np.empty(n, dtype=np.int64)
    labels[-1] = int(acc.argmin())
    for j in range(n - 1, 0, -1):
        labels[j - 1] = back[j, labels[j]]
    return _merge_single_runs(labels, probs)


def _merge_single_runs(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    labels = labels.copy()
    n = len(labels)
    changed = True
    while changed and n >= 3:
        changed = False
        for j in range(n):
            left = labels[j - 1] if j > 0 else None
            right = labels[j + 1] if j < n - 1 else None
            if labels[j] in (left, right):
                continue
            options = [v for v in (left, right) if v is not None]
            labels[j] = max(options, key=lambda v: probs[j, v])
            changed = True
    return labels


def build_segments(samples: list[_Sample], labels: np.ndarray, names, end: float) -> list[Segment]:
    """Segments from the smoothed sample labels; each boundary goes to the cut frame when that is
    where the change happens, otherwise midway between the two samples that differ."""
    if not samples:
        return []
    probs = np.stack([s.probs for s in samples])
    bounds = [0.0]
    for j in range(1, len(samples)):
        a, b = labels[j - 1], labels[j]
        if a == b:
            continue
        s = samples[j]
        lo, hi = samples[j - 1].t, s.t
        where = (lo + hi) / 2
        if s.cut_t is not None:
            cut_is_b = True if s.cut_probs is None else s.cut_probs[b] >= s.cut_probs[a]
            where = s.cut_t if cut_is_b else (s.cut_t + hi) / 2
        bounds.append(where)
    bounds.append(max(end, samples[-1].t))
    segs = []
    run_start = 0
    k = 0
    for j in range(1, len(samples) + 1):
        if j == len(samples) or labels[j] != labels[j - 1]:
            lab = int(labels[run_start])
            score = float(probs[run_start:j, lab].mean())
            flags = [s.unknown for s in samples[run_start:j] if s.unknown is not None]
            unknown = bool(np.mean(flags) > 0.5) if flags else None
            segs.append(Segment(bounds[k], bounds[k + 1], names[lab], score, unknown))
            k += 1
            run_start = j
    return segs


# -- the whole thing ---------------------------------------------------------------------------------
def classify_video(path, classifier, *, every: float = DEFAULT_EVERY, top_k: int = 5,
                   batch_size: int = 4, progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> VideoResult:
    """Classify ``path`` into segments. A file that cannot be opened raises VideoError; a file
    damaged part-way returns the segments up to the damage with ``error`` and ``stopped_at`` set.
    ``classifier`` needs ``preprocess`` (with ``.resize``), ``prepare(PIL image)``, ``logits``
    (a float32 NCHW batch) and ``labels``."""
    if not every > 0:
        raise ValueError("every must be a positive number of seconds")
    cancel = cancel or CancelToken()
    container, stream = open_video(path)
    if every >= 0.2:
        skip_nonref(stream)
    cc = stream.codec_context
    size = input_size(cc.width or 1, cc.height or 1, classifier.preprocess.resize)
    duration = _duration(container, stream)

    def convert(frame) -> np.ndarray:
        if (frame.width, frame.height) != (cc.width, cc.height):  # size changes mid-stream
            if (why := frame_too_big(frame.width, frame.height)) is not None:
                raise VideoError(path, why)
            target = input_size(frame.width, frame.height, classifier.preprocess.resize)
        else:
            target = size
        rgb = frame.to_ndarray(width=target[0], height=target[1], format="rgb24")
        return classifier.prepare(Image.fromarray(rgb))

    q: queue.Queue = queue.Queue(maxsize=4 * batch_size)
    dec = _Decoder(container, stream, every, convert, q, CancelToken())
    samples: list[_Sample] = []
    pending: list[_Sample] = []
    started = time.perf_counter()

    def run_batch() -> None:
        arrays = [s.array for s in pending] + [s.cut_array for s in pending if s.cut_array is not None]
        run = getattr(classifier, "run", None)  # user models: (logits, novelty) in one pass
        logits, novelty = run(np.stack(arrays)) if run else (classifier.logits(np.stack(arrays)), None)
        probs = getattr(classifier, "probabilities", softmax)(logits)  # calibrated where the model is
        thr = getattr(classifier, "novelty_threshold", None)
        extra = len(pending)
        for i, s in enumerate(pending):
            s.probs = probs[i]
            s.unknown = None if novelty is None or thr is None else bool(novelty[i] > thr)
            s.array = None  # type: ignore[assignment]
            if s.cut_array is not None:
                s.cut_probs, s.cut_array = probs[extra], None
                extra += 1
        samples.extend(pending)
        pending.clear()
        done_t = samples[-1].t
        speed = done_t / max(1e-6, time.perf_counter() - started)
        report(progress, int(done_t * 1000), int(duration * 1000) if duration else None,
               f"{fmt_time(done_t)} analysed · {speed:.0f}× real time")

    dec.start()
    try:
        while True:
            try:
                item = q.get(timeout=0.1)
            except queue.Empty:
                if cancel.cancelled:
                    raise Cancelled() from None
                continue
            if item is _END:
                break
            pending.append(item)
            if len(pending) >= batch_size:
                run_batch()
            if cancel.cancelled:
                raise Cancelled()
        if pending:
            run_batch()
    finally:
        dec.cancel.cancel()  # a no-op after a normal end; stops the decoder on errors or cancel
        dec.join(10)
        container.close()
    if not samples and dec.error is None:
        raise VideoError(path, "the video has no frames that can be decoded")
    end = dec.last_end
    error, stopped = dec.error, None
    if error is not None:
        stopped = end
    elif duration and end < duration - max(1.0, 2 * every, 0.05 * duration):
        stopped = end
        error = f"the video is damaged or cut short: analysed up to {fmt_time(end)} of {fmt_time(duration)}"
    elif duration:
        end = max(end, duration)  # sampled to the end (seeking stops at the last sample)
    if (error is not None and not samples) or invalid_scores(samples):  # NaN scores: no label, as for images
        raise VideoError(path, invalid_scores(samples) or error)
    names = classifier.labels
    probs = np.stack([s.probs for s in samples])
    labels = smooth_labels(probs)
    segments = build_segments(samples, labels, names, end)
    return VideoResult(os.fspath(path), segments, end, len(samples), error, stopped, top_k,
                       [s.t for s in samples], [names[i] for i in probs.argmax(1)])


def classify_paths(files: list[str], classifier, *, top_k: int = 5, batch_size: int | None = None,
                   every: float | None = None, progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None):
    """Rows (``as_dict`` shapes) for a mix of images and videos, in input order: runs of images
    go through the folder pipeline, each video through :func:`classify_video`."""
    from cnndesk.core.predict.stream import classify_stream

    i = 0
    while i < len(files):
        if not is_media_path(files[i]):
            j = i
            while j < len(files) and not is_media_path(files[j]):
                j += 1
            for r in classify_stream(files[i:j], classifier, top_k=top_k, batch_size=batch_size, cancel=cancel):
                yield r.as_dict()
            i = j
            continue
        path = files[i]
        name = os.path.basename(path)

        def tell(done, total, message, name=name):
            report(progress, done, total, f"{name}: {message}")

        try:
            result = classify_video(path, classifier, every=every or DEFAULT_EVERY, top_k=top_k,
                                    batch_size=batch_size or 4, progress=tell, cancel=cancel)
            yield result.as_dict()
        except VideoError as exc:
            yield {"path": path, "predictions": [], "error": str(exc), "segments": []}
        i += 1
