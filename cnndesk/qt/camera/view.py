"""The live preview, drawn by the app (QVideoWidget cannot be screenshotted): the newest frame,
aspect kept, optionally mirrored, with an overlay of the top-3 classes, their confidence bars and
the preview / inference rates."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from cnndesk.core.predict.classifier import Prediction
from cnndesk.core.predict.live import RateMeter


class VideoView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.image: QImage | None = None
        self.mirror = False
        self.frozen = False
        self.prediction: Prediction | None = None
        self.inference_rate = 0.0
        self.threshold = 0.3
        self.paint_rate = RateMeter()
        self.frames_painted = 0
        self.placeholder = ""
        self.still = ""  # "Paused", "Ended": shown instead of the rates (a still frame is not "0 fps")
        self._last_key = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        # small enough that the camera tab fits 800×500 logical px (1600×1000 at scale 2) with
        # the timeline and recording rows below it; the preview grows with the window
        self.setMinimumSize(240, 135)

    def sizeHint(self):
        return QSize(720, 540)

    def set_frame(self, image: QImage | None) -> None:
        if self.frozen or image is None:
            return
        self.image = image
        self.update()

    def set_prediction(self, p: Prediction | None, rate: float) -> None:
        self.prediction = p
        self.inference_rate = rate
        self.update()

    def clear(self, placeholder: str = "") -> None:
        self.image = None
        self.prediction = None
        self.placeholder = placeholder
        self.update()

    def status_text(self) -> str:
        """The overlay's first line: the rates while frames flow; a still frame says what it is."""
        if self.prediction is not None and self.prediction.unknown:
            return "Not one of my classes"
        if self.frozen:
            return "Frozen (Space to resume)"
        if self.still:
            return self.still
        return f"{self.paint_rate.rate():.0f} fps · model {self.inference_rate:.0f}/s"

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(16, 16, 18))
        if self.image is None or self.image.isNull():
            if self.placeholder:
                p.setPen(QColor(200, 200, 200))
                p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        key = self.image.cacheKey()
        if key != self._last_key:  # count distinct frames shown, not overlay repaints
            self._last_key = key
            self.paint_rate.tick()
            self.frames_painted += 1
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        iw, ih = self.image.width(), self.image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        target = QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)
        if self.mirror:
            p.save()
            p.translate(target.center().x() * 2, 0)
            p.scale(-1, 1)
            p.drawImage(target, self.image)
            p.restore()
        else:
            p.drawImage(target, self.image)
        self._overlay(p, target)

    def _overlay(self, p: QPainter, frame: QRectF) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        f = QFont(self.font())
        f.setPointSizeF(f.pointSizeF() * 1.05)
        p.setFont(f)
        box_w = min(320.0, frame.width() - 24)
        row = 30
        pred = self.prediction
        rows = min(3, len(pred.labels)) if pred else 0
        box = QRectF(frame.left() + 12, frame.top() + 12, box_w, 34 + rows * row)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 150))
        p.drawRoundedRect(box, 10, 10)
        p.setPen(QColor(235, 235, 235))
        status = self.status_text()
        if pred is not None and pred.unknown:
            p.setPen(QColor(255, 214, 102))
        p.drawText(QRectF(box.left() + 12, box.top() + 6, box_w - 24, 22), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, status)
        if not pred:
            return
        for i in range(rows):
            y = box.top() + 32 + i * row
            label, score = pred.labels[i], pred.scores[i]
            f.setBold(i == 0)
            p.setFont(f)
            unknown = i == 0 and pred.unknown
            p.setPen(QColor(255, 255, 255) if (score >= self.threshold or i) and not unknown else QColor(255, 214, 102))
            text = label if not (i == 0 and score < self.threshold) else f"Not sure — {label}?"
            if unknown:
                text = f"closest: {label}"
            p.drawText(QRectF(box.left() + 12, y, box_w - 80, 18), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
            pct = f"({score:.0%})" if pred.unknown else f"{score:.0%}"  # unknown: only among its classes
            p.drawText(QRectF(box.right() - 76, y, 64, 18), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, pct)
            track = QRectF(box.left() + 12, y + 19, box_w - 24, 5)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(255, 255, 255, 50))
            p.drawRoundedRect(track, 2.5, 2.5)
            p.setBrush(QColor(150, 150, 150, 160) if pred.unknown else QColor(79, 143, 247) if i == 0 else QColor(79, 143, 247, 150))
            p.drawRoundedRect(QRectF(track.left(), track.top(), max(5.0, track.width() * score), 5), 2.5, 2.5)


class EmptyState(QWidget):
    """Shown when there is no camera: a title, a line of help and "Open a video file…"."""

    def __init__(self, parent=None):
        super().__init__(parent)
        title = QLabel("No camera found")
        f = title.font()
        f.setPointSizeF(f.pointSizeF() * 1.6)
        f.setBold(True)
        title.setFont(f)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        sub = QLabel("Plug in a webcam and it appears here by itself — or watch the CNN classify a video file.")
        sub.setAlignment(Qt.AlignmentFlag.AlignCenter)
        sub.setWordWrap(True)
        self.button = QPushButton("Open a video file…")
        self.button.setMinimumHeight(34)
        el = QVBoxLayout(self)
        el.addStretch(2)
        el.addWidget(title)
        el.addWidget(sub)
        el.addSpacing(16)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.button)
        row.addStretch(1)
        el.addLayout(row)
        el.addStretch(3)
