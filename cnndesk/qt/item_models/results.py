"""The folder results table: a model that grows in batches (never a widget per row) and a proxy
that filters by label and confidence range and sorts by confidence."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, QTimer
from PySide6.QtGui import QColor, QPixmap

from cnndesk.core.predict.stream import FileResult
from cnndesk.qt.item_models.gallery import badge_pixmap
from cnndesk.qt.item_models.lru import LruCache

COLUMNS = ("", "File", "Top label", "Confidence")
COL_THUMB, COL_FILE, COL_LABEL, COL_CONF = range(4)
SortRole = Qt.ItemDataRole.UserRole + 2
ResultRole = Qt.ItemDataRole.UserRole + 3
_ROOT = QModelIndex()
MAX_THUMBS = 2000  # thumbnails kept (about 10 KB each); others are made again when scrolled to


class ResultsTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[FileResult] = []
        self.roots: list[str] = []  # the opened folders: the File column shows paths relative to them
        # a bounded LRU of thumbnails by row: 100,000 files no longer keep 1 GB of images
        self._pixmaps: LruCache[int, QPixmap] = LruCache(MAX_THUMBS)
        self._error_badge: QPixmap | None = None
        self.request_thumbs: Callable[[list[tuple[int, str]]], None] | None = None
        self._wanted: dict[int, str] = {}
        self._inflight: set[int] = set()  # rows a worker is making thumbnails for
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(60)
        self._flush.timeout.connect(self._ask)

    def display_path(self, path: str) -> str:
        """``sub/img.jpg`` below an opened folder (two files of one name stay distinguishable)."""
        for root in self.roots:
            root = root.rstrip("/\\") + os.sep
            if path.startswith(root):
                return path[len(root):]
        return os.path.basename(path)

    def relocate(self, moved: dict[str, str]) -> int:
        """Files were moved (a sort, or its undo): point their rows at the new paths."""
        from dataclasses import replace

        n = 0
        for i, r in enumerate(self.rows):
            new = moved.get(r.path)
            if new is not None:
                self.rows[i] = replace(r, path=new)
                n += 1
        if n:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(COLUMNS) - 1))
        return n

    def rowCount(self, parent=_ROOT):
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=_ROOT):
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        col = index.column()
        if role == ResultRole:
            return r
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_FILE:
                return self.display_path(r.path)
            if col == COL_LABEL:
                if r.prediction and r.prediction.unknown:
                    return f"Unknown (closest: {r.prediction.label})"
                return r.prediction.label if r.prediction else "—"
            if col == COL_CONF:
                if r.prediction and r.prediction.unknown:  # the closest class's score means nothing here
                    return f"unknown (novelty {r.prediction.novelty:.2f})"
                return f"{r.prediction.score:.1%}" if r.prediction else "error"
        if role == SortRole:
            if col == COL_CONF:
                return confidence_key(r)
            if col == COL_LABEL:
                return r.prediction.label.lower() if r.prediction else "~"
            if col == COL_FILE:
                return self.display_path(r.path).lower()
            return r.index
        if role == Qt.ItemDataRole.DecorationRole and col == COL_THUMB:
            if r.error:
                if self._error_badge is None:
                    self._error_badge = badge_pixmap(None, True, 48)
                return self._error_badge
            row = index.row()
            pm = self._pixmaps.get(row)
            if pm is not None:
                return pm
            if self.request_thumbs is not None:
                self._wanted[row] = r.path  # painted but evicted: made again on a worker
                if not self._flush.isActive():
                    self._flush.start()
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if r.prediction is not None and r.prediction.unknown:
                p = r.prediction
                return (f"{r.path}\nNot one of my classes: unlike the images the model learned from "
                        f"(novelty {p.novelty:.2f}). Closest class: {p.label} ({p.score:.0%}, not to be trusted).")
            return r.error or r.path
        if role == Qt.ItemDataRole.ForegroundRole and r.error and col in (COL_LABEL, COL_CONF):
            return QColor("#d93025")
        if role == Qt.ItemDataRole.ForegroundRole and r.prediction and r.prediction.unknown and col in (COL_LABEL, COL_CONF):
            return QColor("#b06000")
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COL_CONF:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def append(self, results: list[FileResult]) -> None:
        if not results:
            return
        first = len(self.rows)
        kept = []
        for i, r in enumerate(results):
            if r.extra is not None:  # the worker's thumbnail goes into the bounded cache
                self._put(first + i, QPixmap.fromImage(r.extra))
                r = replace(r, extra=None)
            kept.append(r)
        self.beginInsertRows(QModelIndex(), first, first + len(kept) - 1)
        self.rows.extend(kept)
        self.endInsertRows()

    @property
    def max_thumbs(self) -> int:
        return self._pixmaps.max_items

    @max_thumbs.setter
    def max_thumbs(self, n: int) -> None:
        self._pixmaps.max_items = n

    def _put(self, row: int, pm: QPixmap) -> None:
        self._pixmaps.put(row, pm)

    def thumbs_cached(self) -> int:
        return len(self._pixmaps)

    def _ask(self) -> None:
        """Rows painted without a thumbnail since the last ask: one job for what is on screen
        now (the window starts it as the one live "thumbs" job, so rows scrolled past are not
        worked on)."""
        wanted, self._wanted = list(self._wanted.items())[-200:], {}
        rows = {row for row, _ in wanted}
        if not rows or rows <= self._inflight:
            return  # the running job makes them already
        self._inflight = rows  # the new job replaces the old one: rows scrolled past are dropped
        if self.request_thumbs is not None:
            self.request_thumbs(wanted)

    def set_thumb(self, row: int, path: str, image) -> None:
        """A thumbnail made again on a worker (ignored when the table changed meanwhile)."""
        self._inflight.discard(row)
        if 0 <= row < len(self.rows) and self.rows[row].path == path:
            self._put(row, QPixmap.fromImage(image))
            idx = self.index(row, COL_THUMB)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def clear(self) -> None:
        self.beginResetModel()
        self.rows = []
        self._pixmaps.clear()
        self._wanted.clear()
        self._inflight.clear()
        self.endResetModel()

    def labels(self) -> list[str]:
        return sorted({r.prediction.label for r in self.rows if r.prediction})


def confidence_key(r: FileResult) -> float:
    """What "Uncertain first" sorts by: unreadable files first (-1), then the "not one of my classes"
    rows, most unlike first (between -1 and -0.5), then the real confidences (0..1)."""
    if r.prediction is None:
        return -1.0
    if r.prediction.unknown:
        return -1.0 + 1.0 / (2.0 + max(0.0, r.prediction.novelty or 0.0))
    return r.prediction.score


def known_confidence(r: FileResult) -> float | None:
    """The confidence a filter may trust: None for unreadable files and "not one of my classes"."""
    if r.prediction is None or r.prediction.unknown:
        return None
    return r.prediction.score


class ResultsFilterProxy(QSortFilterProxyModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSortRole(SortRole)
        self._label = ""
        self._lo, self._hi = 0.0, 1.0
        self._errors = True

    def set_filter(self, label: str | None = None, lo: float | None = None, hi: float | None = None, errors: bool | None = None):
        begin = getattr(self, "beginFilterChange", None)  # Qt >= 6.9
        if begin is not None:
            begin()
        if label is not None:
            self._label = label.strip().lower()
        if lo is not None:
            self._lo = lo
        if hi is not None:
            self._hi = hi
        if errors is not None:
            self._errors = errors
        if begin is not None:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, row, parent):
        r: FileResult = self.sourceModel().rows[row]
        if r.prediction is None:  # unreadable: no confidence, so only while the range starts at 0 %
            return self._errors and not self._label and self._lo <= 1e-9
        shown = ("unknown " if r.prediction.unknown else "") + r.prediction.label.lower()
        if self._label and self._label not in shown:
            return False
        conf = known_confidence(r)
        if conf is None:  # "not one of my classes": as unsure as it gets
            return self._lo <= 1e-9
        return self._lo - 1e-9 <= conf <= self._hi + 1e-9
