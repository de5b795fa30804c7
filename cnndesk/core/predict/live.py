"""Live classification helpers (Qt-free): run a slow function on the *newest* item only.

A camera delivers 30 frames a second; a model may take longer than 33 ms. Queuing frames would
make the overlay fall further and further behind reality, so :class:`LatestOnlyRunner` keeps one
pending slot: a frame that arrives while the model is busy replaces the pending one (the older is
dropped and counted), and the worker always starts on the newest frame there is.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any


class RateMeter:
    """Events per second over a sliding window (thread-safe)."""

    def __init__(self, window: float = 1.0):
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        with self._lock:
            self._times.append(now)
            while self._times and now - self._times[0] > self.window:
                self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        with self._lock:
            while self._times and now - self._times[0] > self.window:
                self._times.popleft()
            return len(self._times) / self.window


class LatestOnlyRunner:
    """One worker thread running ``fn(item)`` on the newest submitted item.

    ``on_result(seq, item, result_or_exception, seconds)`` is called on the worker thread.
    ``seq`` numbers submissions from 1; results come in increasing ``seq`` order, and when the
    worker takes an item it is always the newest submitted (``lag_at_start`` records how many
    newer ones existed then: always 0).
    """

    def __init__(self, fn: Callable[[Any], Any], on_result: Callable[[int, Any, Any, float], None], name: str = "cnndesk-live"):
        self.fn = fn
        self.on_result = on_result
        self._cond = threading.Condition()
        self._pending: tuple[int, Any] | None = None
        self._seq = 0
        self._stopping = False
        self.submitted = 0
        self.processed = 0
        self.dropped = 0
        self.max_lag_at_start = 0
        self.rate = RateMeter()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> int:
        with self._cond:
            if self._stopping:
                return self._seq
            self._seq += 1
            self.submitted += 1
            if self._pending is not None:
                self.dropped += 1
            self._pending = (self._seq, item)
            self._cond.notify()
            return self._seq

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                seq, item = self._pending
                self._pending = None
                self.max_lag_at_start = max(self.max_lag_at_start, self._seq - seq)
            t0 = time.perf_counter()
            try:
                result = self.fn(item)
            except Exception as exc:  # reported to the caller, the loop goes on
                result = exc
            dt = time.perf_counter() - t0
            self.processed += 1
            self.rate.tick()
            try:
                self.on_result(seq, item, result, dt)
            except Exception:
                pass

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> bool:
        with self._cond:
            self._stopping = True
            self._pending = None
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()
