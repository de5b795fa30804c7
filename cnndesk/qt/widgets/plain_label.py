"""PlainLabel: the label for text that comes from outside the app (model labels, file and folder
names, error messages). Plain text, never HTML — a QLabel's default (AutoText) renders anything
that looks like HTML, so a label ``<img src=/home/me/secret.png>`` would show a local image.
``set_error`` shows a message in the error colour instead of wrapping it in a ``<span>``."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

ERROR_STYLE = "color:#d93025"


class PlainLabel(QLabel):
    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self._error = False
        super().setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        if self._error:
            self._error = False
            self.setStyleSheet("")
        super().setText(text)

    def set_error(self, text: str) -> None:
        super().setText(text)
        if not self._error:
            self._error = True
            self.setStyleSheet(ERROR_STYLE)
