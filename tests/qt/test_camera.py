"""The Camera tab, driven by a generated h264 video (no test machine has a camera) and by frames
pushed into the QVideoSink."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QImage
from PySide6.QtMultimedia import QMediaDevices

from cnndesk.qt.camera.panel import qimage_to_rgb_array
from cnndesk.qt.camera.source import camera_error_text


def make_video(path, image_path, seconds=3.0, fps=30, size=(640, 480)):
    import av

    arr = np.asarray(Image.open(image_path).convert("RGB").resize(size))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.roll(arr, i, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def qimage(path, size=(640, 480)) -> QImage:
    img = QImage(str(path)).scaled(*size)
    return img.convertToFormat(QImage.Format.Format_RGB32)


def test_video_file_is_classified_live(qtbot, window, samples, tmp_path):
    video = make_video(tmp_path / "espresso.mp4", samples["coffee"])
    panel = window.camera_panel
    window.show_camera()
    panel.open_video(str(video))
    qtbot.waitUntil(lambda: panel.results_shown >= 5, timeout=20_000)
    assert panel.view.prediction.label in ("espresso", "cup")
    assert panel.view.frames_painted >= 5
    assert panel.video_bar.isVisible()
    assert panel.live.max_lag_at_start == 0


def test_no_camera_shows_an_empty_state_not_an_error(window):
    if QMediaDevices.videoInputs():
        pytest.skip("this machine has a camera")
    panel = window.camera_panel
    assert panel.pages.currentWidget() is panel.empty
    assert panel.empty_video_btn.text() == "Open a video file…"
    assert not panel.start_btn.isEnabled()


def test_snapshot_freezes_and_adds_to_the_gallery(qtbot, window, samples):
    panel = window.camera_panel
    window.show_camera()
    panel.pages.setCurrentWidget(panel.view)
    panel.source.push_frame(qimage(samples["coffee"]))
    qtbot.waitUntil(lambda: panel.source.latest() is not None, timeout=5000)
    panel.take_snapshot()
    assert panel.view.frozen
    qtbot.waitUntil(lambda: window.gallery_model.rowCount() == 1 and window.gallery_model.items[0].prediction is not None, timeout=20_000)
    item = window.gallery_model.items[0]
    assert item.name.startswith("Snapshot") and item.prediction.label == "espresso"
    assert item.original_size == (640, 480)
    panel.take_snapshot()  # Space again: live
    assert not panel.view.frozen


def test_record_samples_writes_jpegs_into_the_class_folder(qtbot, window, samples, tmp_path):
    from cnndesk.core.images.load import load_image

    panel = window.camera_panel
    window.show_camera()
    dataset = tmp_path / "dataset"
    (dataset / "cup").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(dataset / "cup" / "old.jpg")
    panel.set_dataset(str(dataset))
    assert panel.counts == {"cup": 1}
    panel.class_combo.setEditText("my mug")
    panel.rate.setValue(10)
    frame = qimage(samples["coffee"])
    panel.source.push_frame(frame)
    panel.start_recording()
    for _ in range(6):
        qtbot.wait(100)
        panel.source.push_frame(frame)
    panel.stop_recording()
    qtbot.waitUntil(lambda: window.runner.active_count() == 0, timeout=5000)
    files = sorted((dataset / "my mug").glob("*.jpg"))
    assert len(files) == panel._captured >= 4
    assert panel.counts["my mug"] == len(files) and panel.counts["cup"] == 1
    assert "my mug: " in panel.counts_label.text()
    assert load_image(files[0]).size == (640, 480)
    assert window.settings.get("dataset_folder") == str(dataset)


def test_recording_needs_a_class_and_a_folder(window):
    panel = window.camera_panel
    messages = []
    panel.status.connect(messages.append)
    panel.dataset = ""
    panel.class_combo.setEditText("")
    panel.start_recording()
    assert messages[-1] == "Type a class name first"
    panel.class_combo.setEditText("mug")
    panel.start_recording()
    assert messages[-1] == "Choose a dataset folder first"
    assert not panel._record_timer.isActive()


def test_qimage_conversion_keeps_colours():
    img = QImage(4, 2, QImage.Format.Format_RGB32)
    img.fill(0xFF102030)
    arr = qimage_to_rgb_array(img)
    assert arr.shape == (2, 4, 3) and tuple(arr[0, 0]) == (0x10, 0x20, 0x30)


def test_camera_errors_in_plain_words():
    assert "in use by another program" in camera_error_text(1, "Camera is busy")
    assert "not allowed" in camera_error_text(1, "Permission denied")
    assert "error" in camera_error_text(1, "something odd")


def test_missing_video_file_is_reported(window, tmp_path):
    panel = window.camera_panel
    messages = []
    panel.status.connect(messages.append)
    panel.open_video(str(tmp_path / "nope.mp4"))
    assert "does not exist" in messages[-1]


class _SlowModel:
    """Stands in for the classifier: 80 ms per frame, far slower than 30 fps."""

    def __init__(self, real):
        self.real = real

    def prepare(self, img):
        return self.real.prepare(img)

    def predict_arrays(self, batch, k):
        import time

        time.sleep(0.08)
        return self.real.predict_arrays(batch, k)


def test_slow_model_drops_frames_and_the_overlay_stays_current(qtbot, window, samples, tmp_path):
    video = make_video(tmp_path / "clip.mp4", samples["rocket"], seconds=4)
    panel = window.camera_panel
    window.show_camera()
    panel.set_classifier(_SlowModel(window.clf))
    lags = []
    panel.relay.result.connect(lambda r, rate, seq: lags.append(panel.source._seq - seq))
    panel.open_video(str(video))
    qtbot.waitUntil(lambda: panel.results_shown >= 12, timeout=30_000)
    assert panel.live.dropped > panel.results_shown  # most frames are skipped, none queued
    assert panel.live.max_lag_at_start == 0  # every inference started on the newest frame
    # when a result arrives, the frames shown meanwhile are only those of one inference (~80 ms)
    assert max(lags[2:]) <= 5, lags
    assert panel.view.frames_painted > 2 * panel.results_shown  # the preview did not wait


def test_unplugged_camera_resumes_when_plugged_back(window, monkeypatch):
    from cnndesk.qt.camera import source as source_mod

    class FakeDevice:
        def id(self):
            return b"cam-1"

        def description(self):
            return "Test Cam"

    devices: list = []

    class FakeMediaDevices:
        @staticmethod
        def videoInputs():
            return list(devices)

    src = window.camera_panel.source
    monkeypatch.setattr(source_mod, "QMediaDevices", FakeMediaDevices)
    started, messages = [], []
    monkeypatch.setattr(src, "start_camera", lambda dev, fmt=None: (started.append(dev.description()), src._set_state("camera")))
    src.message.connect(messages.append)
    src.camera_device = FakeDevice()
    src.state = "camera"
    src._inputs_changed()  # unplugged
    assert src.state == "idle" and "disconnected" in messages[-1]
    devices.append(FakeDevice())
    src._inputs_changed()  # plugged back
    assert started == ["Test Cam"] and "is back" in messages[-1]
