"""The Label workspace's thumbnail grid: one row per image of the section shown (a visual group,
a suggested label, or everything ordered by section), with the answer or the suggestion and its
confidence under each thumbnail. Thumbnails are made lazily on a worker (the model asks through
``request_thumbs``; :meth:`set_thumb` files them) and kept in a bounded cache. Plain data only:
the model never reads the labelling session (a worker may be using it)."""

from __future__ import annotations

import html

from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPixmap

from cnndesk.core.labelling.folder import NONE, SKIPPED
from cnndesk.qt.item_models.lru import LruCache

IndexRole = Qt.ItemDataRole.UserRole + 1  # the image's index in the session
THUMB_SIZE = 88
MAX_THUMBS = 1500
MAX_PENDING = 240
_ROOT = QModelIndex()


def tile_text(state: str | None, sugg) -> str:
    """The line under a thumbnail: the answer, else the suggestion with its confidence."""
    if state == SKIPPED:
        return "skipped"
    if state == NONE:
        return "none of these"
    if state is not None:
        return f"\u2713 {state}"
    if sugg is None or sugg.label is None:
        return "\u2014"
    if sugg.unknown:
        return f"{sugg.label}? {sugg.score:.0%}"
    return f"{sugg.label} {sugg.score:.0%}"


class LabelGridModel(QAbstractListModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.paths: list[str] = []
        self.names: list[str] = []
        self.states: list[str | None] = []
        self.suggestions: list | None = None
        self.rows: list[int] = []  # image indices shown, in order
        self._row_of: dict[int, int] = {}
        self.thumbs: LruCache[int, QPixmap] = LruCache(MAX_THUMBS)
        self.request_thumbs = None  # callable(list[(index, path)]) -> None (starts a worker job)
        self._wanted: dict[int, None] = {}  # asked for, not delivered yet (insertion = recency)
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(0)
        self._flush.timeout.connect(self._send_requests)

    # -- data in ---------------------------------------------------------------------------------
    def set_images(self, paths: list[str], names: list[str]) -> None:
        self.beginResetModel()
        self.paths, self.names = list(paths), list(names)
        self.states = [None] * len(paths)
        self.suggestions = None
        self.rows = list(range(len(paths)))
        self._row_of = {i: i for i in self.rows}
        self.thumbs.clear()
        self._wanted.clear()
        self.endResetModel()

    def set_paths(self, paths: list[str]) -> None:
        """The same images at new paths (moved): their thumbnails are made again."""
        self.paths = list(paths)
        self.thumbs.clear()
        self._wanted.clear()
        if self.rows:
            self.dataChanged.emit(self.index(0), self.index(len(self.rows) - 1), [Qt.ItemDataRole.DecorationRole])

    def set_rows(self, rows: list[int]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self._row_of = {i: r for r, i in enumerate(self.rows)}
        self.endResetModel()

    def set_states(self, states: list[str | None], suggestions=None) -> None:
        """New answers (and suggestions, when refitted): repaint the text only."""
        self.states = list(states)
        if suggestions is not None:
            self.suggestions = suggestions
        if self.rows:
            self.dataChanged.emit(self.index(0), self.index(len(self.rows) - 1), [Qt.ItemDataRole.DisplayRole])

    def set_thumb(self, thumb) -> None:
        """A worker's :class:`cnndesk.qt.jobs.Thumb` (key: the image index)."""
        i = thumb.key
        self._wanted.pop(i, None)
        if not (0 <= i < len(self.paths)) or thumb.path != self.paths[i]:
            return  # from an older folder
        self.thumbs.put(i, QPixmap.fromImage(thumb.image))
        row = self._row_of.get(i)
        if row is None:
            return
        idx = self.index(row)
        self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def stop_requests(self) -> None:
        self.request_thumbs = None
        self._flush.stop()

    # -- data out --------------------------------------------------------------------------------
    def rowCount(self, parent=_ROOT):
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        i = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return tile_text(self.states[i], self.suggestions[i] if self.suggestions else None)
        if role == Qt.ItemDataRole.DecorationRole:
            pix = self.thumbs.get(i)
            if pix is None:
                self._want(i)
            return pix
        if role == Qt.ItemDataRole.ToolTipRole:  # a file name is never read as markup
            return f"<p>{html.escape(self.names[i])}</p>"
        if role == Qt.ItemDataRole.ForegroundRole:
            if self.states[i] is None:
                s = self.suggestions[i] if self.suggestions else None
                if s is not None and s.unknown:
                    return QColor("#a05a00")
                return None
            return QColor("#1a7f37") if self.states[i] not in (SKIPPED, NONE) else QColor("#777777")
        if role == Qt.ItemDataRole.SizeHintRole:
            return QSize(THUMB_SIZE + 24, THUMB_SIZE + 30)
        if role == IndexRole:
            return i
        return None

    def _want(self, i: int) -> None:
        if i in self._wanted:
            return
        self._wanted[i] = None
        while len(self._wanted) > MAX_PENDING:  # scrolled far: the oldest wishes are dropped
            self._wanted.pop(next(iter(self._wanted)))
        self._flush.start()

    def _send_requests(self) -> None:
        if self.request_thumbs is not None and self._wanted:
            newest_first = list(reversed(self._wanted))
            self.request_thumbs([(i, self.paths[i]) for i in newest_first])
