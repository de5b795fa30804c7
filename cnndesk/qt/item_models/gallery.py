"""The session gallery: a QAbstractListModel over immutable ImageResult items.

Results arrive from jobs as new objects (:class:`~cnndesk.qt.jobs.ItemClassified`,
:class:`~cnndesk.qt.jobs.ItemImages`) and are applied here, on the UI thread. Icons and display
images live in bounded LRU caches (:class:`~cnndesk.qt.item_models.lru.LruCache`, as the folder
table's thumbnails): a gallery of thousands of photos keeps at most ``max_icons`` icons and
``max_displays`` display images; an evicted one is made again on a worker (``request_images``)
when it is painted or shown again, and :attr:`GalleryModel.images_ready` says when it is back.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPixmap

from cnndesk.qt.item_models.lru import LruCache
from cnndesk.qt.jobs import ImageResult, ItemClassified, ItemImages

ItemRole = Qt.ItemDataRole.UserRole + 1
_ROOT = QModelIndex()
ICON = 96
MAX_ICONS = 2000  # 96 px icons, about 37 KB each
MAX_DISPLAYS = 24  # display images of at most 1600 px, up to about 7.7 MB each


class GalleryModel(QAbstractListModel):
    images_ready = Signal(int)  # an item's icon or display image arrived (its id)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.items: list[ImageResult] = []
        self._rows: dict[int, int] = {}  # item id -> row
        self._icons: LruCache[int, QIcon] = LruCache(MAX_ICONS)
        self._displays: LruCache[int, QImage] = LruCache(MAX_DISPLAYS)
        self._shared: dict[bool, QIcon] = {}  # the placeholder and the error badge
        self.threshold = 0.5
        # asked with (items, with_display) for images evicted from the caches
        self.request_images: Callable[[list[ImageResult], bool], None] | None = None
        self._wanted: dict[int, bool] = {}
        self._inflight: dict[bool, set[int]] = {False: set(), True: set()}
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(30)
        self._flush.timeout.connect(self._ask)

    @property
    def max_icons(self) -> int:
        return self._icons.max_items

    @max_icons.setter
    def max_icons(self, n: int) -> None:
        self._icons.max_items = n

    @property
    def max_displays(self) -> int:
        return self._displays.max_items

    @max_displays.setter
    def max_displays(self, n: int) -> None:
        self._displays.max_items = n

    def cached(self) -> tuple[int, int]:
        """How many (icons, display images) are kept now."""
        return len(self._icons), len(self._displays)

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

    # -- the bounded images ---------------------------------------------------------------------
    def _icon(self, item: ImageResult) -> QIcon:
        icon = self._icons.get(item.id)
        if icon is not None:
            return icon
        if item.prediction is not None:  # classified before, its icon evicted: made again
            self._want(item.id, False)
        error = bool(item.error)
        if error not in self._shared:
            self._shared[error] = QIcon(badge_pixmap(None, error, ICON))
        return self._shared[error]

    def display(self, item: ImageResult) -> QImage | None:
        """The item's display image, or None while it is (made again) on a worker."""
        image = self._displays.get(item.id)
        if image is None and not item.error and item.prediction is not None:
            self._want(item.id, True)
        return image

    def has_display(self, item_id: int) -> bool:
        return item_id in self._displays

    def _want(self, item_id: int, with_display: bool) -> None:
        if self.request_images is None or item_id in self._inflight[with_display]:
            return
        self._wanted[item_id] = self._wanted.get(item_id, False) or with_display
        if not self._flush.isActive():
            self._flush.start()

    def _ask(self) -> None:
        """One job per kind for what was painted or shown since the last ask (the window runs
        each as the one live job of its kind: rows scrolled past are not worked on)."""
        wanted, self._wanted = self._wanted, {}
        for with_display in (True, False):
            items = [self.items[self._rows[i]] for i, d in wanted.items() if d == with_display and i in self._rows]
            if with_display:
                items = items[-self.max_displays:]
            else:
                items = items[-200:]
            if items and self.request_images is not None:
                self._inflight[with_display] = {it.id for it in items}
                self.request_images(items, with_display)

    def set_images(self, images: ItemImages) -> None:
        """A thumbnail and/or display image made on a worker (ignored for removed items)."""
        row = self._put_images(images)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
            self.images_ready.emit(images.item_id)

    def _put_images(self, images: ItemImages) -> int | None:
        for flight in self._inflight.values():
            flight.discard(images.item_id)
        row = self._rows.get(images.item_id)
        if row is None:
            return None
        item = self.items[row]
        if images.thumb is not None:
            self._icons.put(item.id, QIcon(badge_pixmap(images.thumb, bool(item.error), ICON)))
        if images.display is not None:
            self._displays.put(item.id, images.display)
        return row

    def stop_requests(self) -> None:
        """No more images are asked for (the window is closing)."""
        self.request_images = None
        self._flush.stop()
        self._wanted.clear()

    def displays_wanted(self, items: list[ImageResult], current_id: int | None = None) -> frozenset[int]:
        """The ids a classify job should make display images for: the current item and the last
        new items the cache can keep (never more than it keeps)."""
        ids = [it.id for it in items if it.prediction is None and not it.error]
        ids = ids[-self.max_displays:]
        if current_id is not None and any(it.id == current_id for it in items):
            ids.append(current_id)
        return frozenset(i for i in ids if i not in self._displays)

    # -- items ----------------------------------------------------------------------------------
    def add(self, item: ImageResult) -> QModelIndex:
        if item.id in self._rows:
            return self.update(item)
        self.beginInsertRows(QModelIndex(), len(self.items), len(self.items))
        self._rows[item.id] = len(self.items)
        self.items.append(item)
        self.endInsertRows()
        return self.index(len(self.items) - 1)

    def update(self, item: ImageResult, images: ItemImages | None = None) -> QModelIndex:
        """Swap in the new version of an item (same id), with its new images if any: both are in
        place before the view hears of the change (it asks for the icon at once)."""
        row = self._rows.get(item.id)
        if row is None:
            return self.add(item)
        old, self.items[row] = self.items[row], item
        if bool(old.error) != bool(item.error):
            self._icons.pop(item.id)  # the badge changes
        if images is not None:
            self._put_images(images)
        idx = self.index(row)
        self.dataChanged.emit(idx, idx)
        if images is not None:
            self.images_ready.emit(item.id)
        return idx

    def apply(self, result: ItemClassified) -> QModelIndex:
        """A classify job's partial result: the new item and its images. Returns its index, or
        an invalid one when the item was removed meanwhile (it is not put back)."""
        if result.item.id not in self._rows:
            return QModelIndex()
        return self.update(result.item, result.images)

    def remove_rows(self, rows: list[int]) -> int:
        """Remove items from the gallery (not from disk); returns how many."""
        n = 0
        for row in sorted(set(rows), reverse=True):
            if 0 <= row < len(self.items):
                self.beginRemoveRows(QModelIndex(), row, row)
                item = self.items.pop(row)
                self._icons.pop(item.id)
                self._displays.pop(item.id)
                self._reindex()
                self.endRemoveRows()
                n += 1
        return n

    def _reindex(self) -> None:
        self._rows = {it.id: i for i, it in enumerate(self.items)}

    def clear(self):
        self.beginResetModel()
        self.items.clear()
        self._rows.clear()
        self._icons.clear()
        self._displays.clear()
        self._wanted.clear()
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


