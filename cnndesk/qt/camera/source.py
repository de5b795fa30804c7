"""Frames from a camera (QCamera + QMediaCaptureSession) or a video file (QMediaPlayer), both into
one QVideoSink.

The sink emits frames on the media backend's thread. They are received on the UI thread (a
Python slot run directly on that thread deadlocks: the UI thread holds the GIL while Qt's stop()
waits for the media thread, which waits for the GIL). Receiving only stores the frame; one
conversion per event-loop turn turns the *newest* into a QImage (about 1 ms at 640 x 480), so a
busy UI skips frames instead of working through a backlog. The QImage goes to the preview and to
a listener (the live classifier), which converts it to an RGB array on its own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QImage
from PySide6.QtMultimedia import (
    QCamera,
    QCameraDevice,
    QCameraFormat,
    QMediaCaptureSession,
    QMediaDevices,
    QMediaPlayer,
    QVideoFrame,
    QVideoSink,
)

from cnndesk.core.predict.live import RateMeter

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".webm", ".mov", ".m4v")


def camera_error_text(error, message: str) -> str:
    """A camera error in plain words."""
    low = (message or "").lower()
    if "busy" in low or "in use" in low or "resource" in low:
        return "The camera is in use by another program. Close it there and press Start again."
    if "permission" in low or "denied" in low or "access" in low:
        return ("cnndesk is not allowed to use the camera. Allow camera access in your system's "
                "privacy settings, then press Start again.")
    return f"The camera stopped with an error: {message or error}"


class MediaSource(QObject):
    frameReady = Signal()  # a new newest frame is ready (see take_latest)
    message = Signal(str)  # plain-words status for the user ("" clears)
    error = Signal(str)
    stateChanged = Signal(str)  # "idle", "camera", "playing", "paused", "ended"
    positionChanged = Signal("qlonglong")  # ms
    durationChanged = Signal("qlonglong")  # ms

    def __init__(self, parent=None):
        super().__init__(parent)
        self.sink = QVideoSink(self)
        self.sink.videoFrameChanged.connect(self._on_frame)
        self._lock = threading.Lock()
        self._latest: QImage | None = None
        self._pending: QVideoFrame | None = None
        self._seq = 0
        self.frames_received = 0
        self.frames_skipped = 0
        self.listener: Callable[[QImage, int], None] | None = None
        self.frame_rate = RateMeter()
        self.session = QMediaCaptureSession(self)
        self.camera: QCamera | None = None
        self.camera_device: QCameraDevice | None = None
        self.player: QMediaPlayer | None = None
        self.state = "idle"
        self.devices = QMediaDevices(self)
        self.devices.videoInputsChanged.connect(self._inputs_changed)
        self._waiting_for: bytes | None = None  # id of an unplugged camera we resume on return

    # -- frames ------------------------------------------------------------------------------
    def _on_frame(self, frame: QVideoFrame) -> None:
        self.frames_received += 1
        if self._pending is not None:
            self.frames_skipped += 1  # a newer frame arrived before the last was shown
        else:
            QTimer.singleShot(0, self._convert)
        self._pending = frame

    def _convert(self) -> None:
        frame, self._pending = self._pending, None
        if frame is None or not frame.isValid():
            return
        image = frame.toImage()
        if image.isNull():
            return
        if image.format() not in (QImage.Format.Format_RGB32, QImage.Format.Format_ARGB32):
            image = image.convertToFormat(QImage.Format.Format_RGB32)
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._latest = image
        self.frame_rate.tick()
        listener = self.listener
        if listener is not None:
            listener(image, seq)
        self.frameReady.emit()

    def take_latest(self) -> tuple[QImage | None, int]:
        """The newest frame and its number (UI thread)."""
        with self._lock:
            return self._latest, self._seq

    def latest(self) -> QImage | None:
        with self._lock:
            return self._latest

    def push_frame(self, image: QImage) -> None:
        """Feed a frame as a source would (tests, snapshots of still images)."""
        self.sink.setVideoFrame(QVideoFrame(image))

    # -- camera --------------------------------------------------------------------------------
    @staticmethod
    def cameras() -> list[QCameraDevice]:
        return list(QMediaDevices.videoInputs())

    def start_camera(self, device: QCameraDevice, fmt: QCameraFormat | None = None) -> None:
        self.stop()
        self.camera = QCamera(device, self)
        self.camera_device = device
        if fmt is not None and not fmt.isNull():
            self.camera.setCameraFormat(fmt)
        self.camera.errorOccurred.connect(self._camera_error)
        self.session.setCamera(self.camera)
        self.session.setVideoSink(self.sink)
        self.camera.start()
        self._set_state("camera")
        self.message.emit(f"{device.description()} is on")

    def _camera_error(self, error, text: str) -> None:
        if error == QCamera.Error.NoError:
            return
        self.error.emit(camera_error_text(error, text))
        self.stop()

    def _inputs_changed(self) -> None:
        ids = {bytes(d.id()) for d in QMediaDevices.videoInputs()}
        if self.camera_device is not None and self.state == "camera" and bytes(self.camera_device.id()) not in ids:
            self._waiting_for = bytes(self.camera_device.id())
            self.stop()
            self.message.emit("The camera was disconnected. It will resume when you plug it back in.")
            return
        if self._waiting_for is not None and self._waiting_for in ids:
            device = next(d for d in QMediaDevices.videoInputs() if bytes(d.id()) == self._waiting_for)
            self._waiting_for = None
            self.start_camera(device)
            self.message.emit(f"{device.description()} is back")

    # -- video files ---------------------------------------------------------------------------
    def open_video(self, path: str) -> None:
        self.stop()
        self.player = QMediaPlayer(self)
        self.player.setVideoSink(self.sink)
        self.player.errorOccurred.connect(lambda e, text: self.error.emit(f"Cannot play this video: {text or e}"))
        self.player.positionChanged.connect(self.positionChanged)
        self.player.durationChanged.connect(self.durationChanged)
        self.player.mediaStatusChanged.connect(self._media_status)
        self.player.setSource(QUrl.fromLocalFile(path))
        self.player.play()
        self._set_state("playing")

    def _media_status(self, status) -> None:
        if status == QMediaPlayer.MediaStatus.EndOfMedia:
            self._set_state("ended")
        elif status == QMediaPlayer.MediaStatus.InvalidMedia:
            self.error.emit("This file is not a video cnndesk can play (or it is damaged).")

    def play(self) -> None:
        if self.player is not None:
            if self.state == "ended":
                self.player.setPosition(0)
            self.player.play()
            self._set_state("playing")

    def pause(self) -> None:
        if self.player is not None:
            self.player.pause()
            self._set_state("paused")

    def seek(self, ms: int) -> None:
        if self.player is not None:
            self.player.setPosition(max(0, int(ms)))
            if self.state == "ended":  # a stopped player shows nothing new: pause there, so the frame
                self.player.pause()  # at that time is shown and Play goes on from it
                self._set_state("paused")

    # -- both --------------------------------------------------------------------------------------
    def stop(self) -> None:
        if self.camera is not None:
            self.camera.stop()
            self.session.setCamera(None)
            self.camera.deleteLater()
            self.camera = None
        if self.player is not None:
            self.player.stop()
            self.player.setVideoSink(None)
            self.player.deleteLater()
            self.player = None
        self._set_state("idle")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)
