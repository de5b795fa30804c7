"""The Camera tab: camera or video source, live preview with the CNN's opinion, snapshot, and
recording of training samples (Teachable Machine style)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cnndesk.core.images.load import is_image_path
from cnndesk.core.organize.sorting import folder_name
from cnndesk.core.predict.live import LatestOnlyRunner
from cnndesk.qt import file_dialogs, jobs
from cnndesk.qt.camera.source import VIDEO_EXTENSIONS, MediaSource
from cnndesk.qt.camera.timeline import TimelineBar
from cnndesk.qt.camera.view import EmptyState, VideoView
from cnndesk.qt.imaging import qimage_to_rgb_array
from cnndesk.qt.widgets.flow_row import FlowRow, together
from cnndesk.qt.widgets.plain_label import PlainLabel
from cnndesk.qt.workers import JobKind


class _Relay(QObject):
    """Carries results from the inference thread to the UI thread."""

    result = Signal(object, float, int)  # Prediction or error text, inferences/s, frame seq


class CameraPanel(QWidget):
    snapshot = Signal(object, str)  # PIL image (full resolution), name
    status = Signal(str)

    def __init__(self, settings, runner, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.runner = runner  # the app's JobRunner (sample writing)
        self.classifier = None
        self.source = MediaSource(self)
        self.view = VideoView()
        self.live: LatestOnlyRunner | None = None
        self.relay = _Relay(self)
        self.relay.result.connect(self._on_result)
        self.results_shown = 0
        self.last_result_seq = 0
        self.counts: dict[str, int] = {}
        self._record_timer = QTimer(self)
        self._record_timer.timeout.connect(self._capture_sample)
        self._captured = 0

        # -- source row ------------------------------------------------------------------------
        self.camera_combo = QComboBox()
        self.camera_combo.setMinimumWidth(160)
        self.camera_combo.setToolTip("Which camera to use")
        self.resolution = QComboBox()
        self.resolution.setToolTip("Camera resolution")
        self.start_btn = QPushButton("Start camera")
        self.start_btn.setToolTip("Start or stop the camera")
        self.start_btn.clicked.connect(self.toggle_camera)
        self.mirror = QCheckBox("Mirror")
        self.mirror.setToolTip("Show the preview mirrored, like a mirror (does not change what the model sees)")
        self.mirror.setChecked(bool(self.settings.get("mirror") in (True, "true", 1, "1")))
        self.mirror.toggled.connect(self._mirror_changed)
        self.view.mirror = self.mirror.isChecked()
        self.open_video_btn = QPushButton("Open a video file…")
        self.open_video_btn.clicked.connect(self.choose_video)
        self.camera_combo.currentIndexChanged.connect(self._fill_resolutions)
        top = FlowRow()  # wraps on a narrow window (1280x720 at 200 %) instead of widening the page
        top.addWidget(together(QLabel("Camera:"), self.camera_combo))
        top.addWidget(self.resolution)
        top.addWidget(self.start_btn)
        top.addWidget(self.mirror)
        top.addWidget(self.open_video_btn)

        # -- empty state -----------------------------------------------------------------------
        self.empty = EmptyState()
        self.empty_video_btn = self.empty.button
        self.empty_video_btn.clicked.connect(self.choose_video)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.empty)
        self.pages.addWidget(self.view)

        # -- video controls --------------------------------------------------------------------
        self.play_btn = QPushButton("Pause")
        self.play_btn.clicked.connect(self._play_pause)
        self.seek = QSlider(Qt.Orientation.Horizontal)
        self.seek.sliderMoved.connect(self.source.seek)
        self.time_label = PlainLabel("0:00 / 0:00")
        self.video_bar = QWidget()
        vb = QHBoxLayout(self.video_bar)
        vb.setContentsMargins(0, 0, 0, 0)
        vb.addWidget(self.play_btn)
        vb.addWidget(self.seek, 1)
        vb.addWidget(self.time_label)
        self.timeline = TimelineBar(self.runner, lambda: self.classifier)
        self.timeline.seekRequested.connect(self.source.seek)
        self.timeline.status.connect(self.status)
        self.video_bar.hide()
        self.timeline.hide()
        self.source.positionChanged.connect(self._position)
        self.source.durationChanged.connect(lambda d: (self.seek.setRange(0, int(d)), self.timeline.set_duration(d)))

        # -- snapshot and recording ------------------------------------------------------------
        self.snap_btn = QPushButton("Snapshot (Space)")
        self.snap_btn.setToolTip("Freeze this frame and classify it at full resolution; Space again resumes")
        self.snap_btn.clicked.connect(self.take_snapshot)
        self.save_btn = QPushButton("Save frame…")
        self.save_btn.clicked.connect(self.save_frame)
        self.class_combo = QComboBox()
        self.class_combo.setEditable(True)
        self.class_combo.lineEdit().setPlaceholderText("class name, e.g. mug")
        self.class_combo.setMinimumWidth(160)
        self.dataset_btn = QPushButton("Dataset folder…")
        self.dataset_btn.clicked.connect(self.choose_dataset)
        self.rate = QSpinBox()
        self.rate.setRange(1, 30)
        self.rate.setValue(5)
        self.rate.setSuffix(" /s")
        self.rate.setToolTip("Samples captured per second while recording")
        self.record_btn = QPushButton("Hold to record (R)")
        self.record_btn.setToolTip("Hold this button (or the R key) to save frames into <dataset>/<class>/")
        self.record_btn.pressed.connect(self.start_recording)
        self.record_btn.released.connect(self.stop_recording)
        self.counts_label = PlainLabel()
        self.counts_label.setWordWrap(True)
        bottom = QHBoxLayout()
        bottom.addWidget(self.snap_btn)
        bottom.addWidget(self.save_btn)
        bottom.addStretch(1)
        record = FlowRow()
        record.addWidget(together(QLabel("Record training samples:"), self.class_combo))
        record.addWidget(self.dataset_btn)
        record.addWidget(self.rate)
        record.addWidget(self.record_btn)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 12, 12, 12)
        lay.setSpacing(8)
        lay.addLayout(top)
        lay.addWidget(self.pages, 1)
        lay.addWidget(self.video_bar)
        lay.addWidget(self.timeline)
        lay.addLayout(bottom)
        lay.addLayout(record)
        lay.addWidget(self.counts_label)

        snap = QAction(self)
        snap.setShortcut(QKeySequence(Qt.Key.Key_Space))
        snap.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        snap.triggered.connect(self.take_snapshot)
        self.addAction(snap)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.source.frameReady.connect(self._show_frame)
        self.source.message.connect(self.status)
        self.source.error.connect(self._source_error)
        self.source.stateChanged.connect(self._state_changed)
        self.source.devices.videoInputsChanged.connect(self.refresh_cameras)
        self.source.listener = self._frame_arrived
        self.dataset = self.settings.get("dataset_folder") or ""
        self.refresh_cameras()
        self._refresh_counts()

    # -- classifier and live inference ------------------------------------------------------------
    def set_classifier(self, clf) -> None:
        self.classifier = clf

    def _frame_arrived(self, image: QImage, seq: int) -> None:
        """Hand the newest frame to the inference thread (which keeps only the newest)."""
        if self.classifier is None or self.view.frozen:
            return
        if self.live is None:
            self.live = LatestOnlyRunner(self._infer, self._inferred, name="cnndesk-camera")
            self.runner.adopt("the camera's live inference", self.live.stop)  # drained on quit
        self.live.submit((image, seq))

    def _infer(self, item):
        image, seq = item
        clf = self.classifier
        if clf is None:
            return None
        rgb = Image.fromarray(qimage_to_rgb_array(image))
        return clf.predict_arrays(clf.prepare(rgb)[None], 3)[0]

    def _inferred(self, seq_runner, item, result, seconds) -> None:
        rate = self.live.rate.rate() if self.live else 0.0
        payload = result if not isinstance(result, Exception) else str(result)
        self.relay.result.emit(payload, rate, item[1])

    def _on_result(self, result, rate: float, frame_seq: int) -> None:
        if isinstance(result, str):
            self.status.emit(f"Live classification failed: {result}")
            return
        if result is None or self.view.frozen:
            return
        self.results_shown += 1
        self.last_result_seq = frame_seq
        self.view.threshold = self.settings.threshold
        self.view.set_prediction(result, rate)

    def _show_frame(self) -> None:
        image, _ = self.source.take_latest()
        self.view.set_frame(image)

    # -- sources --------------------------------------------------------------------------------
    def refresh_cameras(self) -> None:
        cams = self.source.cameras()
        remembered = self.settings.get("camera_id") or ""
        self.camera_combo.blockSignals(True)
        self.camera_combo.clear()
        for cam in cams:
            self.camera_combo.addItem(cam.description(), bytes(cam.id()).hex())
        i = self.camera_combo.findData(remembered)
        self.camera_combo.setCurrentIndex(i if i >= 0 else 0)
        self.camera_combo.blockSignals(False)
        self._fill_resolutions()
        has = bool(cams)
        for w in (self.camera_combo, self.resolution, self.start_btn):
            w.setEnabled(has)
        if not has and self.source.state in ("idle", "camera"):
            self.pages.setCurrentWidget(self.empty)
        elif self.source.state != "idle":
            self.pages.setCurrentWidget(self.view)
        elif has:
            self.pages.setCurrentWidget(self.view)
            self.view.clear("Press “Start camera”, or open a video file")

    def _fill_resolutions(self) -> None:
        self.resolution.clear()
        cam = self._selected_camera()
        if cam is None:
            return
        seen = set()
        for fmt in sorted(cam.videoFormats(), key=lambda f: (-f.resolution().width(), -f.maxFrameRate())):
            r = fmt.resolution()
            key = (r.width(), r.height())
            if key in seen:
                continue
            seen.add(key)
            self.resolution.addItem(f"{r.width()} × {r.height()}", fmt)
        i = self.resolution.findText("640 × 480")
        if i >= 0:
            self.resolution.setCurrentIndex(i)

    def _selected_camera(self):
        data = self.camera_combo.currentData()
        for cam in self.source.cameras():
            if bytes(cam.id()).hex() == data:
                return cam
        return None

    def toggle_camera(self) -> None:
        if self.source.state == "camera":
            self.source.stop()
            return
        cam = self._selected_camera()
        if cam is None:
            self.status.emit("No camera selected")
            return
        if not self._camera_permitted():
            return
        self.settings.set("camera_id", bytes(cam.id()).hex())
        self.pages.setCurrentWidget(self.view)
        self.source.start_camera(cam, self.resolution.currentData())

    def _camera_permitted(self) -> bool:
        """macOS and Windows ask the user; say so in plain words when access is denied."""
        try:
            from PySide6.QtCore import QCameraPermission
            from PySide6.QtCore import Qt as _Qt
            from PySide6.QtWidgets import QApplication
        except ImportError:  # Qt < 6.5: no permission API
            return True
        app = QApplication.instance()
        status = app.checkPermission(QCameraPermission())
        if status == _Qt.PermissionStatus.Denied:
            self._source_error("cnndesk is not allowed to use the camera. Allow camera access in your "
                               "system's privacy settings, then press Start again.")
            return False
        if status == _Qt.PermissionStatus.Undetermined:
            app.requestPermission(QCameraPermission(), self, lambda p: self.toggle_camera())
            return False
        return True

    def choose_video(self) -> None:
        pattern = " ".join(f"*{e}" for e in VIDEO_EXTENSIONS)
        path = file_dialogs.open_file(self, "Open a video", self.settings.get("last_folder"), f"Videos ({pattern});;All files (*)")
        if path:
            self.open_video(path)

    def open_video(self, path: str) -> None:
        if not os.path.isfile(path):
            self.status.emit(f"{os.path.basename(path)}: the file does not exist")
            return
        self.pages.setCurrentWidget(self.view)
        self.view.frozen = False
        self.source.open_video(path)
        self.timeline.set_video(path)
        self.status.emit(f"Playing {os.path.basename(path)}")

    def _play_pause(self) -> None:
        if self.source.state == "playing":
            self.source.pause()
        else:
            self.source.play()

    def _position(self, ms: int) -> None:
        if not self.seek.isSliderDown():
            self.seek.setValue(ms)
        self.timeline.set_position(ms)
        self.time_label.setText(f"{_fmt(ms)} / {_fmt(self.seek.maximum())}")

    def _state_changed(self, state: str) -> None:
        self.start_btn.setText("Stop camera" if state == "camera" else "Start camera")
        self.video_bar.setVisible(state in ("playing", "paused", "ended"))
        self.timeline.setVisible(state in ("playing", "paused", "ended"))
        self.play_btn.setText("Pause" if state == "playing" else "Play")
        self.view.still = {"paused": "Paused", "ended": "Ended — click the timeline or press Play"}.get(state, "")
        self.view.update()
        if state == "idle":
            self.view.set_prediction(None, 0.0)
            if not self.source.cameras():
                self.pages.setCurrentWidget(self.empty)

    def _source_error(self, text: str) -> None:
        self.view.clear(text)
        self.status.emit(text)

    def _mirror_changed(self, on: bool) -> None:
        self.view.mirror = on
        self.settings.set("mirror", on)
        self.view.update()

    # -- snapshot ---------------------------------------------------------------------------------
    def take_snapshot(self) -> None:
        if self.view.frozen:
            self.view.frozen = False
            self.status.emit("Live again")
            return
        image = self.source.latest()
        if image is None:
            self.status.emit("No frame to take yet")
            return
        self.view.frozen = True
        self.view.image = image
        self.view.update()
        rgb = Image.fromarray(qimage_to_rgb_array(image))
        self.snapshot.emit(rgb, f"Snapshot {time.strftime('%H:%M:%S')}")

    def save_frame(self) -> None:
        image = self.view.image if self.view.frozen else self.source.latest()
        if image is None:
            self.status.emit("No frame to save yet")
            return
        start = os.path.join(self.settings.get("last_folder") or str(Path.home()), f"frame-{time.strftime('%Y%m%d-%H%M%S')}.png")
        path = file_dialogs.save_file(self, "Save frame", start, "PNG (*.png);;JPEG (*.jpg)")
        if path:
            from cnndesk.qt.imaging import save_qimage

            ok = save_qimage(image, path)  # the safe writer
            self.status.emit(f"Saved {path}" if ok else f"Could not save {path}")

    # -- recording samples ----------------------------------------------------------------------
    def choose_dataset(self) -> None:
        d = file_dialogs.choose_folder(self, "Dataset folder (one subfolder per class)", self.dataset or self.settings.get("last_folder"))
        if d:
            self.set_dataset(d)

    def set_dataset(self, folder: str) -> None:
        self.dataset = folder
        self.settings.set("dataset_folder", folder)
        self._refresh_counts()

    def _refresh_counts(self) -> None:
        self.counts = {}
        root = Path(self.dataset) if self.dataset else None
        if root and root.is_dir():
            for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                self.counts[sub.name] = sum(1 for f in sub.iterdir() if is_image_path(f))
            current = self.class_combo.currentText()
            self.class_combo.blockSignals(True)
            self.class_combo.clear()
            self.class_combo.addItems(list(self.counts))
            self.class_combo.setEditText(current)
            self.class_combo.blockSignals(False)
        self._show_counts()

    def _show_counts(self) -> None:
        if not self.dataset:
            self.counts_label.setText("Choose a dataset folder to record training samples into.")
            return
        parts = [f"{name}: {n}" for name, n in sorted(self.counts.items())]
        self.counts_label.setText(f"{self.dataset} — " + (" · ".join(parts) if parts else "no classes yet"))

    def start_recording(self) -> None:
        name = folder_name(self.class_combo.currentText().strip()) if self.class_combo.currentText().strip() else ""
        if not name or name == "_unnamed":
            self.status.emit("Type a class name first")
            return
        if not self.dataset:
            self.status.emit("Choose a dataset folder first")
            return
        self._recording_class = name
        self._captured = 0
        self._record_timer.start(int(1000 / self.rate.value()))
        self._capture_sample()
        self.record_btn.setText("Recording…")

    def stop_recording(self) -> None:
        if self._record_timer.isActive():
            self._record_timer.stop()
            self.record_btn.setText("Hold to record (R)")
            self.status.emit(f"Recorded {self._captured} samples of “{self._recording_class}”")

    def _capture_sample(self) -> None:
        image = self.source.latest()
        if image is None:
            return
        folder = Path(self.dataset) / self._recording_class
        cls = self._recording_class
        self._captured += 1
        self.counts[cls] = self.counts.get(cls, 0) + 1
        self._show_counts()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        n = self._captured

        # QImage is implicitly shared: the worker's copy stays valid whatever the camera does next
        self.runner.start(JobKind.SAMPLE, jobs.save_sample, image, folder, cls, stamp, n, exclusive=False,
                          on_error=lambda exc: self.status.emit(str(exc)))

    def keyPressEvent(self, event):
        if event.key() == Qt.Key.Key_R and not event.isAutoRepeat():
            self.start_recording()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event):
        if event.key() == Qt.Key.Key_R and not event.isAutoRepeat():
            self.stop_recording()
            return
        super().keyReleaseEvent(event)

    # -- lifecycle ----------------------------------------------------------------------------
    def shutdown(self) -> None:
        self._record_timer.stop()
        self.timeline.cancel()
        self.source.listener = None
        self.source.stop()
        if self.live is not None:
            self.live.stop()
            self.live = None


def _fmt(ms: int) -> str:
    s = max(0, ms) // 1000
    return f"{s // 60}:{s % 60:02d}"

