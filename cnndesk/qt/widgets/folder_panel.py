"""Folder results: a sortable, filterable table with progress (count, rate, ETA), Cancel, exports
and "Sort into folders…"."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from cnndesk.qt.item_models.results import (
    COL_CONF,
    COL_THUMB,
    ResultRole,
    ResultsFilterProxy,
    ResultsTableModel,
)
from cnndesk.qt.widgets.flow_row import FlowRow, together
from cnndesk.qt.widgets.plain_label import PlainLabel


class FolderPanel(QWidget):
    cancel_requested = Signal()
    export_requested = Signal(str)  # "csv" | "json"
    sort_requested = Signal()
    row_activated = Signal(object)  # FileResult

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = ResultsTableModel(self)
        self.proxy = ResultsFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.title = PlainLabel("No folder yet")
        f = self.title.font()
        f.setBold(True)
        f.setPointSizeF(f.pointSizeF() * 1.2)
        self.title.setFont(f)

        self.label_filter = QComboBox()
        self.label_filter.setEditable(True)
        self.label_filter.setMinimumWidth(200)
        # its width never follows the labels added while a folder runs (the row stayed still)
        self.label_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.label_filter.setMinimumContentsLength(10)
        self.label_filter.lineEdit().setPlaceholderText("Filter by label…")
        self.label_filter.setToolTip("Show only files whose top label contains this text")
        self.label_filter.editTextChanged.connect(lambda t: self.proxy.set_filter(label=t))
        self.min_conf = QDoubleSpinBox()
        self.max_conf = QDoubleSpinBox()
        for box, v in ((self.min_conf, 0.0), (self.max_conf, 100.0)):
            box.setRange(0.0, 100.0)
            box.setDecimals(0)
            box.setSuffix(" %")
            box.setValue(v)
            box.setToolTip("Confidence range of the top label")
        self.min_conf.valueChanged.connect(lambda v: self.proxy.set_filter(lo=v / 100))
        self.max_conf.valueChanged.connect(lambda v: self.proxy.set_filter(hi=v / 100))
        self.uncertain = QPushButton("Uncertain first")
        self.uncertain.setToolTip("Sort by confidence, lowest first: the files worth a second look")
        self.uncertain.clicked.connect(lambda: self.table.sortByColumn(COL_CONF, Qt.SortOrder.AscendingOrder))

        filters = FlowRow()  # wraps on a narrow window (1280x720 at 200 %) instead of widening the page
        filters.add_stretching(self.label_filter)
        filters.addWidget(together(QLabel("Confidence"), self.min_conf, QLabel("to"), self.max_conf))
        filters.addWidget(self.uncertain)
        self.shown = PlainLabel()
        self.shown.setToolTip("Rows the filter shows, of all rows")
        bold = self.shown.font()
        bold.setBold(True)  # room for the widest count, in bold: typing a filter never moves the row
        self.shown.setFixedWidth(QFontMetrics(bold).horizontalAdvance("88,888 of 88,888 shown") + 8)
        self.shown.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setIconSize(QSize(48, 48))
        self.table.verticalHeader().setDefaultSectionSize(52)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(COL_THUMB, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(COL_THUMB, 60)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(2, 220)
        self.table.setColumnWidth(COL_CONF, 170)  # "unknown (novelty 2.31)"
        self.table.doubleClicked.connect(self._activated)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset, self.proxy.layoutChanged):
            sig.connect(self._update_shown)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = PlainLabel()
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop classifying this folder (Esc)")
        self.cancel_btn.clicked.connect(self.cancel_requested)
        self.export_csv = QPushButton("Export CSV…")
        self.export_json = QPushButton("Export JSON…")
        self.sort_btn = QPushButton("Sort into folders…")
        self.sort_btn.setToolTip("Copy or move the files into one folder per predicted label")
        self.export_csv.clicked.connect(lambda: self.export_requested.emit("csv"))
        self.export_json.clicked.connect(lambda: self.export_requested.emit("json"))
        self.sort_btn.clicked.connect(self.sort_requested)

        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 2)
        bottom.addWidget(self.status, 2)
        bottom.addWidget(self.cancel_btn)
        bottom.addStretch(1)
        bottom.addWidget(self.export_csv)
        bottom.addWidget(self.export_json)
        bottom.addWidget(self.sort_btn)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 12, 12, 12)
        lay.setSpacing(8)
        head = QHBoxLayout()  # the count of rows shown sits by the title: the filter row stays narrow
        head.addWidget(self.title, 1)
        head.addWidget(self.shown)
        lay.addLayout(head)
        lay.addLayout(filters)
        lay.addWidget(self.table, 1)
        lay.addLayout(bottom)
        self.skipped_sorted: list[str] = []
        self.set_running(False)

    def _activated(self, index):
        self.row_activated.emit(self.proxy.data(index, ResultRole))

    def start(self, title: str, roots: list[str] | None = None):
        """A new folder: empty table, and every filter back to "show all" (a filter left from the
        last folder would hide rows without saying so)."""
        self.model.clear()
        self.model.roots = list(roots or [])
        self.skipped_sorted = []
        self.label_filter.blockSignals(True)
        self.label_filter.clear()
        self.label_filter.setEditText("")
        self.label_filter.blockSignals(False)
        for box, v in ((self.min_conf, 0.0), (self.max_conf, 100.0)):
            box.blockSignals(True)
            box.setValue(v)
            box.blockSignals(False)
        self.proxy.set_filter(label="", lo=0.0, hi=1.0)
        self.title.setText(title)
        self.progress.setRange(0, 0)
        self.progress.setValue(0)
        self.status.setText("Scanning…")
        self.set_running(True)

    def set_running(self, running: bool):
        self.cancel_btn.setVisible(running)
        self.progress.setVisible(running)
        has_rows = self.model.rowCount() > 0
        if not running and has_rows:
            self.status.setText(self.summary())
        for b in (self.export_csv, self.export_json, self.sort_btn):
            b.setEnabled(has_rows and not running)

    def set_progress(self, done: int, total: int, rate: float):
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done:,} / {total:,}")
        if rate > 0 and total:
            eta = (total - done) / rate
            self.status.setText(f"{rate:.1f} images/s · about {_fmt_eta(eta)} left")
        else:
            self.status.setText("")

    def add_results(self, results):
        self.model.append(results)
        known = {self.label_filter.itemText(i) for i in range(self.label_filter.count())}
        new = [r.prediction.label for r in results if r.prediction and r.prediction.label not in known]
        if new:
            text = self.label_filter.currentText()  # adding items must not change the filter
            self.label_filter.blockSignals(True)
            for label in sorted(set(new)):
                self.label_filter.addItem(label)
            self.label_filter.setEditText(text)
            self.label_filter.blockSignals(False)

    def summary(self) -> str:
        rows = self.model.rows
        bad = sum(1 for r in rows if r.error)
        ok = len(rows) - bad
        text = f"{ok:,} file{'s' if ok != 1 else ''} classified" + (f", {bad:,} could not be read" if bad else "")
        shown = self.proxy.rowCount()
        if shown != len(rows):
            text += f" · {shown:,} of {len(rows):,} shown"
        return text

    def visible_rows(self) -> list:
        """The results the table shows, in its order (what Export and Sort act on)."""
        p = self.proxy
        return [p.data(p.index(i, 0), ResultRole) for i in range(p.rowCount())]

    def _update_shown(self, *_):
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.shown.setText(f"{shown:,} of {total:,} shown" if shown != total else (f"{total:,} files" if total else ""))
        f = self.shown.font()
        f.setBold(shown != total)
        self.shown.setFont(f)

    # -- context menu: Open, Show in folder, Copy path ------------------------------------------
    def selected_results(self) -> list:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.proxy.data(self.proxy.index(r, 0), ResultRole) for r in rows]

    def _context_menu(self, pos):
        from cnndesk.qt.widgets.file_actions import file_menu

        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        if not self.table.selectionModel().isRowSelected(index.row(), index.parent()):
            self.table.selectRow(index.row())
        results = [r for r in self.selected_results() if r is not None]
        menu = file_menu(self, [r.path for r in results],
                         open_in_app=lambda: [self.row_activated.emit(r) for r in results[:20]])
        menu.exec(self.table.viewport().mapToGlobal(pos))


def _fmt_eta(s: float) -> str:
    s = int(s + 0.5)
    if s < 60:
        return f"{s} s"
    return f"{s // 60} min {s % 60:02d} s"
