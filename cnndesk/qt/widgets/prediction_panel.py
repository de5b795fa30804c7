"""The verdict beside the image: a headline ("Egyptian cat 94 %", "Not sure", or for user models
with a novelty detector "Not one of my classes" with the closest class) and the top-k
classes as labelled bars with percentages. An unreadable file shows its reason inline."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from cnndesk.core.predict.classifier import Prediction
from cnndesk.qt.widgets.plain_label import PlainLabel


class PredictionBars(QWidget):
    ROW = 34

    def __init__(self, parent=None):
        super().__init__(parent)
        self.prediction: Prediction | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_prediction(self, p: Prediction | None):
        self.prediction = p
        n = len(p.labels) if p else 0
        self.setFixedHeight(max(1, n) * self.ROW + 4)
        self.update()

    def sizeHint(self):
        return QSize(320, 5 * self.ROW + 4)

    def minimumSizeHint(self):  # narrow windows (high-DPI laptops): shrink, never clip the percentages
        return QSize(160, self.height())

    def paintEvent(self, event):
        if not self.prediction:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        accent = pal.color(QPalette.ColorRole.Highlight)
        track = pal.color(QPalette.ColorRole.Mid)
        track.setAlpha(60)
        text = pal.color(QPalette.ColorRole.WindowText)
        w = self.width()
        f = QFont(self.font())
        unknown = self.prediction.unknown  # the scores among its classes mean nothing: drawn muted
        if unknown:
            accent = pal.color(QPalette.ColorRole.Mid)
            text = pal.color(QPalette.ColorRole.PlaceholderText)
        for i, (label, score) in enumerate(zip(self.prediction.labels, self.prediction.scores, strict=True)):
            y = i * self.ROW
            f.setBold(i == 0 and not unknown)
            p.setFont(f)
            p.setPen(text)
            pct = f"{score * 100:.1f} %" if not unknown else f"({score * 100:.0f} %)"
            p.drawText(QRectF(0, y, w - 70, 18), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)
            p.drawText(QRectF(w - 70, y, 70, 18), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, pct)
            bar = QRectF(0, y + 20, w, 8)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(track)
            p.drawRoundedRect(bar, 4, 4)
            c = QColor(accent)
            if i > 0:
                c.setAlpha(150)
            p.setBrush(c)
            p.drawRoundedRect(QRectF(0, y + 20, max(8.0, w * score), 8), 4, 4)


class PredictionPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.threshold = 0.5
        self.headline = PlainLabel()
        hf = QFont(self.font())
        hf.setPointSizeF(hf.pointSizeF() * 1.7)
        hf.setBold(True)
        self.headline.setFont(hf)
        self.headline.setWordWrap(True)
        self.detail = PlainLabel()
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bars = PredictionBars()
        self.meta = PlainLabel()
        self.meta.setEnabled(False)
        self.meta.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 16, 16, 16)
        lay.setSpacing(10)
        lay.addWidget(self.headline)
        lay.addWidget(self.detail)
        lay.addSpacing(6)
        lay.addWidget(self.bars)
        lay.addStretch(1)
        lay.addWidget(self.meta)
        self.setMinimumWidth(300)
        self.clear()

    def clear(self):
        self.headline.setText("")
        self.detail.setText("")
        self.meta.setText("")
        self.bars.set_prediction(None)

    def show_pending(self, name: str):
        self.headline.setText("Classifying…")
        self.detail.setText(name)
        self.bars.set_prediction(None)

    def show_error(self, name: str, message: str):
        self.headline.setText("Can't read this file")
        self.detail.set_error(message)
        self.bars.set_prediction(None)
        self.meta.setText(name)

    def show_prediction(self, name: str, p: Prediction, meta: str = ""):
        if p.unknown:  # unlike anything the model was trained on: not a doubtful choice between its classes
            self.headline.setText("Not one of my classes")
            self.detail.setText(f"Confidence unknown: this image looks unlike the images the model learned from "
                                f"(novelty {p.novelty:.2f}). The closest class is {p.label}; the greyed "
                                "scores below are only among its classes.")
        elif p.score >= self.threshold:
            self.headline.setText(f"{p.label}")
            self.detail.setText(f"{p.score:.0%} confident")
        else:
            self.headline.setText("Not sure")
            guesses = ", ".join(p.labels[:3])
            self.detail.setText(f"Best guesses: {guesses} (none above {self.threshold:.0%})")
        self.bars.set_prediction(p)
        self.meta.setText(meta or name)

