"""The session gallery: a QAbstractListModel over ImageResult items (thumbnails made on workers)."""

from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPixmap

from cnndesk.qt.jobs import ImageResult

ItemRole = Qt.ItemDataRole.UserRole + 1
_ROOT = QModelIndex()
ICON = 96


class GalleryModel(QAbstractListModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.items: list[ImageResult] = []
        self._icons: dict[int, QIcon] = {}
        self.threshold = 0.5

    def rowCount(self, parent=_ROOT):
        return 0 if parent.isValid() else len(self.items)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            if item.error:  # the name too: several broken files are told apart
                name = item.name if len(item.name) <= 18 else item.name[:8] + "…" + item.name[-8:]
                return f"Can't read\n{name}"
            if item.prediction is None:
                return "…"
            p = item.prediction
            if p.unknown:
                return f"Not mine\n(closest {p.label})"
            return f"{p.label}\n{p.score:.0%}" if p.score >= self.threshold else "Not sure"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon(item)
        if role == Qt.ItemDataRole.ToolTipRole:
            if item.error:
                return item.error
            if item.prediction:
                tip = f"{item.name}\n{item.prediction.label}: {item.prediction.score:.1%}"
                if item.prediction.unknown:
                    tip += "\nNot one of the model's classes (unlike its training images)"
                return tip
            return item.name
        if role == ItemRole:
            return item
        return None

    def _icon(self, item: ImageResult) -> QIcon:
        icon = self._icons.get(item.id)
        if icon is None:
            icon = QIcon(badge_pixmap(item.thumb, bool(item.error), ICON))
            self._icons[item.id] = icon
        return icon

    def add(self, item: ImageResult) -> QModelIndex:
        row = self.row_of(item.id)
        if row >= 0:
            return self.update(item)
        self.beginInsertRows(QModelIndex(), len(self.items), len(self.items))
        self.items.append(item)
        self.endInsertRows()
        return self.index(len(self.items) - 1)

    def update(self, item: ImageResult) -> QModelIndex:
        row = self.row_of(item.id)
        if row < 0:
            return self.add(item)
        self.items[row] = item
        self._icons.pop(item.id, None)
        idx = self.index(row)
        self.dataChanged.emit(idx, idx)
        return idx

    def remove_rows(self, rows: list[int]) -> int:
        """Remove items from the gallery (not from disk); returns how many."""
        n = 0
        for row in sorted(set(rows), reverse=True):
            if 0 <= row < len(self.items):
                self.beginRemoveRows(QModelIndex(), row, row)
                item = self.items.pop(row)
                self._icons.pop(item.id, None)
                self.endRemoveRows()
                n += 1
        return n

    def row_of(self, item_id: int) -> int:
        for i, it in enumerate(self.items):
            if it.id == item_id:
                return i
        return -1

    def clear(self):
        self.beginResetModel()
        self.items.clear()
        self._icons.clear()
        self.endResetModel()

    def set_threshold(self, t: float):
        self.threshold = t
        if self.items:
            self.dataChanged.emit(self.index(0), self.index(len(self.items) - 1))


def badge_pixmap(thumb: QImage | None, error: bool, size: int) -> QPixmap:
    """The thumbnail centred on a square, with a red "!" badge when the file could not be read."""
    pm = QPixmap(QSize(size, size))
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    if thumb is not None and not thumb.isNull():
        scaled = thumb.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        p.drawImage((size - scaled.width()) // 2, (size - scaled.height()) // 2, scaled)
    else:
        p.setBrush(QColor(128, 128, 128, 60))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawRoundedRect(4, 4, size - 8, size - 8, 8, 8)
    if error:
        r = size // 3
        p.setBrush(QColor("#d93025"))
        p.setPen(QColor("white"))
        p.drawEllipse(size - r - 2, 2, r, r)
        f = QFont()
        f.setBold(True)
        f.setPixelSize(int(r * 0.7))
        p.setFont(f)
        p.drawText(size - r - 2, 2, r, r, Qt.AlignmentFlag.AlignCenter, "!")
    p.end()
    return pm


