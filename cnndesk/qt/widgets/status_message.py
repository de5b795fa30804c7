"""A status-bar message that fades out instead of vanishing."""

from __future__ import annotations

from PySide6.QtCore import QEasingCurve, QPropertyAnimation, Qt, QTimer
from PySide6.QtWidgets import QGraphicsOpacityEffect, QLabel


class FadingMessage(QLabel):
    FADE_MS = 700

    def __init__(self, parent=None):
        super().__init__(parent)
        # messages name files and folders (an undo's skipped files, a write's output folder): plain
        # text, never HTML -- AutoText rendered a file named <img src=...>.png as a local image
        self.setTextFormat(Qt.TextFormat.PlainText)
        self._effect = QGraphicsOpacityEffect(self)
        self._effect.setOpacity(1.0)
        self.setGraphicsEffect(self._effect)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._fade)
        self._anim = QPropertyAnimation(self._effect, b"opacity", self)
        self._anim.setDuration(self.FADE_MS)
        self._anim.setStartValue(1.0)
        self._anim.setEndValue(0.0)
        self._anim.setEasingCurve(QEasingCurve.Type.InOutQuad)
        self._anim.finished.connect(self._faded)

    def show_message(self, text: str, ms: int = 4000) -> None:
        """Show ``text``; after ``ms`` milliseconds it fades out (``ms`` = 0 keeps it)."""
        self._anim.stop()
        self._effect.setOpacity(1.0)
        self.setText(text)
        if ms > 0:
            self._timer.start(ms)
        else:
            self._timer.stop()

    def current(self) -> str:
        return self.text()

    def _fade(self) -> None:
        self._anim.setDuration(self.FADE_MS)
        self._anim.start()

    def _faded(self) -> None:
        self.clear()
        self._effect.setOpacity(1.0)
