"""The one worker abstraction of the Qt layer (the contract every job follows).

A job is a plain function ``fn(job: JobContext, *args)`` - a core function or a small named
function in :mod:`cnndesk.qt.jobs`, the one place jobs live - that may call ``job.progress(done,
total, text)``, ``job.partial(obj)`` and check ``job.cancel`` (the core's CancelToken, passed
straight into core calls). It runs as a QRunnable on a QThreadPool; its signals (started /
progress / partial / result / error / cancelled / finished) arrive on the UI thread, as in
superqt's ``WorkerBase`` and Orange's ``ConcurrentMixin``.

The contract:

- results and partial results are typed objects (dataclasses or the core's result types) that the
  job *creates*; a job never writes to an object the UI thread reads - the UI applies a result on
  its own thread;
- an error arrives as the exception object with its type (``on_error(exc)``): a
  :class:`~cnndesk.core.common.errors.CnndeskError` whose ``str()`` is the message for the user; anything
  else (a bug, an OS error) is logged in full and arrives wrapped in :class:`JobFailed`, whose
  ``str()`` is one plain line and whose ``original`` (and ``__cause__``) is the exception itself.
  Callers branch with ``isinstance``, never on the message text;
- starting a job of a *kind* cancels the stale job of the same kind; its late signals are dropped;
- a job started in a *scope* (e.g. ``"model"``) carries that scope's epoch: :meth:`JobRunner.new_epoch`
  (a model switch) cancels every job of the scope, exclusive or not, and drops whatever they
  deliver later, their result included - an older model's answers never land;
- ``drain()`` cancels everything and waits (on quit).

Two threads are not jobs, deliberately, and are *adopted* instead (:meth:`JobRunner.adopt`), so
``drain()`` stops and waits for them too:

- the camera's live inference (``core.predict.live.LatestOnlyRunner``): one thread that runs the
  model on the newest frame only; a job per frame would queue frames and cost a thread hop each;
- the first answer's background ONNX export (``core.runtime.backends.UpgradingBackend``): it
  lives with the Classifier, outside the UI's jobs, and cannot be cancelled midway (torch's
  exporter); quitting waits for it instead of finalizing the interpreter under it.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from cnndesk.core.common.errors import Cancelled, CnndeskError
from cnndesk.core.common.progress import CancelToken

log = logging.getLogger("cnndesk")


class JobKind(StrEnum):
    """Every kind of job the app runs (one live job per kind, unless started non-exclusive)."""

    CACHE = "cache"
    DOCTOR = "doctor"
    DOCTOR_BIG_IMAGES = "doctor-big"
    DOCTOR_ICONS = "doctor-icons"
    EVALUATION_THUMBS = "eval-thumbs"
    EXPLAINER = "explainer"
    EXPORT = "export"
    FOLDER = "folder"
    HEATMAP = "heat"
    FEATURE_MAPS = "maps"
    MODEL = "model"
    MODEL_LIST = "model-list"
    OVERLAY = "overlay"
    PASTE = "paste"
    SAMPLE = "sample"
    SCAN = "scan"
    SORT = "sort"
    THUMBS = "thumbs"
    TRAIN = "train"
    UNDO = "undo"
    VIDEO_CLIPS = "video-clips"
    VIDEO_ANALYSIS = "video-analysis"
    IMAGES = "images"
    GALLERY_DISPLAY = "gallery-display"
    GALLERY_THUMBS = "gallery-thumbs"
    LABEL_OPEN = "label-open"  # the Label workspace: open a folder (embeddings, groups)
    LABEL = "label"  # its answers applied and the suggestions refitted (one job owns the session)
    LABEL_THUMBS = "label-thumbs"
    LABEL_IMAGE = "label-image"
    LABEL_TRAIN = "label-train"  # "Train now": a model from the labels so far (not the session)


class JobFailed(CnndeskError):
    """A job stopped on an unexpected exception (a bug, an OS error): ``str()`` is one plain line
    for the user (the details are in the log), ``original`` the exception itself."""

    def __init__(self, original: BaseException, message: str):
        super().__init__(message)
        self.original = original
        self.__cause__ = original


class JobSignals(QObject):
    started = Signal()
    progress = Signal(int, object, str)  # done, total (int or None), text
    partial = Signal(object)
    result = Signal(object)
    error = Signal(object)  # a CnndeskError (JobFailed wraps anything else)
    cancelled = Signal()
    finished = Signal()


class JobContext:
    """What a job function sees: progress/partial reporting and the cancel token."""

    def __init__(self, signals: JobSignals, cancel: CancelToken):
        self._signals = signals
        self.cancel = cancel

    def progress(self, done: int, total: int | None = None, text: str = "") -> None:
        if not self.cancel.cancelled:
            self._signals.progress.emit(done, total, text)

    def partial(self, obj: Any) -> None:
        if not self.cancel.cancelled:
            self._signals.partial.emit(obj)


class Job(QRunnable):
    def __init__(self, fn: Callable[..., Any], *args: Any, kind: str = "", keep_result: bool = False,
                 scope: str | None = None, epoch: int = 0):
        super().__init__()
        self.keep_result = keep_result  # deliver the return value even after a cancel
        self.setAutoDelete(False)  # the runner keeps a reference until finished
        self.fn, self.args, self.kind = fn, args, kind
        self.scope, self.epoch = scope, epoch
        self.stale = False  # its scope moved on: nothing it sends is delivered (UI thread only)
        self.signals = JobSignals()
        self.cancel = CancelToken()
        self.done = False

    def run(self) -> None:
        sig = self.signals
        try:
            if self.cancel.cancelled:
                sig.cancelled.emit()
                return
            sig.started.emit()
            value = self.fn(JobContext(sig, self.cancel), *self.args)
            if self.cancel.cancelled and not self.keep_result:
                sig.cancelled.emit()
            else:
                sig.result.emit(value)
        except Cancelled:
            sig.cancelled.emit()
        except CnndeskError as exc:
            if not self.cancel.cancelled:
                sig.error.emit(exc)
        except Exception as exc:  # a bug or an OS error: log it fully (log file too), show one line
            from cnndesk import crash

            log.error("job %s failed:\n%s", self.kind or self.fn.__name__, traceback.format_exc())
            crash.log_exception(exc)
            if not self.cancel.cancelled:
                sig.error.emit(JobFailed(exc, crash.plain_reason(exc)))
        finally:
            self.done = True
            sig.finished.emit()


class JobRunner(QObject):
    """Starts jobs on a thread pool; one live job per kind; epochs per scope; drains on quit."""

    def __init__(self, parent: QObject | None = None, max_threads: int | None = None):
        super().__init__(parent)
        # a pure-Python job hands the GIL back to the UI thread every 1 ms (Python's 5 ms default
        # let one stall the UI for tens of ms on a busy machine: the Label workspace's 50 ms test)
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        self.pool = QThreadPool(self)
        if max_threads:
            self.pool.setMaxThreadCount(max_threads)
        self._by_kind: dict[str, Job] = {}
        self._live: set[Job] = set()
        self._epochs: dict[str, int] = {}
        self._adopted: dict[str, Callable[[float], bool]] = {}
        self._drained = False

    def adopt(self, name: str, stop_and_wait: Callable[[float], bool]) -> None:
        """Make a thread that lives outside the job contract visible to :meth:`drain`:
        ``stop_and_wait(seconds)`` asks it to stop (where it can) and waits at most that long,
        True when it has ended. Adopting again under the same name replaces the earlier one."""
        self._adopted[name] = stop_and_wait

    def adopted(self) -> list[str]:
        return list(self._adopted)

    def start(
        self,
        kind: str,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[CnndeskError], None] | None = None,
        on_progress: Callable[[int, Any, str], None] | None = None,
        on_partial: Callable[[Any], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        on_started: Callable[[], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        exclusive: bool = True,
        keep_result: bool = False,
        scope: str | None = None,
    ) -> Job:
        """Run ``fn(job, *args)`` on the pool. With ``exclusive`` a running job of the same kind
        is cancelled first and its signals are ignored from now on. With ``keep_result`` a job
        that stops early on cancel still delivers what it returns (e.g. the best model so far).
        With ``scope`` the job belongs to that scope's current epoch (see :meth:`new_epoch`)."""
        if exclusive:
            self.cancel(kind)
        job = Job(fn, *args, kind=kind, keep_result=keep_result, scope=scope, epoch=self.epoch(scope))
        if self._drained:  # quitting: nothing new starts (a late timer, a queued request)
            job.cancel.cancel()
            job.done = True
            return job
        s = job.signals

        def current() -> bool:
            return not job.cancel.cancelled and not job.stale

        if on_started:
            s.started.connect(lambda: current() and on_started())
        if on_progress:
            s.progress.connect(lambda d, t, m: current() and on_progress(d, t, m))
        if on_partial:
            s.partial.connect(lambda obj: current() and on_partial(obj))
        if on_result:
            s.result.connect(lambda v: not job.stale and (keep_result or current()) and on_result(v))
        if on_error:
            s.error.connect(lambda exc: current() and on_error(exc))
        if on_cancelled:
            s.cancelled.connect(on_cancelled)  # a stale job was cancelled too: the UI may say so
        s.finished.connect(lambda: self._finished(job, on_finished))
        if exclusive:
            self._by_kind[kind] = job
        self._live.add(job)
        self.pool.start(job)
        return job

    def _finished(self, job: Job, on_finished) -> None:
        self._live.discard(job)
        if self._by_kind.get(job.kind) is job:
            del self._by_kind[job.kind]
        if on_finished and not job.cancel.cancelled and not job.stale:
            on_finished()

    def cancel(self, kind: str) -> None:
        job = self._by_kind.pop(kind, None)
        if job is not None:
            job.cancel.cancel()

    def epoch(self, scope: str | None) -> int:
        return self._epochs.get(scope, 0) if scope else 0

    def new_epoch(self, scope: str) -> int:
        """Start a new epoch of ``scope`` (e.g. the model changed): every live job started in an
        older one is cancelled and nothing it sends from now on reaches its callbacks."""
        self._epochs[scope] = self.epoch(scope) + 1
        for job in list(self._live):
            if job.scope == scope and job.epoch != self._epochs[scope]:
                job.stale = True
                job.cancel.cancel()
                if self._by_kind.get(job.kind) is job:
                    del self._by_kind[job.kind]
        return self._epochs[scope]

    def running(self, kind: str) -> bool:
        """Whether a job of ``kind`` is live as far as the UI knows: False once it was cancelled
        or once its result/error *and* finished signals were delivered."""
        return kind in self._by_kind

    @property
    def drained(self) -> bool:
        """True once :meth:`drain` ran (quitting): nothing starts any more."""
        return self._drained

    def active_count(self) -> int:
        return sum(1 for j in self._live if not j.done)

    def drain(self, timeout_ms: int = 10_000) -> bool:
        """Cancel every job and wait for the threads; True when all stopped in time. Nothing
        starts afterwards."""
        deadline = time.monotonic() + timeout_ms / 1000
        self._drained = True
        for job in list(self._live):
            job.cancel.cancel()
        self._by_kind.clear()
        ok = self.pool.waitForDone(timeout_ms)
        for name, stop_and_wait in list(self._adopted.items()):
            if not stop_and_wait(max(0.0, deadline - time.monotonic())):
                log.warning("%s did not stop within %d ms", name, timeout_ms)
                ok = False
        self._adopted.clear()
        return ok
