"""Small live charts drawn with QPainter: loss and accuracy per epoch, train and validation."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

TRAIN = QColor("#4f8ff7")
VAL = QColor("#f59e0b")


LEGEND = ("train", "validation")


class CurveChart(QWidget):
    """One chart (e.g. "Loss") with a train and a validation series."""

    def __init__(self, title: str, percent: bool = False, parent=None):
        super().__init__(parent)
        self.title = title
        self.percent = percent
        self.train: list[tuple[float, float]] = []
        self.val: list[tuple[float, float]] = []
        self.x_max = 1.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 160)

    def sizeHint(self):
        return QSize(360, 220)

    def clear(self, x_max: float = 1.0) -> None:
        self.train, self.val, self.x_max = [], [], max(1.0, x_max)
        self.update()

    def add(self, x: float, train: float, val: float) -> None:
        if math.isfinite(train):
            self.train.append((x, train))
        if math.isfinite(val):
            self.val.append((x, val))
        self.update()

    def x_ticks(self, most: int = 6) -> list[int]:
        """Whole epoch numbers to label under the plot: 1, a round step, the last."""
        top = max(1, int(math.ceil(self.x_max)))
        step = 1
        for m in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000):
            step = m
            if top / m <= most:
                break
        ticks = [1] + list(range(step, top + 1, step)) if step > 1 else list(range(1, top + 1))
        if ticks[-1] != top and top - ticks[-1] >= step / 2:
            ticks.append(top)
        return sorted(set(ticks))

    def legend_place(self, area: QRectF, fm, lo: float, hi: float) -> tuple[float, float, list[int]]:
        """(x, y of the legend's line, each entry's width): right-aligned on the title's line, or
        inside the plot where a narrow chart (a small screen at 200 %) leaves no room beside the
        title (they were drawn over each other), in the half the curves have left by now."""
        widths = [20 + fm.horizontalAdvance(n) + 12 for n in LEGEND]
        x, y = area.right() - sum(widths), 14.0
        if x < area.left() + fm.horizontalAdvance(self.title) + 12:
            last = [v for series in (self.train, self.val) for _, v in series[-1:]]
            high = bool(last) and (sum(last) / len(last) - lo) / (hi - lo) > 0.5
            x, y = max(area.left() + 4, x), area.bottom() - 10 if high else area.top() + 10
        return x, y, widths

    def paintEvent(self, event):
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        grid = pal.color(QPalette.ColorRole.Mid)
        grid.setAlpha(90)
        area = QRectF(self.rect()).adjusted(50, 26, -12, -26)
        p.setPen(text)
        fm = p.fontMetrics()
        title_w = fm.horizontalAdvance(self.title)
        p.drawText(QRectF(area.left(), 2, title_w + 4, 20), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   self.title)
        values = [v for _, v in self.train + self.val]
        if self.percent:
            lo, hi = 0.0, 1.0
        else:
            lo, hi = 0.0, max(values) * 1.1 if values else 1.0
        hi = hi if hi > lo else lo + 1
        for i in range(5):
            y = area.bottom() - area.height() * i / 4
            p.setPen(QPen(grid, 1))
            p.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            v = lo + (hi - lo) * i / 4
            p.setPen(text)
            label = f"{v:.0%}" if self.percent else f"{v:.2g}"
            p.drawText(QRectF(0, y - 8, 46, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
        for x in self.x_ticks():  # the epoch axis: numbered ticks under the plot
            px = area.left() + area.width() * x / self.x_max
            p.setPen(QPen(grid, 1))
            p.drawLine(QPointF(px, area.bottom()), QPointF(px, area.bottom() + 4))
            p.setPen(text)
            p.drawText(QRectF(px - 20, area.bottom() + 4, 40, 16), Qt.AlignmentFlag.AlignCenter, str(x))
        p.drawText(QRectF(0, area.bottom() + 4, area.left() - 6, 16),  # the axis' name, left of its numbers
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, "epoch")

        def pt(x, v):
            return QPointF(area.left() + area.width() * x / self.x_max, area.bottom() - area.height() * (v - lo) / (hi - lo))

        for series, color in ((self.train, TRAIN), (self.val, VAL)):
            if not series:
                continue
            path = QPainterPath(pt(*series[0]))
            for x, v in series[1:]:
                path.lineTo(pt(x, v))
            p.setPen(QPen(color, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
            p.setBrush(color)
            last = pt(*series[-1])
            p.drawEllipse(last, 3, 3)
        x, y, widths = self.legend_place(area, fm, lo, hi)
        for name, color, w in zip(LEGEND, (TRAIN, VAL), widths, strict=True):
            p.setPen(QPen(color, 3))
            p.drawLine(QPointF(x, y), QPointF(x + 16, y))
            p.setPen(text)
            p.drawText(QRectF(x + 20, y - 9, w - 20, 18), Qt.AlignmentFlag.AlignVCenter, name)
            x += w
