"""Edit ▸ Undo for file operations: a thin Qt layer over :class:`cnndesk.core.organize.journal.Journal`.
The journal lives on disk, so Ctrl+Z after a restart still puts sorted or relabelled files back.
Undo runs on the worker (a sort may have moved thousands of files)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QKeySequence

from cnndesk.core.organize.journal import Journal
from cnndesk.qt import jobs
from cnndesk.qt.workers import JobKind


class UndoController(QObject):
    undone = Signal(object)  # cnndesk.core.organize.journal.UndoReport
    message = Signal(str)

    def __init__(self, runner, parent=None, journal: Journal | None = None):
        super().__init__(parent)
        self.runner = runner
        self.journal = journal or Journal()
        self.action = QAction("&Undo", parent)
        self.action.setShortcut(QKeySequence(QKeySequence.StandardKey.Undo))
        self.action.triggered.connect(self.undo)
        self.refresh()

    def refresh(self) -> None:
        last = self.journal.last()
        self.action.setEnabled(last is not None and not self.runner.running(JobKind.UNDO))
        self.action.setText(f"&Undo {last.description}" if last else "&Undo")
        tip = f"Undo “{last.description}” (Ctrl+Z)" if last else "Nothing to undo"
        self.action.setToolTip(tip)
        self.action.setStatusTip(tip)

    def undo(self) -> bool:
        last = self.journal.last()
        if last is None:
            self.message.emit("Nothing to undo")
            return False
        if self.runner.running(JobKind.UNDO):
            return False
        if self.runner.running(JobKind.SORT):
            self.message.emit("Wait for the sort to finish before undoing")
            return False
        self.action.setEnabled(False)
        self.message.emit(f"Undoing “{last.description}”…")
        journal = self.journal
        self.runner.start(JobKind.UNDO, jobs.undo, journal, last,
                          on_result=self._done, on_error=self._failed)
        return True

    def _done(self, report) -> None:
        self.refresh()
        if report is not None:
            self.message.emit(report.describe())
            self.undone.emit(report)

    def _failed(self, exc) -> None:
        self.refresh()
        self.message.emit(f"Undo failed: {exc}")
