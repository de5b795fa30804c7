"""The first answer before the default model's verified export exists (a plain `pip install .`
with `python -m cnndesk.prepare` skipped; issue 24 point 5): PyTorch answers with the plain Lite0
network (no timm import), which must be the very same network as timm's; the export starts only
after that answer, builds without swallowing what the main thread prints, and the CLI finishes it
before returning. Timings: bench/bench_first_answer.py, docs/benchmarks.md."""

from __future__ import annotations

import dataclasses
import sys
import threading
import time

import numpy as np
import pytest
import torch

from cnndesk.core.models.registry import default_model
from cnndesk.core.networks.lite0 import Lite0, first_answer_network
from cnndesk.core.runtime import backends
from cnndesk.core.runtime import export_cache as onnx_cache
from cnndesk.core.runtime.resolve import build_network, resolve


@pytest.fixture(scope="module")
def weights():
    return resolve(default_model(), "logits", lookup=False).weights


def test_plain_lite0_is_timms_network_to_the_bit(weights):
    spec = default_model()
    plain = first_answer_network(spec, weights)
    timm_net = build_network(spec, "logits", weights)
    assert isinstance(plain, Lite0) and type(timm_net).__name__ == "EfficientNet"
    assert list(plain.state_dict()) == list(timm_net.state_dict())  # same names, same order
    torch.manual_seed(0)
    with torch.inference_mode():
        for size in (224, 193, 97):  # odd sizes: TensorFlow's asymmetric "same" padding
            x = torch.randn(2, 3, size, size)
            assert torch.allclose(plain(x), timm_net(x), atol=1e-5), size


def test_other_networks_are_left_to_timm(weights):
    spec = default_model()
    assert first_answer_network(dataclasses.replace(spec, arch="timm:resnet18"), weights) is None
    assert first_answer_network(dataclasses.replace(spec, key_mapping="names"), weights) is None


class _SlowFailingExport:
    """Stands in for the ONNX export: records when it started, takes a moment, then fails (the
    torch network keeps answering); prints to stdout the way torch.onnx does."""

    def __init__(self, seconds: float = 0.5):
        self.seconds, self.started, self.finished = seconds, None, None

    def __call__(self, spec, model, weights, key, variant="logits", *args, **kwargs):
        self.started = time.perf_counter()
        with onnx_cache.quiet_this_thread():
            print("[torch.onnx] exporting… (must not reach the user's stdout)")
            time.sleep(self.seconds)
        self.finished = time.perf_counter()
        return onnx_cache.OnnxEntry(None, {"reason": "a stand-in export that fails"})


def test_the_export_starts_after_the_first_answer(isolated_dirs, monkeypatch):
    fake = _SlowFailingExport()
    monkeypatch.setattr(onnx_cache, "export_and_verify", fake)
    monkeypatch.setattr(backends.UpgradingBackend, "START_DELAY_S", 60.0)
    engine = backends.open_backend(default_model(), "logits", background_export=True)
    assert isinstance(engine, backends.UpgradingBackend)
    assert isinstance(engine.current.module, Lite0)
    time.sleep(0.2)
    assert fake.started is None, "the export competed with the first answer"
    t_answer = time.perf_counter()
    logits = engine.run(np.zeros((1, 3, 224, 224), np.float32))
    assert logits.shape == (1, 1000)
    assert engine.export_done.wait(30)
    assert fake.started >= t_answer
    assert engine.name == "torch" and engine.fallback_reason == "a stand-in export that fails"


def test_without_an_answer_the_export_starts_after_a_delay(isolated_dirs, monkeypatch):
    fake = _SlowFailingExport(0.0)
    monkeypatch.setattr(onnx_cache, "export_and_verify", fake)
    monkeypatch.setattr(backends.UpgradingBackend, "START_DELAY_S", 0.3)
    engine = backends.open_backend(default_model(), "logits", background_export=True)
    assert engine.export_done.wait(30) and fake.started is not None


def test_a_background_export_mutes_only_its_own_thread(capsys):
    inside, release = threading.Event(), threading.Event()

    def export():
        with onnx_cache.quiet_this_thread():
            print("from the export")
            inside.set()
            release.wait(10)
            print("from the export again")

    t = threading.Thread(target=export)
    t.start()
    assert inside.wait(10)
    print("the user's answer")  # the main thread, while the export runs
    release.set()
    t.join(10)
    out = capsys.readouterr().out
    assert out == "the user's answer\n"
    assert not isinstance(sys.stdout, onnx_cache.ThreadMutedStream)  # put back afterwards


def test_the_cli_answers_first_and_finishes_the_export_before_returning(isolated_dirs, monkeypatch, capsys,
                                                                        samples):
    from cnndesk.cli import main

    fake = _SlowFailingExport(1.0)
    monkeypatch.setattr(onnx_cache, "export_and_verify", fake)
    code = main(["classify", str(samples["coffee"]), "--format", "csv"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0
    assert "optimising the model for this CPU" in captured.err  # why the process has not ended yet
    assert f"{samples['coffee']},espresso" in out  # answered by PyTorch (the Lite0 network)
    assert "torch.onnx" not in out
    assert fake.finished is not None, "the CLI returned while its export was still running"


def test_ctrl_c_while_the_cli_waits_keeps_the_export_joinable(isolated_dirs, monkeypatch):
    """Ctrl+C while the CLI waits for the export: on Python 3.11 a KeyboardInterrupt inside
    Thread.join() marks the still-running thread stopped (bpo-45274's handler releases the lock
    the thread holds), so the atexit wait returned at once and the interpreter was torn down under
    torch.onnx.export (the abort that wait exists to prevent)."""
    import signal

    started, release = threading.Event(), threading.Event()

    def export(*args, **kwargs):
        started.set()
        release.wait(60)
        return onnx_cache.OnnxEntry(None, {"reason": "a stand-in export"})

    monkeypatch.setattr(onnx_cache, "export_and_verify", export)
    engine = backends.open_backend(default_model(), "logits", background_export=True)
    engine.run(np.zeros((1, 3, 224, 224), np.float32))
    try:
        assert started.wait(60)
        ctrl_c = threading.Timer(0.3, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
        ctrl_c.start()
        with pytest.raises(KeyboardInterrupt):
            backends.finish_background_exports(30)
        ctrl_c.join()
        assert engine._thread.is_alive(), "the running export was marked finished: exit would not wait for it"
    finally:
        release.set()
        engine._thread.join(60)
    assert not engine._thread.is_alive()


def test_no_export_starts_once_the_process_exits(isolated_dirs, monkeypatch):
    """A backend opened shortly before quitting (no answer yet, the delay pending): once the atexit
    wait has run, the timer must not start an export in an interpreter being torn down."""
    fake = _SlowFailingExport(0.0)
    monkeypatch.setattr(onnx_cache, "export_and_verify", fake)
    monkeypatch.setattr(backends.UpgradingBackend, "START_DELAY_S", 0.5)
    monkeypatch.setattr(backends, "_EXITING", False, raising=False)
    engine = backends.open_backend(default_model(), "logits", background_export=True)
    backends.finish_exports_at_exit()  # what atexit runs
    time.sleep(1.5)
    assert engine._thread is None and fake.started is None


def test_the_muting_ends_even_when_someone_put_the_proxy_back(capsys):
    """The main thread redirected stdout during an export and restored it afterwards, putting the
    export's proxy back as sys.stdout: the proxy must not keep dropping that thread id's writes
    (thread ids are reused by later threads)."""
    import contextlib
    import io

    inside, redirected, left, restored = (threading.Event() for _ in range(4))

    def export():
        with onnx_cache.quiet_this_thread():
            inside.set()
            redirected.wait(10)
        left.set()
        restored.wait(10)
        print("after the export, same thread")

    t = threading.Thread(target=export)
    t.start()
    assert inside.wait(10)
    with contextlib.redirect_stdout(io.StringIO()):
        redirected.set()
        assert left.wait(10)
    assert isinstance(sys.stdout, onnx_cache.ThreadMutedStream)  # the redirect put the export's proxy back
    restored.set()
    t.join(10)
    assert "after the export, same thread" in capsys.readouterr().out


def test_a_recorded_failed_export_is_retried_in_the_background_too(isolated_dirs, monkeypatch):
    """The background path (the app's first answer, small CLI calls) used to take a recorded
    failure as final, while the foreground path retried it up to EXPORT_ATTEMPTS times: one
    failed export (killed mid-way, a full disk) pinned small CLI calls to PyTorch for good."""
    calls = []

    def failing_export(model, input_size, dest, output_names=("logits",)):
        calls.append(dest)
        raise RuntimeError("no exporter today")

    monkeypatch.setattr(onnx_cache, "export_onnx", failing_export)
    monkeypatch.setattr(backends.UpgradingBackend, "START_DELAY_S", 0.0)
    spec = default_model()
    for attempt in range(1, onnx_cache.EXPORT_ATTEMPTS + 1):
        engine = backends.open_backend(spec, "logits", background_export=True)
        assert isinstance(engine, backends.UpgradingBackend), attempt
        assert engine.export_done.wait(60)
        assert len(calls) == attempt and "no exporter today" in engine.fallback_reason
        entry = resolve(spec, "logits", export=False).entry
        assert entry is not None and not entry.ok and entry.record["attempts"] == attempt
    engine = backends.open_backend(spec, "logits", background_export=True)  # tries used up: no more
    assert not isinstance(engine, backends.UpgradingBackend) and engine.name == "torch"
    assert "no exporter today" in engine.fallback_reason and len(calls) == onnx_cache.EXPORT_ATTEMPTS


def test_two_threads_needing_one_export_build_it_once(isolated_dirs, monkeypatch):
    """The app's first answer and a second backend of the same model (a folder job, the camera)
    both missed the cache: the second waited for the export lock and then exported again."""
    calls = []

    def slow_failing_export(model, input_size, dest, output_names=("logits",)):
        calls.append(threading.current_thread().name)
        time.sleep(1.0)
        raise RuntimeError("no exporter today")

    monkeypatch.setattr(onnx_cache, "export_onnx", slow_failing_export)
    spec = default_model()
    resolve(spec, "features", lookup=False)  # the weights, outside the race
    results = {}

    def need(name):
        results[name] = resolve(spec, "features").entry

    threads = [threading.Thread(target=need, args=(f"t{i}",), name=f"t{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(calls) == 1, calls
    assert all(e is not None and not e.ok and e.record["attempts"] == 1 for e in results.values()), results
