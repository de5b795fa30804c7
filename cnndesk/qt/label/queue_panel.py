"""The "Label these next" side of the Label workspace: the image asked about, large, why it is
asked, one button per class (with its count; keys 1-9) and the answer buttons. Display only: the
workspace owns the queue and the session and says what to show."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cnndesk.qt.widgets.image_view import ImageView


def plain_label(text: str = "", wrap: bool = True) -> QLabel:
    lab = QLabel(text)
    lab.setTextFormat(Qt.TextFormat.PlainText)
    lab.setWordWrap(wrap)
    return lab


class QueuePanel(QWidget):
    class_clicked = Signal(int)  # 0-based class number
    new_class = Signal()
    skip = Signal()
    none_of_these = Signal()
    undo = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 0, 0, 0)
        self.title = plain_label("Label these next", wrap=False)
        f = self.title.font()
        f.setBold(True)
        self.title.setFont(f)
        lay.addWidget(self.title)
        self.image = ImageView()
        self.image.setMinimumSize(160, 120)
        lay.addWidget(self.image, 1)
        self.name = plain_label()
        self.reason = plain_label()
        self.reason.setStyleSheet("color: palette(mid);")
        lay.addWidget(self.name)
        lay.addWidget(self.reason)
        self.class_grid = QGridLayout()
        self.class_grid.setSpacing(4)
        lay.addLayout(self.class_grid)
        row = QGridLayout()
        row.setSpacing(4)
        self.new_btn = QPushButton("New class (N)")
        self.skip_btn = QPushButton("Skip (S)")
        self.none_btn = QPushButton("None of these")
        self.undo_btn = QPushButton("Undo")
        self.undo_btn.setToolTip("Undo the last answer (Backspace or Ctrl+Z)")
        for n, (b, sig) in enumerate(((self.new_btn, self.new_class), (self.skip_btn, self.skip),
                                      (self.none_btn, self.none_of_these), (self.undo_btn, self.undo))):
            b.setAutoDefault(False)
            b.clicked.connect(sig.emit)
            row.addWidget(b, n // 2, n % 2)
        lay.addLayout(row)
        self._buttons: list[QPushButton] = []

    def set_classes(self, classes: list[str], counts: dict[str, int]) -> None:
        """One button per class, its key (1-9) and how many images it has."""
        while len(self._buttons) > len(classes):
            b = self._buttons.pop()
            self.class_grid.removeWidget(b)
            b.deleteLater()
        while len(self._buttons) < len(classes):
            n = len(self._buttons)
            b = QPushButton()
            b.setAutoDefault(False)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            b.clicked.connect(lambda _=False, n=n: self.class_clicked.emit(n))
            self.class_grid.addWidget(b, n // 3, n % 3)
            self._buttons.append(b)
        for n, (b, c) in enumerate(zip(self._buttons, classes, strict=True)):
            key = f"{n + 1}  " if n < 9 else ""
            b.setText(f"{key}{c}  ({counts.get(c, 0)})")  # QPushButton text is never rich text
            tip = f"{c}: {counts.get(c, 0)} labelled" + (f" (key {n + 1})" if n < 9 else "")
            b.setToolTip(f"<p>{html.escape(tip)}</p>")  # a class name is never read as markup

    def show_question(self, position: int, total: int, name: str, reason: str) -> None:
        self.title.setText(f"Label these next \u00b7 {position} of {total}")
        self.name.setText(name)
        self.reason.setText(reason)

    def show_nothing(self, text: str) -> None:
        self.title.setText("Label these next")
        self.name.setText(text)
        self.reason.setText("")
        self.image.set_image(None)
