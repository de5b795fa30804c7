"""The one worker contract, offscreen: typed errors, typed immutable results applied on the UI
thread, model epochs (an older model's answers never land), and the gallery's bounded images."""

from __future__ import annotations

import dataclasses
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QCoreApplication, Qt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
import trust_data  # noqa: E402


class _Recorder:
    """What a job function sees, recorded (for calling a job function on this thread)."""

    def __init__(self):
        from cnndesk.core.common.progress import CancelToken

        self.cancel = CancelToken()
        self.partials: list = []

    def partial(self, obj):
        self.partials.append(obj)

    def progress(self, *_):
        pass


@pytest.fixture
def runner(qapp):
    from cnndesk.qt.workers import JobRunner

    r = JobRunner()
    yield r
    assert r.drain(10_000)


# -- errors -----------------------------------------------------------------------------------------
def test_errors_arrive_as_exception_objects_with_their_types(qtbot, runner):
    from cnndesk.core.common.errors import NetworkRequiredError
    from cnndesk.qt.workers import JobFailed

    def offline(job):
        raise NetworkRequiredError("the model needs a network connection to download its weights")

    def broken(job):
        raise PermissionError(13, "Permission denied", "/nowhere/model.safetensors")

    got = []
    runner.start("a", offline, on_error=got.append)
    runner.start("b", broken, on_error=got.append)
    qtbot.waitUntil(lambda: len(got) == 2, timeout=5000)
    net = next(e for e in got if isinstance(e, NetworkRequiredError))
    assert str(net) == "the model needs a network connection to download its weights"
    failed = next(e for e in got if isinstance(e, JobFailed))
    assert isinstance(failed.original, PermissionError) and failed.__cause__ is failed.original
    assert "Traceback" not in str(failed) and "\n" not in str(failed) and str(failed)


def test_download_errors_are_typed_at_the_source(tmp_path, monkeypatch):
    from cnndesk.core.common.errors import (
        DownloadError,
        ModelError,
        ModelUnavailableError,
        NetworkRequiredError,
    )
    from cnndesk.core.models.download import download

    monkeypatch.setenv("CNNDESK_OFFLINE", "1")
    with pytest.raises(NetworkRequiredError) as offline:
        download("https://example.invalid/w.bin", tmp_path / "w.bin", title="Big net", size_mb=20)
    assert "needs a network connection" in str(offline.value)  # the words the user saw before
    monkeypatch.delenv("CNNDESK_OFFLINE")
    src = tmp_path / "served.bin"
    src.write_bytes(b"not the weights")
    with pytest.raises(DownloadError, match="corrupt"):  # a checksum mismatch is not a network problem
        download(src.as_uri(), tmp_path / "w.bin", title="Big net", sha256_prefix="00000000")
    assert not (tmp_path / "w.bin").exists()
    assert issubclass(NetworkRequiredError, DownloadError) and issubclass(ModelUnavailableError, ModelError)


def test_the_model_error_box_title_follows_the_error_type(qtbot, window):
    from PySide6.QtWidgets import QMessageBox

    from cnndesk.core.common.errors import ModelError, NetworkRequiredError

    spec = window.spec
    window.models.failed(spec, ModelError("the weights are damaged: no network involved"), spec)
    assert window.models.error_box.windowTitle() == "Could not load the model"  # "network" in the text is no clue
    window.models.error_box.close()
    window.models.failed(spec, NetworkRequiredError("Connect to the internet and try again"), spec)
    box = window.models.error_box
    assert isinstance(box, QMessageBox) and box.windowTitle() == "No network connection"
    assert box.text() == "Connect to the internet and try again"
    box.close()
    qtbot.waitUntil(lambda: window.clf is not None, timeout=60_000)


# -- epochs -----------------------------------------------------------------------------------------
def test_a_new_epoch_drops_everything_an_older_job_sends(qtbot, runner):
    gate = threading.Event()

    def slow(job, value):
        gate.wait(20)
        job.partial(value)
        return value

    got = []
    old = runner.start("a", slow, "old", scope="model", exclusive=False, keep_result=True,
                       on_partial=got.append, on_result=got.append, on_error=got.append, on_finished=lambda: got.append("fin"))
    runner.new_epoch("model")
    gate.set()
    new = runner.start("a", slow, "new", scope="model", exclusive=False, on_result=got.append)
    qtbot.waitUntil(lambda: old.done and new.done, timeout=10_000)
    QCoreApplication.processEvents()
    assert got == ["new"]  # keep_result does not bring an older epoch's result back
    other = []
    runner.start("b", slow, "unscoped", on_result=other.append)  # jobs outside the scope are untouched
    runner.new_epoch("model")
    qtbot.waitUntil(lambda: other == ["unscoped"], timeout=10_000)


@pytest.fixture(scope="module")
def textures_model(tmp_path_factory, classifier):
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train

    root = tmp_path_factory.mktemp("workers-qt")
    model = train(scan(trust_data.make_set(root / "textures", "textures", 6, 0), seed=0), TrainConfig(mode="quick"))
    return model.save(root / "textures.safetensors"), sorted(trust_data.TEXTURES)


def test_a_model_switch_drops_the_older_jobs_answers(drop, qtbot, window, samples, textures_model):
    path, labels = textures_model
    real, gate, finished = window.clf, threading.Event(), threading.Event()

    class Slow:
        """The current model, slowed down: its job is still running when the switch comes."""

        def __getattr__(self, name):
            return getattr(real, name)

        def predict_arrays(self, *args, **kwargs):
            gate.wait(60)
            try:
                return real.predict_arrays(*args, **kwargs)
            finally:
                finished.set()

    window.models.clf = Slow()
    drop(window, [samples["cat"]])
    qtbot.waitUntil(lambda: window.runner.active_count() == 1, timeout=10_000)
    applied = []
    window.gallery_model.dataChanged.connect(lambda *_: applied.append(window.gallery_model.items[0].prediction))
    window.models.load_model(str(path))  # the switch; its reclassify runs while the old job still waits
    qtbot.waitUntil(lambda: window.clf is not None and window.clf is not real and set(window.clf.spec.labels) == set(labels),
                    timeout=60_000)
    qtbot.waitUntil(lambda: window.gallery_model.items[0].prediction is not None, timeout=30_000)
    new = window.gallery_model.items[0].prediction
    assert new.label in labels
    gate.set()  # the old job finishes now, with the old model's answer
    assert finished.wait(30)
    qtbot.waitUntil(lambda: window.runner.active_count() == 0, timeout=10_000)
    for _ in range(5):
        QCoreApplication.processEvents()
    assert window.gallery_model.items[0].prediction is new  # the reclassify result is what is shown
    assert all(p is None or p.label in labels for p in applied), "an answer of the older model landed"


# -- typed, immutable results -----------------------------------------------------------------------
def test_classify_items_makes_new_items_and_never_writes_to_the_given_ones(classifier, samples, tmp_path):
    from cnndesk.qt import jobs

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    items = jobs.load_paths_as_items([str(samples["cat"]), str(bad)])
    before = [dataclasses.astuple(it) for it in items]
    job = _Recorder()
    done = jobs.classify_items(job, classifier, items, 3, frozenset({items[0].id}))
    assert [dataclasses.astuple(it) for it in items] == before  # the gallery's objects are untouched
    assert [d.id for d in done] == [it.id for it in items] and all(d is not it for d, it in zip(done, items, strict=True))
    assert done[0].prediction is not None and done[0].original_size == Image.open(samples["cat"]).size
    assert done[1].prediction is None and "broken.jpg" in done[1].error
    first, second = job.partials
    assert isinstance(first, jobs.ItemClassified) and first.item is done[0]
    assert first.images.thumb is not None and first.images.display is not None  # asked for
    assert second.images.thumb is None and second.images.display is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        done[0].prediction = None


# -- the gallery's bounded images -------------------------------------------------------------------
def test_gallery_images_stay_bounded_and_come_back_on_demand(qtbot, runner, classifier, samples, tmp_path):
    from cnndesk.qt import jobs
    from cnndesk.qt.imaging import pil_to_qimage, thumbnail
    from cnndesk.qt.item_models.gallery import MAX_DISPLAYS, MAX_ICONS, GalleryModel

    paths = []
    for i, p in enumerate(list(samples.values())[:3]):
        small = tmp_path / f"photo{i}.jpg"
        Image.open(p).convert("RGB").resize((320, 240)).save(small)
        paths.append(str(small))
    img = Image.open(paths[0])
    pred = classifier.predict_arrays(classifier.prepare(img)[None], 3)[0]
    thumb, display = thumbnail(img), pil_to_qimage(img)
    model = GalleryModel()
    asked = []

    def remake(items, with_display):
        asked.append((len(items), with_display))
        runner.start("gallery-display" if with_display else "gallery-thumbs", jobs.gallery_images,
                     [(it, with_display) for it in items], on_partial=model.set_images)

    model.request_images = remake
    items = jobs.load_paths_as_items([paths[i % 3] for i in range(5000)])
    for it in items:
        model.add(it)
    for it in items:  # what 5,000 classify partials bring
        new = dataclasses.replace(it, prediction=pred)
        model.apply(jobs.ItemClassified(new, jobs.ItemImages(it.id, thumb, display)))
    assert model.cached() == (MAX_ICONS, MAX_DISPLAYS)  # bounded, not 5,000 of each
    assert asked == []  # nothing painted yet: nothing to make again
    first = model.items[0]
    assert model.display(first) is None  # evicted long ago: made again on a worker ...
    shown = []
    model.images_ready.connect(shown.append)
    qtbot.waitUntil(lambda: model.has_display(first.id), timeout=20_000)
    back = model.display(first)
    assert back.width() == 320 and first.id in shown
    # scrolling back to the start: icons painted without a thumbnail are made again, in one job
    placeholder = model.data(model.index(5), Qt.ItemDataRole.DecorationRole)
    for row in range(1, 40):
        model.data(model.index(row), Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: all(model.items[r].id in model._icons for r in range(1, 40)), timeout=20_000)
    icon = model.data(model.index(5), Qt.ItemDataRole.DecorationRole)
    assert icon.cacheKey() != placeholder.cacheKey()
    assert (39, False) in asked
    assert model.cached()[0] <= MAX_ICONS and model.cached()[1] <= MAX_DISPLAYS
    model.remove_rows([0])
    assert not model.has_display(first.id)


def test_the_window_shows_an_evicted_image_again(drop, qtbot, window, samples):
    model = window.gallery_model
    model.max_displays = 1
    drop(window, [samples["cat"], samples["coffee"], samples["rocket"]])
    qtbot.waitUntil(lambda: model.rowCount() == 3 and all(it.prediction for it in model.items), timeout=30_000)
    assert model.cached()[1] <= 1
    window.gallery.setCurrentIndex(model.index(0))  # the cat's display image was evicted
    qtbot.waitUntil(lambda: window.image_view.has_image() and model.has_display(model.items[0].id), timeout=20_000)
    assert model.cached()[1] <= 1
    assert window.panel.headline.text()


def test_nothing_starts_after_drain(qtbot, runner):
    import time

    ran = []
    assert runner.drain()
    job = runner.start("late", lambda job: ran.append(1), on_result=ran.append)  # a late timer on quit
    for _ in range(20):
        QCoreApplication.processEvents()
        time.sleep(0.01)
    assert ran == [] and job.cancel.cancelled and runner.active_count() == 0


def test_drain_stops_and_waits_for_adopted_threads(qtbot):
    """The two threads outside the job contract (the camera's live inference, the first answer's
    background export) are adopted: quitting stops them and waits, with what is left of the time."""
    import threading
    import time

    from cnndesk.core.predict.live import LatestOnlyRunner
    from cnndesk.qt.workers import JobRunner

    runner = JobRunner()
    started = threading.Event()

    def slow(item):
        started.set()
        time.sleep(0.3)
        return item

    live = LatestOnlyRunner(slow, lambda *a: None, name="test-live")
    live.submit(1)
    assert started.wait(5)
    runner.adopt("camera", live.stop)
    export_done = threading.Event()
    threading.Timer(0.4, export_done.set).start()  # a background export finishing later
    runner.adopt("export", export_done.wait)
    assert sorted(runner.adopted()) == ["camera", "export"]
    t0 = time.monotonic()
    assert runner.drain(5000) is True
    assert export_done.is_set() and not live.is_alive()
    assert time.monotonic() - t0 < 4
    assert runner.adopted() == []


def test_drain_reports_an_adopted_thread_that_does_not_stop(qtbot):
    from cnndesk.qt.workers import JobRunner

    runner = JobRunner()
    waited = []
    runner.adopt("stuck", lambda t: waited.append(t) or False)
    assert runner.drain(200) is False
    assert waited and 0 <= waited[0] <= 0.2
