"""The newest-frame policy of live classification."""

from __future__ import annotations

import threading
import time

from cnndesk.core.predict.live import LatestOnlyRunner, RateMeter


def test_slow_model_drops_frames_and_never_lags():
    results = []
    done = threading.Event()

    def slow(item):
        time.sleep(0.03)
        return item * 10

    def on_result(seq, item, result, seconds):
        results.append((seq, item, result))
        if item == 199:
            done.set()

    runner = LatestOnlyRunner(slow, on_result)
    for i in range(200):
        runner.submit(i)
        time.sleep(0.002)
    assert done.wait(5), "the newest frame is always processed in the end"
    runner.stop()
    seqs = [s for s, _, _ in results]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(r == i * 10 for _, i, r in results)
    assert runner.max_lag_at_start == 0  # it always started on the newest frame
    assert runner.dropped >= 150 and runner.processed == len(results) < 40
    assert runner.submitted == runner.processed + runner.dropped


def test_fast_model_drops_nothing_and_errors_are_reported():
    got = []
    ev = threading.Event()

    def fn(item):
        if item == 3:
            raise ValueError("bad frame")
        return item

    def on_result(seq, item, result, seconds):
        got.append(result)
        if len(got) == 5:
            ev.set()

    runner = LatestOnlyRunner(fn, on_result)
    for i in range(5):
        runner.submit(i)
        time.sleep(0.05)
    assert ev.wait(3)
    runner.stop()
    assert got[:3] == [0, 1, 2] and isinstance(got[3], ValueError) and got[4] == 4
    assert runner.dropped == 0


def test_rate_meter():
    m = RateMeter(window=1.0)
    for i in range(30):
        m.tick(now=100.0 + i / 30)
    assert 29 <= m.rate(now=100.99) <= 30
    assert m.rate(now=103.0) == 0
