"""The empty state: invites a drop and offers Open and "Try a sample"."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class DropZone(QWidget):
    open_images = Signal()
    open_folder = Signal()
    try_sample = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.highlight = False
        title = QLabel("Drop photos or a folder here")
        f = QFont(self.font())
        f.setPointSizeF(f.pointSizeF() * 1.8)
        f.setBold(True)
        title.setFont(f)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        sub = QLabel(
            "cnndesk shows what a convolutional neural network sees in them, with its confidence.\n"
            "Everything runs on this computer — nothing is uploaded."
        )
        sub.setAlignment(Qt.AlignmentFlag.AlignCenter)
        sub.setWordWrap(True)
        self.btn_open = QPushButton("Open Images…")
        self.btn_folder = QPushButton("Open Folder…")
        self.btn_sample = QPushButton("Try a sample")
        self.btn_sample.setDefault(True)
        self.btn_open.setToolTip("Choose image files to classify (Ctrl+O)")
        self.btn_folder.setToolTip("Classify every image in a folder and its subfolders (Ctrl+Shift+O)")
        self.btn_sample.setToolTip("Classify a few bundled sample photos")
        self.btn_open.clicked.connect(self.open_images)
        self.btn_folder.clicked.connect(self.open_folder)
        self.btn_sample.clicked.connect(self.try_sample)
        row = QHBoxLayout()
        row.addStretch(1)
        for b in (self.btn_open, self.btn_folder, self.btn_sample):
            b.setMinimumHeight(34)
            b.setMinimumWidth(130)
            row.addWidget(b)
        row.addStretch(1)
        hint = QLabel("or paste an image with Ctrl+V")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setEnabled(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(48, 48, 48, 48)
        lay.addStretch(2)
        lay.addWidget(title)
        lay.addSpacing(8)
        lay.addWidget(sub)
        lay.addSpacing(24)
        lay.addLayout(row)
        lay.addSpacing(8)
        lay.addWidget(hint)
        lay.addStretch(3)

    def set_highlight(self, on: bool):
        self.highlight = on
        self.update()

    def paintEvent(self, event):
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        accent = self.palette().color(QPalette.ColorRole.Highlight)
        c = QColor(accent if self.highlight else self.palette().color(QPalette.ColorRole.Mid))
        pen = QPen(c, 2.5 if self.highlight else 2, Qt.PenStyle.DashLine)
        p.setPen(pen)
        if self.highlight:
            fill = QColor(accent)
            fill.setAlpha(30)
            p.setBrush(fill)
        r = QRectF(self.rect()).adjusted(20, 20, -20, -20)
        p.drawRoundedRect(r, 18, 18)
