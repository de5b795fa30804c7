"""The Label workspace's widgets, laid out: the folder bar (open, subfolders switch, progress and
Cancel for the first embedding), the grid with its grouping and actions, the queue panel."""

from __future__ import annotations

import html

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QListView,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cnndesk.qt.item_models.label_grid import THUMB_SIZE, LabelGridModel
from cnndesk.qt.label import training_row
from cnndesk.qt.label.queue_panel import QueuePanel, plain_label
from cnndesk.qt.widgets.flow_row import FlowRow

ACCEPT_ABOVE = 0.95
MAX_UNREADABLE_NAMED = 20


def build(ws) -> None:
    """Make ``ws``'s widgets (attributes of the workspace) and connect them to its slots."""
    lay = QVBoxLayout(ws)
    top = QHBoxLayout()
    ws.open_btn = QPushButton("Label a Folder\u2026")
    ws.open_btn.clicked.connect(lambda: ws.open_folder())
    ws.folder_label = plain_label("", wrap=False)
    ws.folder_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # a long path never widens the window
    ws.subfolders = QCheckBox("Subfolders are classes")
    ws.subfolders.setToolTip("Read the names of the subfolders as the images' classes (else they are just part of the pile)")
    # switched with a folder open: that folder is read again (the answers given are kept)
    ws.subfolders.toggled.connect(lambda _on: ws.session is not None and ws._when_idle(lambda: ws.open_folder(ws.root)))
    ws.progress = QProgressBar()
    ws.progress.setMaximumWidth(220)
    ws.cancel_btn = QPushButton("Cancel")
    ws.cancel_btn.clicked.connect(ws.cancel_open)
    for w in (ws.open_btn, ws.subfolders):
        top.addWidget(w)
    top.addWidget(ws.folder_label, 1)
    top.addWidget(ws.progress)
    top.addWidget(ws.cancel_btn)
    lay.addLayout(top)
    ws._set_loading(False)

    ws.pages = QStackedWidget()
    ws.empty = plain_label("Choose a folder of unsorted images (or drop one here): the CNN groups it, "
                             "asks you about the images worth labelling and suggests a label for the rest.")
    ws.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
    ws.pages.addWidget(ws.empty)
    work = QSplitter(Qt.Orientation.Horizontal)
    left = QWidget()
    ll = QVBoxLayout(left)
    ll.setContentsMargins(0, 0, 0, 0)
    bar = QHBoxLayout()
    ws.by = QComboBox()
    ws.by.addItems(["By group", "By suggested label"])
    ws.by.setToolTip("Show the folder grouped by visual group or by suggested label")
    ws.section = QComboBox()
    ws.section.setMinimumContentsLength(8)
    ws.section.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    ws.name_group_btn = QPushButton("Name group\u2026")
    ws.name_group_btn.setToolTip("Give every unanswered image of the group shown one class")
    ws.by.currentIndexChanged.connect(ws._fill_sections)
    ws.section.currentIndexChanged.connect(ws._show_section)
    ws.name_group_btn.clicked.connect(lambda: ws.name_group())  # not clicked's bool as the label
    ws.group_count = QSpinBox()
    ws.group_count.setRange(0, 99)
    ws.group_count.setSpecialValueText("auto")
    ws.group_count.setPrefix("")
    ws.group_count.setSuffix(" groups")
    ws.group_count.setToolTip("How many visual groups (auto: chosen from the folder)")
    ws.group_count.setKeyboardTracking(False)
    ws.group_count.valueChanged.connect(ws.set_group_count)
    bar.addWidget(ws.by)
    bar.addWidget(ws.group_count)
    bar.addStretch(1)
    ll.addLayout(bar)
    bar2 = QHBoxLayout()  # two rows: the workspace fits a small window
    bar2.addWidget(ws.section, 1)
    bar2.addWidget(ws.name_group_btn)
    ll.addLayout(bar2)
    ws.model = LabelGridModel(ws)
    ws.model.request_thumbs = ws._request_thumbs
    ws.grid = QListView()
    ws.grid.setViewMode(QListView.ViewMode.IconMode)
    ws.grid.setResizeMode(QListView.ResizeMode.Adjust)
    ws.grid.setMovement(QListView.Movement.Static)
    ws.grid.setUniformItemSizes(True)
    ws.grid.setLayoutMode(QListView.LayoutMode.Batched)
    ws.grid.setBatchSize(100)
    ws.grid.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
    ws.grid.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
    ws.grid.setWordWrap(False)
    ws.grid.setTextElideMode(Qt.TextElideMode.ElideRight)
    ws.grid.setModel(ws.model)
    ws.grid.setToolTip("")
    ll.addWidget(ws.grid, 1)
    ws.stats = plain_label()
    ll.addWidget(ws.stats)
    actions = FlowRow()  # wraps on a narrow window (1280x720 at 200 %) instead of widening the page
    ws.accept_btn = QPushButton(f"Accept all above {ACCEPT_ABOVE:.0%}")
    ws.accept_btn.setToolTip("Take every suggestion at least this confident (not the ones flagged unknown)")
    ws.write_btn = QPushButton("Write dataset\u2026")
    ws.write_btn.setToolTip("The labelled images as one folder per class (copy, move or link; undoable)")
    ws.accept_btn.clicked.connect(ws.accept_above)
    ws.write_btn.clicked.connect(lambda: ws.write_dataset())
    for b in (ws.accept_btn, ws.write_btn):
        b.setAutoDefault(False)
        actions.addWidget(b)
    ll.addLayout(actions)
    training_row.build(ws, actions, ll)
    work.addWidget(left)
    ws.panel = QueuePanel()
    ws.panel.class_clicked.connect(ws.answer_class)
    ws.panel.new_class.connect(lambda: ws.new_class())
    ws.panel.skip.connect(lambda: ws._answer_current("skip"))
    ws.panel.none_of_these.connect(lambda: ws._answer_current("none_of_these"))
    ws.panel.undo.connect(ws.undo)
    work.addWidget(ws.panel)
    work.setStretchFactor(0, 3)
    work.setStretchFactor(1, 2)
    work.setSizes([600, 400])  # 3:2 from the start too (the size hints gave the large image the most)
    ws.pages.addWidget(work)
    lay.addWidget(ws.pages, 1)
    ws.setAcceptDrops(True)
    ws._enable()


def show_folder(ws) -> None:
    """The folder bar's text: the folder open (nothing when none), and how many of its files
    cannot be read, named in the tooltip (the status bar's message about them fades)."""
    from cnndesk.core.common.safeio import display
    from cnndesk.core.labelling.folder import unreadable_line

    if ws.session is None:
        ws.folder_label.setText("")
        ws.folder_label.setToolTip("")
        return
    bad = ws.unreadable
    note = f" \u00b7 {len(bad)} file{'s' if len(bad) != 1 else ''} cannot be read (left out)" if bad else ""
    ws.folder_label.setText(display(ws.root, 80) + note)
    lines = [unreadable_line(p, r, ws.root, 100) for p, r in bad[:MAX_UNREADABLE_NAMED]]
    if len(bad) > MAX_UNREADABLE_NAMED:
        lines.append(f"\u2026 and {len(bad) - MAX_UNREADABLE_NAMED} more")
    ws.folder_label.setToolTip(f"<p>{html.escape(chr(10).join(lines))}</p>".replace("\n", "<br>") if lines else "")
