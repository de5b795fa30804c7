"""FlowRow: a row of controls that wraps onto further lines when the window is narrow, as words do
(the layout of Qt's Flow Layout example). A plain QHBoxLayout asks for the sum of its controls'
widths, so one toolbar-like row of a page (Camera's "Record training samples: …", Inside the CNN's
method, class, opacity and Save) set the page's minimum width and a 1280×720 screen at 200 %
(640 logical px) scrolled sideways; a FlowRow asks only for its widest control."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QStyle, QWidget


class FlowRow(QLayout):
    def __init__(self, parent: QWidget | None = None, spacing: int = -1):
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self._stretch: set[QWidget] = set()
        if parent is not None:
            self.setContentsMargins(0, 0, 0, 0)

    def add_stretching(self, widget: QWidget) -> None:
        """Add a control that takes its line's spare width (a filter field), as a box layout's
        stretch factor does."""
        self.addWidget(widget)
        self._stretch.add(widget)

    # -- QLayout ---------------------------------------------------------------------------------
    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 (Qt's name)
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._arrange(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._arrange(rect, apply=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        """All on one line."""
        m = self.contentsMargins()
        shown = [i for i in self._items if not i.isEmpty()]
        w = sum(i.sizeHint().width() for i in shown) + self._gap(Qt.Orientation.Horizontal) * max(0, len(shown) - 1)
        h = max((i.sizeHint().height() for i in shown), default=0)
        return QSize(w + m.left() + m.right(), h + m.top() + m.bottom())

    def minimumSize(self) -> QSize:  # noqa: N802
        """The widest control: narrower than that, one control per line."""
        size = QSize()
        for item in self._items:
            if not item.isEmpty():
                size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    # -- placing ---------------------------------------------------------------------------------
    def _gap(self, orientation: Qt.Orientation) -> int:
        if self._spacing >= 0:
            return self._spacing
        parent = self.parentWidget()
        if parent is None:
            return 6
        metric = (QStyle.PixelMetric.PM_LayoutHorizontalSpacing if orientation == Qt.Orientation.Horizontal
                  else QStyle.PixelMetric.PM_LayoutVerticalSpacing)
        value = parent.style().pixelMetric(metric, None, parent)
        return value if value >= 0 else 6

    def _arrange(self, rect: QRect, apply: bool) -> int:
        """Place the controls line by line inside ``rect`` (or only measure); returns the height
        used. Each line's controls are centred vertically on the line's tallest one."""
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        hgap, vgap = self._gap(Qt.Orientation.Horizontal), self._gap(Qt.Orientation.Vertical)
        lines: list[list[tuple[QLayoutItem, QSize]]] = [[]]
        x = area.x()
        for item in self._items:
            if item.isEmpty():
                continue
            hint = item.sizeHint().boundedTo(QSize(max(area.width(), 1), 1 << 20))
            hint = hint.expandedTo(item.minimumSize())
            if lines[-1] and x + hint.width() > area.x() + area.width():
                lines.append([])
                x = area.x()
            lines[-1].append((item, hint))
            x += hint.width() + hgap
        y = area.y()
        for line in lines:
            if not line:
                continue
            height = max(h.height() for _, h in line)
            spare = area.width() - sum(h.width() for _, h in line) - hgap * (len(line) - 1)
            grow = [i for i, _ in line if i.widget() in self._stretch]
            x = area.x()
            for item, hint in line:
                width = hint.width()
                if spare > 0 and item in grow:
                    width = min(width + spare // len(grow), item.maximumSize().width())
                if apply:
                    item.setGeometry(QRect(QPoint(x, y + (height - hint.height()) // 2), QSize(width, hint.height())))
                x += width + hgap
            y += height + vgap
        return max(0, y - vgap - area.y()) + m.top() + m.bottom()


def together(*widgets: QWidget) -> QWidget:
    """Controls that stay on one line of a FlowRow (a caption and its field)."""
    from PySide6.QtWidgets import QHBoxLayout

    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        row.addWidget(w)
    return box
