"""The evaluation page: accuracy, per-class precision / recall / F1, a confusion matrix whose cells
open the images they count, and a mistakes browser where a wrong label can be fixed (the file moves
to the right class folder) before retraining."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnndesk.core.common.safeio import describe_oserror, display, move_into
from cnndesk.core.training.evaluation import Evaluation
from cnndesk.qt import jobs
from cnndesk.qt.widgets.plain_label import PlainLabel
from cnndesk.qt.workers import JobKind

PathRole = Qt.ItemDataRole.UserRole + 10
THUMB = 72


class EvaluationView(QWidget):
    retrain_requested = Signal()
    dataset_changed = Signal()

    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.evaluation: Evaluation | None = None
        self.moved = 0
        self.journal = None  # the app's undo journal; None: the default one
        self._fixed: dict[str, tuple[int, str, tuple]] = {}  # moved file -> (row, text, data): Undo puts it back
        self.headline = PlainLabel("Train a model to see how well it does.")
        f = self.headline.font()
        f.setPointSizeF(f.pointSizeF() * 1.3)
        f.setBold(True)
        self.headline.setFont(f)
        self.per_class = QTableWidget(0, 5)
        self.per_class.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1", "Images"])
        self.per_class.verticalHeader().hide()
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.per_class.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.matrix = QTableWidget(0, 0)
        self.matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.matrix.setToolTip("Rows: the true class; columns: what the model said. Click a cell (or move to it "
                               "with the arrow keys) to see its images.")
        self.matrix.cellClicked.connect(self.open_cell)
        self.matrix.currentCellChanged.connect(lambda r, c, _r, _c: r >= 0 and c >= 0 and self.open_cell(r, c))
        self.matrix.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.cell_title = PlainLabel("Click a cell of the matrix to see its images")
        self.cell_title.setWordWrap(True)
        self.images = QListWidget()
        self.images.setViewMode(QListWidget.ViewMode.IconMode)
        self.images.setIconSize(QSize(THUMB, THUMB))
        # one fixed cell per image, picture above a one-line caption: the thumbnails arriving after the
        # first layout no longer draw over the captions
        self.images.setGridSize(QSize(THUMB + 40, THUMB + 8 + 2 * self.images.fontMetrics().height()))
        self.images.setUniformItemSizes(True)
        self.images.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.images.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.images.setMovement(QListWidget.Movement.Static)
        self.images.setToolTip("Double-click an image to open it; right-click for more")
        blank = QPixmap(THUMB, THUMB)
        blank.fill(Qt.GlobalColor.transparent)
        self._placeholder = QIcon(blank)  # the size of the thumbnail to come
        self.open_in_app = None  # set by the host: open files in the main window ("Open in cnndesk")
        self.images.itemActivated.connect(lambda it: self._open_paths([it.data(PathRole)]))
        self.mistakes = QListWidget()
        self.mistakes.setIconSize(QSize(56, 56))
        self.mistakes.setWordWrap(True)
        self.mistakes.currentItemChanged.connect(self._mistake_selected)
        for lst in (self.images, self.mistakes):
            lst.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            lst.customContextMenuRequested.connect(lambda pos, lst=lst: self._file_menu(lst, pos))
        self.fix_class = QComboBox()
        self.fix_btn = QPushButton("Move to this class")
        self.fix_btn.setToolTip("The label was wrong: move the file into the chosen class folder")
        self.fix_btn.clicked.connect(self.fix_selected)
        self.fix_btn.setEnabled(False)
        self.retrain_btn = QPushButton("Retrain")
        self.retrain_btn.setToolTip("Train again on the corrected folders")
        self.retrain_btn.clicked.connect(self.retrain_requested)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QLabel("Per class"))
        ll.addWidget(self.per_class, 1)
        ll.addWidget(QLabel("Confusion matrix"))
        ll.addWidget(self.matrix, 2)
        from cnndesk.qt.widgets.reliability import ReliabilityDiagram

        ll.addWidget(QLabel("Confidence vs. how often right (validation)"))
        self.reliability = ReliabilityDiagram()
        ll.addWidget(self.reliability, 1)
        mid = QWidget()
        ml = QVBoxLayout(mid)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.addWidget(self.cell_title)
        ml.addWidget(self.images, 1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel("Mistakes, most confident first"))
        rl.addWidget(self.mistakes, 1)
        fix = QHBoxLayout()
        fix.addWidget(self.fix_class, 1)
        fix.addWidget(self.fix_btn)
        rl.addLayout(fix)
        rl.addWidget(self.retrain_btn)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(mid)
        split.addWidget(right)
        split.setSizes([420, 260, 300])
        lay = QVBoxLayout(self)
        lay.addWidget(self.headline)
        lay.addWidget(split, 1)
        self._icons: dict[str, QIcon] = {}

    def set_evaluation(self, ev: Evaluation | None) -> None:
        self.evaluation = ev
        self._fixed.clear()
        self.images.clear()
        self.mistakes.clear()
        self.cell_title.setText("Click a cell of the matrix to see its images")  # not the old model's cell
        if ev is None or not len(ev.y_true):
            self.headline.setText("No validation images: add more pictures per class to measure accuracy.")
            self.per_class.setRowCount(0)
            self.matrix.setRowCount(0)
            self.reliability.set_reliability(None)
            return
        rel = ev.reliability()
        self.reliability.set_reliability(rel)
        text = f"Validation accuracy {ev.accuracy:.1%} on {len(ev.y_true)} images · calibration error {rel['ece']:.1%}"
        flagged = ev.flagged_rate()
        if flagged is not None:
            text += f" · {flagged:.0%} of them would be called “Not one of my classes”"
        self.headline.setText(text)
        self.headline.setWordWrap(True)
        rows = ev.per_class()
        self.per_class.setRowCount(len(rows))
        for i, r in enumerate(rows):
            cells = [r["class"], f"{r['precision']:.0%}", f"{r['recall']:.0%}", f"{r['f1']:.0%}", str(r["support"])]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.per_class.setItem(i, j, item)
        # show up to 5 classes without scrolling (on 1280×720 it showed 2½ rows of 3)
        t = self.per_class
        t.setMinimumHeight(t.horizontalHeader().sizeHint().height() + 2 * t.frameWidth()
                           + t.verticalHeader().defaultSectionSize() * min(len(rows), 5))
        m = ev.confusion()
        k = len(ev.classes)
        self.matrix.blockSignals(True)  # filling it is not the user moving to a cell
        self.matrix.setCurrentItem(None)
        self.matrix.setRowCount(k)
        self.matrix.setColumnCount(k)
        self.matrix.setHorizontalHeaderLabels(ev.classes)
        self.matrix.setVerticalHeaderLabels(ev.classes)
        top = max(1, m.max())
        for i in range(k):
            for j in range(k):
                item = QTableWidgetItem(str(m[i, j]))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                strength = m[i, j] / top
                base = QColor("#2e7d32") if i == j else QColor("#c62828")
                base.setAlpha(int(30 + 200 * strength) if m[i, j] else 0)
                item.setBackground(QBrush(base))
                item.setToolTip(f"{m[i, j]} image(s) of “{ev.classes[i]}” classified as “{ev.classes[j]}”")
                self.matrix.setItem(i, j, item)
        self.matrix.resizeColumnsToContents()
        self.matrix.blockSignals(False)
        self.fix_class.clear()
        self.fix_class.addItems(ev.classes)
        for mk in ev.mistakes():
            item = QListWidgetItem(f"{os.path.basename(mk.path)}\nlabelled {ev.classes[mk.true]} · model says "
                                   f"{ev.classes[mk.predicted]} ({mk.confidence:.0%})")
            item.setData(PathRole, (mk.path, mk.true, mk.predicted))
            self.mistakes.addItem(item)
        if not ev.mistakes():
            self.mistakes.addItem("No mistakes on the validation images.")
        self._load_thumbs([mk.path for mk in ev.mistakes()])

    def open_cell(self, row: int, col: int) -> None:
        if self.evaluation is None:
            return
        ev = self.evaluation
        paths = ev.cell(row, col)
        self.cell_title.setText(f"{len(paths)} image(s): true “{ev.classes[row]}”, predicted “{ev.classes[col]}”")
        self.images.clear()
        for p in paths:
            item = QListWidgetItem(os.path.basename(p))
            item.setData(PathRole, p)
            item.setToolTip(p)
            item.setSizeHint(self.images.gridSize())
            item.setIcon(self._icons.get(p, self._placeholder))
            self.images.addItem(item)
        self._load_thumbs([p for p in paths if p not in self._icons])

    @staticmethod
    def _path(item) -> str | None:
        d = item.data(PathRole) if item is not None else None
        return d[0] if isinstance(d, tuple) else d

    def _open_paths(self, paths: list[str]) -> None:
        for p in [p for p in paths if p][:20]:
            QDesktopServices.openUrl(QUrl.fromLocalFile(p))

    def menu_for(self, lst, item):
        """Open, Open in cnndesk, Show in Folder, Copy Path for ``item``: as for files elsewhere in the app."""
        from cnndesk.qt.widgets.file_actions import file_menu

        if item is None or self._path(item) is None:
            return None
        lst.setCurrentItem(item)
        paths = [self._path(i) for i in lst.selectedItems() if self._path(i)] or [self._path(item)]
        host = self.open_in_app
        return file_menu(self, paths, open_in_app=(lambda: host(paths)) if host else None)

    def _file_menu(self, lst, pos) -> None:
        menu = self.menu_for(lst, lst.itemAt(pos))
        if menu is not None:
            self._exec_menu(menu, lst.viewport().mapToGlobal(pos))

    @staticmethod
    def _exec_menu(menu, at) -> None:
        menu.exec(at)

    def _load_thumbs(self, paths: list[str]) -> None:
        if paths:
            self.runner.start(JobKind.EVALUATION_THUMBS, jobs.thumbnails, [(p, p) for p in paths], 72, 64, exclusive=False,
                              on_partial=self._thumb)

    def _thumb(self, thumb: jobs.Thumb) -> None:
        path, qimage = thumb.path, thumb.image
        icon = QIcon(QPixmap.fromImage(qimage))
        self._icons[path] = icon
        for lst in (self.images, self.mistakes):
            for i in range(lst.count()):
                item = lst.item(i)
                d = item.data(PathRole)
                if d == path or (isinstance(d, tuple) and d[0] == path):
                    item.setIcon(icon)

    def _mistake_selected(self, current, _previous) -> None:
        self.fix_btn.setEnabled(current is not None and current.data(PathRole) is not None)
        if current is not None and current.data(PathRole) is not None:
            _, _, predicted = current.data(PathRole)
            self.fix_class.setCurrentIndex(predicted)

    def fix_selected(self) -> Path | None:
        """Move the selected mistake's file to the chosen class folder (never overwriting)."""
        item = self.mistakes.currentItem()
        if item is None or item.data(PathRole) is None:
            return None
        path, _, _ = item.data(PathRole)
        src = Path(path)
        try:  # the safe mover: never a partial file under the final name, never through a link
            target, _ = move_into(src, src.parent.parent / self.fix_class.currentText())
        except OSError as exc:
            QMessageBox.warning(self, "Move to class", f"{display(src.name)} could not be moved: {describe_oserror(exc)}")
            return None
        from cnndesk.core.organize.journal import Journal

        (self.journal or Journal()).record_relabel(src, target, self.fix_class.currentText())  # Ctrl+Z puts it back
        self.moved += 1
        row = self.mistakes.row(item)
        self._fixed[os.fspath(target)] = (row, item.text(), item.data(PathRole))
        self.mistakes.takeItem(row)
        self.dataset_changed.emit()
        return target

    def undone(self, report) -> int:
        """Edit ▸ Undo put files back: their mistakes return to the list, where they were."""
        back = 0
        for new, _orig in report.restored:
            entry = self._fixed.pop(os.fspath(new), None)
            if entry is None:
                continue
            row, text, data = entry
            item = QListWidgetItem(text)
            item.setData(PathRole, data)
            if data[0] in self._icons:
                item.setIcon(self._icons[data[0]])
            self.mistakes.insertItem(min(row, self.mistakes.count()), item)
            self.moved -= 1
            back += 1
        if back:
            self.dataset_changed.emit()
        return back
