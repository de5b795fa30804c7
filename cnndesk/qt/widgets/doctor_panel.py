"""The dataset check in the Train dialog: runs the doctor on a worker (progress, Cancel), lists the
issues grouped by kind, shows the picture beside its duplicate or beside an example of the class it
probably belongs to, and fixes with one click: move to the suggested class (undoable), show in the
file manager, ignore (recorded in the dataset's .cnndesk-doctor.json). Nothing is deleted."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnndesk.core.doctor import check as doctor
from cnndesk.core.images.load import is_image_path
from cnndesk.core.models.registry import DEFAULT_MODEL
from cnndesk.qt import jobs
from cnndesk.qt.widgets.plain_label import PlainLabel
from cnndesk.qt.workers import JobKind

IssueRole = Qt.ItemDataRole.UserRole + 20
TITLES = {
    "label": "Probably in the wrong class", "leak": "Same picture in train and val/test",
    "duplicate": "Same picture twice", "overlap": "Share part of a picture", "outlier": "Looks like none of the classes",
    "unreadable": "Cannot be used", "tiny": "Much smaller than the model's input",
    "imbalance": "Class imbalance", "too_few": "Too few images",
}
ICON = 40
BIG = 200


def _example(folder: Path) -> str | None:
    try:
        return next((e.path for e in sorted(os.scandir(folder), key=lambda e: e.name)
                     if e.is_file() and is_image_path(e.name)), None)
    except OSError:
        return None


class DoctorPanel(QWidget):
    checked = Signal(object)  # the Report
    dataset_changed = Signal()  # a file was moved (or moved back)

    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.root: str | None = None
        self.report: doctor.Report | None = None
        self.undo_stack: list[tuple[doctor.Moved, QTreeWidgetItem, object]] = []  # (move, row, journal entry)
        self.journal = None  # the app's undo journal (cnndesk.core.organize.journal): a move is undone by Ctrl+Z too
        self._icons: dict[str, QIcon] = {}
        self._big: dict[str, QPixmap] = {}
        self._args = (DEFAULT_MODEL, "auto")

        self.summary = PlainLabel("Choose a folder to check it for wrong labels, duplicates and leaks.")
        self.summary.setWordWrap(True)
        self.progress = QProgressBar()  # the summary names the step; the bar shows only %
        self.progress.setFixedWidth(self.progress.fontMetrics().horizontalAdvance("0" * 16))
        self.progress.setVisible(False)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(self.cancel)
        self.cancel_btn.setVisible(False)
        self.again_btn = QPushButton("Check again")
        self.again_btn.clicked.connect(lambda: self.root and self.check(self.root, force=True))
        self.again_btn.setEnabled(False)
        self.less_likely = QCheckBox("Show less likely")
        self.less_likely.setToolTip("Also list images whose label the check doubts without strong evidence")
        self.less_likely.toggled.connect(self._filter)
        self._full: doctor.Report | None = None  # every issue; self.report: what is shown
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.less_likely)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_btn)
        top.addWidget(self.again_btn)

        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setIconSize(QSize(ICON, ICON))
        self.tree.currentItemChanged.connect(self._selected)

        self.left_img, self.right_img = QLabel(), QLabel()
        self.left_cap, self.right_cap = PlainLabel(), PlainLabel()
        pics = QHBoxLayout()
        for img, cap in ((self.left_img, self.left_cap), (self.right_img, self.right_cap)):
            img.setFixedSize(BIG, BIG)
            img.setAlignment(Qt.AlignmentFlag.AlignCenter)
            img.setStyleSheet("QLabel { background: palette(base); border: 1px solid palette(mid); }")
            cap.setWordWrap(True)
            cap.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            cap.setFixedWidth(BIG)
            col = QVBoxLayout()
            col.addWidget(img)
            col.addWidget(cap)
            col.addStretch(1)
            pics.addLayout(col)
        pics.addStretch(1)
        self.reason = PlainLabel()
        self.reason.setWordWrap(True)
        self.move_btn = QPushButton("Move to …")
        self.move_btn.setToolTip("Move the file into the suggested class folder (Undo puts it back)")
        self.move_btn.clicked.connect(self.move_selected)
        self.undo_btn = QPushButton("Undo move")
        self.undo_btn.clicked.connect(self.undo)
        self.undo_btn.setEnabled(False)  # nothing moved yet
        self.show_btn = QPushButton("Show in folder")
        self.show_btn.clicked.connect(self.show_selected)
        self.ignore_btn = QPushButton("Ignore")
        self.ignore_btn.setToolTip("Not a problem: do not show it again (remembered in the dataset folder)")
        self.ignore_btn.clicked.connect(self.ignore_selected)
        actions = QHBoxLayout()
        for b in (self.move_btn, self.show_btn, self.ignore_btn, self.undo_btn):
            actions.addWidget(b)
        actions.addStretch(1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addLayout(pics)
        rl.addWidget(self.reason)
        rl.addLayout(actions)
        rl.addStretch(1)
        split = QSplitter()
        split.addWidget(self.tree)
        split.addWidget(right)
        split.setSizes([420, 440])
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        self._selected(None, None)

    # -- running ----------------------------------------------------------------------------------
    def check(self, root: str, base: str = DEFAULT_MODEL, device: str = "auto", force: bool = False) -> bool:
        """Check ``root`` on a worker; a folder already checked is not checked again unless
        ``force``. Returns whether a check started."""
        root = str(root)
        if not force and root == self.root and (self.report is not None or self.running()):
            return False
        self.root, self._args = root, (base, device)
        self.summary.setText("Checking the images for wrong labels, duplicates, leaks and outliers…")
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_btn.setVisible(True)
        self.again_btn.setEnabled(False)
        self.runner.start(JobKind.DOCTOR, jobs.check_dataset, root, base, device, on_progress=self._progress,
                          on_result=self._done, on_error=self._failed, on_cancelled=self._stopped)
        return True

    def running(self) -> bool:
        return self.runner.running(JobKind.DOCTOR)

    def cancel(self) -> None:
        self.runner.cancel(JobKind.DOCTOR)
        self._stopped()

    def _progress(self, done, total, text) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        else:
            self.progress.setRange(0, 0)
        self.progress.setFormat("%p%")
        self.summary.setText(f"Checking: {text.lower()}…")

    def _idle(self) -> None:
        self.progress.setVisible(False)
        self.cancel_btn.setVisible(False)
        self.again_btn.setEnabled(self.root is not None)

    def _stopped(self) -> None:
        self._idle()
        if self.report is None:
            self.summary.setText("Check cancelled. Training does not need it; “Check again” runs it.")

    def _failed(self, message: str) -> None:
        self._idle()
        self.summary.set_error(f"The check failed: {message}")

    def _done(self, rep: doctor.Report) -> None:
        self._idle()
        self._full = rep
        self.report = self._shown(rep)
        rep = self.report
        self.undo_stack.clear()
        self.undo_btn.setEnabled(False)
        self.populate(rep)
        self.checked.emit(rep)

    def _shown(self, rep: doctor.Report) -> doctor.Report:
        """The report as shown: label suspicions without strong evidence only when asked."""
        keep = [i for i in rep.issues if i.likely or self.less_likely.isChecked()]
        return doctor.Report(rep.root, keep, {**rep.summary, "less_likely": len(rep.issues) - len(keep)})

    def _items(self) -> dict:
        out = {}
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            for c in range(group.childCount()):
                issue = group.child(c).data(0, IssueRole)
                if issue is not None:
                    out[issue.key()] = group.child(c)
        return out

    def _filter(self) -> None:
        """Show or hide the less likely label suspicions, keeping what was done to the others
        (moved / ignored notes, Undo)."""
        if self._full is None or self.running():
            return
        before = {k: it.data(0, IssueRole + 1) for k, it in self._items().items()}
        undo = [(m, it.data(0, IssueRole).key()) for m, it in self.undo_stack]
        self.report = self._shown(self._full)
        self.populate(self.report)
        now = self._items()
        for k, note in before.items():
            if note and k in now:
                self._mark(now[k], note)
        self.undo_stack = [(m, now[k]) for m, k in undo if k in now]

    def headline(self) -> str:
        rep = self.report
        if rep is None:
            return ""
        if not rep.issues:
            return "No problems found."
        n = len(rep.issues)
        kinds = ", ".join(f"{len(v)} {TITLES[k].lower()}" for k, v in rep.by_kind().items())
        return f"{n} possible problem{'s' if n != 1 else ''}: {kinds}."

    # -- the list ---------------------------------------------------------------------------------
    def populate(self, rep: doctor.Report) -> None:
        self.tree.clear()
        s = rep.summary
        ignored = f" · {s['ignored']} ignored" if s.get("ignored") else ""
        when = "unchanged since the last check" if s.get("reused") else f"checked in {s.get('seconds', 0):.0f} s"
        self.summary.setText(f"{self.headline()} {s.get('images', 0)} images, {when}{ignored}. "
                             "Training works either way; fixing these first makes it better.")
        wanted: list[str] = []
        blank = QPixmap(ICON, ICON)
        blank.fill(Qt.GlobalColor.transparent)
        placeholder = QIcon(blank)  # rows keep their height while thumbnails load
        for kind, items in rep.by_kind().items():
            group = QTreeWidgetItem([f"{TITLES.get(kind, kind)} ({len(items)})"])
            f = group.font(0)
            f.setBold(True)
            group.setFont(0, f)
            self.tree.addTopLevelItem(group)
            for issue in items:
                child = QTreeWidgetItem([self._text(issue)])
                child.setData(0, IssueRole, issue)
                child.setToolTip(0, issue.reason)
                group.addChild(child)
                if is_image_path(issue.path) and len(wanted) < 400:
                    wanted.append(issue.path)
                    child.setIcon(0, self._icons.get(issue.path, placeholder))
            group.setExpanded(kind in ("label", "leak", "duplicate", "outlier") or len(items) <= 5)
        wanted = [p for p in wanted if p not in self._icons]
        if wanted:
            self.runner.start(JobKind.DOCTOR_ICONS, jobs.thumbnails, [(p, p) for p in wanted], ICON, on_partial=self._icon)
        first = self.tree.topLevelItem(0)
        if first is not None and first.childCount():
            self.tree.setCurrentItem(first.child(0))

    def _rel(self, p: str | None) -> str:
        if not p or not self.root:
            return p or ""
        r = os.path.relpath(p, self.root)
        return p if r.startswith("..") else r

    def _text(self, i: doctor.Issue) -> str:
        if i.kind == "label":
            return f"{os.path.basename(i.path)}: in “{i.label}”, looks like “{i.suggested}”"
        if i.other:
            return f"{self._rel(i.path)}  ≈  {self._rel(i.other)}"
        return self._rel(i.path) if i.kind not in ("imbalance", "too_few") else i.reason

    def _icon(self, thumb: jobs.Thumb) -> None:
        path, qimage = thumb.path, thumb.image
        icon = QIcon(QPixmap.fromImage(qimage))
        self._icons[path] = icon
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            for c in range(group.childCount()):
                item = group.child(c)
                if item.data(0, IssueRole).path == path:
                    item.setIcon(0, icon)

    # -- the selected issue -----------------------------------------------------------------------
    def current_issue(self) -> doctor.Issue | None:
        item = self.tree.currentItem()
        return item.data(0, IssueRole) if item is not None else None

    def _selected(self, current, _previous) -> None:
        issue = current.data(0, IssueRole) if current is not None else None
        fixed = current is not None and current.data(0, IssueRole + 1)
        self.move_btn.setVisible(bool(issue and issue.suggested))
        self.move_btn.setText(f"Move to “{issue.suggested}”" if issue and issue.suggested else "Move to …")
        self.move_btn.setEnabled(bool(issue and issue.suggested and not fixed))
        self.show_btn.setEnabled(issue is not None)
        self.ignore_btn.setEnabled(issue is not None and not fixed)
        for img, cap in ((self.left_img, self.left_cap), (self.right_img, self.right_cap)):
            img.clear()
            cap.clear()
        self.right_img.setVisible(False)
        self.right_cap.setVisible(False)
        if issue is None:
            self.reason.setText("Select a problem to see it." if self.report is not None else "")
            return
        self.reason.setText(issue.reason + (f"\n{fixed}" if fixed else ""))
        left = issue.path if is_image_path(issue.path) else None
        right, right_cap = None, ""
        if issue.other:
            right, right_cap = issue.other, self._rel(issue.other)
        elif issue.kind == "label" and issue.suggested:
            right = _example(Path(issue.path).parent.parent / issue.suggested)
            right_cap = f"an image of “{issue.suggested}”"
        self.left_cap.setText(self._rel(issue.path) + (f"\n(in “{issue.label}”)" if issue.label and left else ""))
        if right:
            self.right_img.setVisible(True)
            self.right_cap.setVisible(True)
            self.right_cap.setText(right_cap)
        todo = [p for p in (left, right) if p and p not in self._big]
        self._right_path = right  # before _show_big, which reads it
        self._show_big()
        if todo:
            self.runner.start(JobKind.DOCTOR_BIG_IMAGES, jobs.thumbnails, [(p, p) for p in todo], BIG, on_partial=self._big_loaded)

    def _big_loaded(self, thumb: jobs.Thumb) -> None:
        path, qimage = thumb.path, thumb.image
        pix = QPixmap.fromImage(qimage)
        if max(pix.width(), pix.height()) < BIG // 2:  # small pictures: enlarged, pixels kept sharp
            pix = pix.scaled(BIG - 8, BIG - 8, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
        self._big[path] = pix
        self._show_big()

    def _show_big(self) -> None:
        issue = self.current_issue()
        if issue is None:
            return
        if issue.path in self._big:
            self.left_img.setPixmap(self._big[issue.path])
        right = getattr(self, "_right_path", None)
        if right and right in self._big and not self.right_img.isHidden():  # shown even while the tab is not
            self.right_img.setPixmap(self._big[right])

    # -- fixes ------------------------------------------------------------------------------------
    def move_selected(self) -> str | None:
        item = self.tree.currentItem()
        issue = self.current_issue()
        if item is None or issue is None or not issue.suggested:
            return None
        try:
            moved = doctor.move_to_class(issue.path, issue.suggested, issue.label)
        except (OSError, doctor.DatasetError) as exc:
            self.reason.set_error(f"Could not move it: {exc}")
            return None
        entry = None
        if self.journal is not None:  # Edit ▸ Undo (Ctrl+Z) puts it back, like a relabel on the evaluation page
            entry = self.journal.record_relabel(moved.source, moved.target, issue.suggested)
        self.undo_stack.append((moved, item, entry))
        self._mark(item, f"Moved to “{issue.suggested}” ({self._rel(moved.target)}).")
        self.undo_btn.setEnabled(True)
        self.dataset_changed.emit()
        return moved.target

    def undo(self) -> str | None:
        if not self.undo_stack:
            return None
        moved, item, entry = self.undo_stack.pop()
        try:
            if entry is not None:  # through the journal, so Ctrl+Z does not undo it a second time
                rep = self.journal.undo(entry)
                if not rep.restored:
                    raise doctor.DatasetError("; ".join(rep.skipped) or "nothing to put back")
                back = rep.restored[0][1]
            else:
                back = doctor.undo_move(moved)
        except (OSError, doctor.DatasetError) as exc:
            self.reason.set_error(f"Could not undo: {exc}")
            return None
        self._mark(item, None)
        self.undo_btn.setEnabled(bool(self.undo_stack))
        self.dataset_changed.emit()
        return back

    def undone(self, report) -> int:
        """Edit ▸ Undo put files back (``report``: cnndesk.core.organize.journal.UndoReport): the moves it
        reverted are shown as not fixed again. Returns how many."""
        back = {os.fspath(new) for new, _ in report.restored}
        hit = [m for m in self.undo_stack if m[0].target in back]
        for m in hit:
            self.undo_stack.remove(m)
            self._mark(m[1], None)
        if hit:
            self.undo_btn.setEnabled(bool(self.undo_stack))
            self.dataset_changed.emit()
        return len(hit)

    def ignore_selected(self) -> None:
        item = self.tree.currentItem()
        issue = self.current_issue()
        if item is None or issue is None or self.root is None:
            return
        try:
            doctor.ignore(self.root, issue)
        except OSError as exc:
            self.reason.set_error(f"Could not record it: {exc}")
            return
        self._mark(item, "Ignored: it will not be shown again.")

    def show_selected(self) -> None:
        issue = self.current_issue()
        if issue is not None:
            target = Path(issue.path)
            folder = target if target.is_dir() else target.parent
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def _mark(self, item: QTreeWidgetItem, note: str | None) -> None:
        item.setData(0, IssueRole + 1, note)
        f = item.font(0)
        f.setStrikeOut(bool(note))
        item.setFont(0, f)
        item.setForeground(0, self.palette().placeholderText() if note else self.palette().text())
        if self.tree.currentItem() is item:
            self._selected(item, None)

    def stop(self) -> None:
        for kind in ("doctor", "doctor-icons", "doctor-big"):
            self.runner.cancel(kind)
