"""Shows one image, aspect ratio kept, scaled smoothly; the scaled copy is cached per size."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget


class ImageView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._scaled: QPixmap | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 200)

    def set_image(self, image: QImage | None) -> None:
        self._pixmap = QPixmap.fromImage(image) if image is not None and not image.isNull() else None
        self._scaled = None
        self.update()

    def has_image(self) -> bool:
        return self._pixmap is not None

    def sizeHint(self):
        return QSize(560, 420)

    def paintEvent(self, event):
        p = QPainter(self)
        if self._pixmap is None:
            return
        dpr = self.devicePixelRatioF()
        target = self.size() * dpr
        if self._scaled is None or self._scaled.size() != self._pixmap.size().scaled(target, Qt.AspectRatioMode.KeepAspectRatio):
            self._scaled = self._pixmap.scaled(target, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            self._scaled.setDevicePixelRatio(dpr)
        w = self._scaled.width() / dpr
        h = self._scaled.height() / dpr
        p.drawPixmap(int((self.width() - w) / 2), int((self.height() - h) / 2), self._scaled)
