"""Shared pieces of the GUI benchmarks: wait on the Qt event loop, and measure how long a 10 ms UI
timer waits (the app's responsiveness)."""

from __future__ import annotations

import statistics
import time

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QTimer


def spin(cond, ms: int = 300_000) -> None:
    """Process Qt events until ``cond()`` is true; SystemExit after ``ms`` milliseconds."""
    clock = QElapsedTimer()
    clock.start()
    while not cond():
        QCoreApplication.processEvents()
        time.sleep(0.001)
        if clock.elapsed() > ms:
            raise SystemExit("timeout")


class UiTimerGaps:
    """A 10 ms QTimer on the UI thread recording the gap between its ticks."""

    def __init__(self, interval_ms: int = 10):
        self.clock = QElapsedTimer()
        self.clock.start()
        self.gaps: list[int] = []
        self._last = self.clock.elapsed()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = self.clock.elapsed()
        self.gaps.append(now - self._last)
        self._last = now

    def start(self) -> None:
        self.reset()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def reset(self) -> None:
        self.gaps.clear()
        self._last = self.clock.elapsed()

    def stats(self) -> tuple[int, int, float]:
        """(worst gap, 99th percentile, median) in milliseconds."""
        g = sorted(self.gaps)
        return g[-1], g[int(0.99 * (len(g) - 1))], statistics.median(g)
