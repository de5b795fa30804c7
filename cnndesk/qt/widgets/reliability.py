"""A reliability diagram: for each confidence bin, how often the model was right (bars) against
how confident it said it was (the diagonal); bar opacity shows how many images fell in the bin."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


class ReliabilityDiagram(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.bins: list[dict] = []
        self.ece: float | None = None
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("Bars: how often the model was right among validation images given that confidence. "
                        "On the diagonal, a confidence of 80 % means right 8 times out of 10.")

    def set_reliability(self, rel: dict | None) -> None:
        self.bins = list(rel["bins"]) if rel else []
        self.ece = rel["ece"] if rel else None
        self.update()

    def sizeHint(self):
        return QSize(320, 170)

    def paintEvent(self, _event):
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        accent = pal.color(QPalette.ColorRole.Highlight)
        m_left, m_bottom, m_top = 34, 18, 6
        # the right margin holds half of the centred "100%" under the plot's right edge
        plot = QRectF(m_left, m_top, self.width() - m_left - 22, self.height() - m_top - m_bottom)
        grid = QColor(text)
        grid.setAlpha(60)
        p.setPen(QPen(grid, 1))
        p.drawRect(plot)
        f = p.font()
        f.setPointSizeF(f.pointSizeF() * 0.85)
        p.setFont(f)
        for v in (0.0, 0.5, 1.0):
            y = plot.bottom() - v * plot.height()
            p.setPen(text)
            p.drawText(QRectF(0, y - 8, m_left - 4, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       f"{v:.0%}")
            x = plot.left() + v * plot.width()
            p.drawText(QRectF(x - 20, plot.bottom() + 2, 40, 14), Qt.AlignmentFlag.AlignCenter, f"{v:.0%}")
        if not self.bins:
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "No validation images")
            return
        most = max(b["count"] for b in self.bins) or 1
        for b in self.bins:
            if not b["count"]:
                continue
            x0 = plot.left() + b["lo"] * plot.width()
            w = (b["hi"] - b["lo"]) * plot.width()
            h = b["accuracy"] * plot.height()
            c = QColor(accent)
            c.setAlpha(int(70 + 185 * b["count"] / most))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(c)
            p.drawRect(QRectF(x0 + 1, plot.bottom() - h, w - 2, h))
        p.setPen(QPen(QColor("#c62828"), 1.5, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(plot.left(), plot.bottom()), QPointF(plot.right(), plot.top()))
        if self.ece is not None:
            p.setPen(text)
            p.drawText(plot.adjusted(6, 4, -6, -4), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                       f"calibration error {self.ece:.1%}")
