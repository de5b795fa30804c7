"""The folder results controller: classify a folder into the Folder results table, export it,
sort into folders (journaled, so Ctrl+Z puts the files back), keeping the table's paths true after
a move. It owns the folder's state (its roots, the last sort); the main window wires it.

Export and Sort act on the rows the table shows: with a filter active they say so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

from cnndesk.core.organize import sorting
from cnndesk.core.organize.journal import SORT_MARKER
from cnndesk.core.predict import results as results_io
from cnndesk.qt import file_dialogs, jobs
from cnndesk.qt.workers import JobKind


def count_clashes(plan: sorting.SortPlan) -> int:
    """How many files of ``plan`` already have a namesake at their target (they get " (1)")."""
    seen: set[Path] = set()
    n = 0
    for m in plan.moves:
        target = plan.destination / m.folder / m.source.name
        if target in seen or target.exists():
            n += 1
        seen.add(target)
    return n


class FolderResults(QObject):
    """``show_tab(bring_forward)``: show the tabs (and the Folder results tab when asked);
    ``open_files(paths)``: open a result row as a single image."""

    def __init__(self, window: QWidget, folder_panel, runner, settings, undo, models, status: Callable[..., None],
                 show_tab: Callable[[bool], None], open_files: Callable[[list[str]], None]):
        super().__init__(window)
        self.window, self.folder_panel, self.runner, self.settings = window, folder_panel, runner, settings
        self.undo, self.models, self.status = undo, models, status
        self.show_tab, self.open_files = show_tab, open_files
        self.roots: list[str] = []
        self.last_sort_report: sorting.SortReport | None = None
        self.sorted_box: QMessageBox | None = None
        folder_panel.cancel_requested.connect(self.cancel_folder)
        folder_panel.export_requested.connect(self.export_results)
        folder_panel.sort_requested.connect(self.sort_into_folders)
        folder_panel.row_activated.connect(self._open_result_row)
        undo.undone.connect(self._undone)

    def classify_folder(self, roots: list[str], show: bool = True):
        """``show``: bring the Folder results tab forward (not when a model switch re-runs the folder)."""
        self.show_tab(show)
        self.roots = list(roots)
        title = roots[0] if len(roots) == 1 else f"{len(roots)} folders"
        self.folder_panel.start(title, roots)
        self.folder_panel.skipped_files = None
        self.folder_panel.model.request_thumbs = self._remake_thumbs
        self.models.when_ready(lambda: self._run_folder(roots))

    def _run_folder(self, roots):
        self.status("Classifying folder…", 0)
        self.runner.start(
            JobKind.FOLDER, jobs.classify_folder, self.models.clf, roots, self.settings.top_k, scope="model",
            on_partial=self._folder_batch,
            on_result=self._folder_done,
            on_error=self._folder_failed,
            on_cancelled=lambda: None,
        )

    def _remake_thumbs(self, wanted):
        model = self.folder_panel.model
        self.runner.start(JobKind.THUMBS, jobs.thumbnails, wanted, on_partial=lambda t: model.set_thumb(t.key, t.path, t.image))

    def _folder_batch(self, batch):
        if isinstance(batch, jobs.SkippedSorted):
            self.folder_panel.skipped_sorted = batch.folders
            return
        if isinstance(batch, jobs.SkippedFiles):
            self.folder_panel.skipped_files = batch
            return
        self.folder_panel.add_results(batch.results)
        self.folder_panel.set_progress(batch.done, batch.total, batch.rate)

    def _folder_done(self, total: int):
        self.folder_panel.set_running(False)
        skipped = getattr(self.folder_panel, "skipped_sorted", [])
        note = f" (skipped {len(skipped)} folder{'s' if len(skipped) != 1 else ''} of files cnndesk sorted before)" if skipped else ""
        others = getattr(self.folder_panel, "skipped_files", None)
        if others is not None:
            note += f"; {others.describe()}"
        if total == 0:
            self.status("No images found in this folder" + note, 8000)
        else:
            self.status(self.folder_panel.summary() + note, 8000)

    def _folder_failed(self, exc):
        self.folder_panel.set_running(False)
        self.status(str(exc), 8000)

    def cancel_folder(self):
        if self.runner.running(JobKind.FOLDER):
            self.runner.cancel(JobKind.FOLDER)
            self.folder_panel.set_running(False)
            self.status(f"Cancelled — {self.folder_panel.summary()}", 8000)

    def _open_result_row(self, result):
        if result is not None:
            self.open_files([result.path])

    # -- export ---------------------------------------------------------------------------------
    def export_results(self, fmt: str):
        rows = self.folder_panel.visible_rows()
        if not rows:
            self.status("Nothing to export: classify a folder first" if not self.folder_panel.model.rows
                        else "The filter hides every row: nothing to export")
            return
        start = os.path.join(self.settings.get("last_folder") or str(Path.home()), f"cnndesk-results.{fmt}")
        path = file_dialogs.save_file(self.window, f"Export results as {fmt.upper()}", start, f"{fmt.upper()} (*.{fmt})")
        if not path:
            return
        self.export_to(path, fmt)

    def export_to(self, path: str, fmt: str) -> int:
        """Write the rows the table shows (in its order) to ``path``."""
        rows = self.folder_panel.visible_rows()
        try:
            n = results_io.export((r.as_dict() for r in rows), path, fmt, self.settings.top_k,
                                  novelty=any(r.prediction is not None and r.prediction.novelty is not None for r in rows))
        except OSError as exc:
            QMessageBox.warning(self.window, "Export failed", f"Could not write {path}: {exc.strerror or exc}")
            return 0
        total = self.folder_panel.model.rowCount()
        note = f" (the {n:,} shown of {total:,}: the filter is on)" if n < total else ""
        self.status(f"Exported {n:,} row{'s' if n != 1 else ''}{note} to {path}")
        return n

    # -- sort -----------------------------------------------------------------------------------
    def sort_into_folders(self):
        from cnndesk.qt.dialogs.sort_dialog import SortDialog

        if not self.folder_panel.visible_rows():
            return
        start = os.path.join(self.roots[0] if self.roots else str(Path.home()), "sorted")
        dlg = SortDialog(start, self.window)
        if dlg.exec() != SortDialog.DialogCode.Accepted:
            return
        dest, mode, threshold = dlg.values()
        self.run_sort(dest, mode, threshold, confirm=True)

    def sort_plan(self, dest: str, threshold: float | None) -> sorting.SortPlan:
        rows = [(r.path, r.prediction.label if r.prediction else None, r.prediction.score if r.prediction else None, r.error,
                 bool(r.prediction and r.prediction.unknown)) for r in self.folder_panel.visible_rows()]
        return sorting.plan_sort(rows, dest, threshold)

    def describe_plan(self, plan: sorting.SortPlan, mode: str) -> str:
        text = plan.describe(mode)
        shown, total = len(self.folder_panel.visible_rows()), self.folder_panel.model.rowCount()
        if shown < total:
            text += f"\nOnly the {shown:,} files the filter shows (of {total:,})."
        clashes = count_clashes(plan)
        if clashes:
            text += (f"\n{clashes} file{'s' if clashes != 1 else ''} already {'have' if clashes != 1 else 'has'} a namesake there: "
                     "saved as “name (1).jpg”, nothing is overwritten.")
        if mode == "move":
            text += "\nEdit ▸ Undo (Ctrl+Z) puts the files back."
        return text

    def run_sort(self, dest: str, mode: str, threshold: float | None, confirm: bool = True):
        plan = self.sort_plan(dest, threshold)
        if confirm:
            box = QMessageBox(QMessageBox.Icon.Warning if mode == "move" else QMessageBox.Icon.Question,
                              "Sort into folders", self.describe_plan(plan, mode), parent=self.window)
            go = box.addButton("Move files" if mode == "move" else "Copy files", QMessageBox.ButtonRole.AcceptRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            if box.clickedButton() is not go:
                return
        self.status("Sorting files…", 0)
        roots = list(self.roots)
        self.runner.start(
            JobKind.SORT, jobs.sort_files, plan, mode, self.undo.journal, dest, roots,
            on_result=lambda rep: self._sorted(rep, mode, dest),
            on_error=lambda exc: QMessageBox.warning(self.window, "Sorting failed", str(exc)),
        )

    def _sorted(self, report: sorting.SortReport, mode: str, dest: str):
        self.last_sort_report = report
        self.undo.refresh()
        if mode == "move":
            self.folder_panel.model.relocate({os.fspath(a): os.fspath(b) for a, b in report.done})
        text = report.describe(mode)
        if report.renamed:
            text += f"\n{report.renamed} had a namesake in the destination: saved as “name (1)…”, nothing was overwritten."
        if mode == "move":
            text += "\nEdit ▸ Undo (Ctrl+Z) puts them back."
        self.status(report.describe(mode), 10000)
        box = QMessageBox(QMessageBox.Icon.Information, "Sorted", text, parent=self.window)
        ok = box.addButton(QMessageBox.StandardButton.Ok)
        box.setEscapeButton(ok)  # Esc closes it (with two buttons Qt picks no escape button)
        show = box.addButton("Show folder", QMessageBox.ButtonRole.ActionRole)
        box.addAction(self.undo.action)  # Ctrl+Z works while it is up, as it says; and closes it
        self.undo.action.triggered.connect(box.accept)
        box.finished.connect(lambda _r: self.undo.action.triggered.disconnect(box.accept))
        box.open()
        self.sorted_box = box
        show.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(dest)))

    def _undone(self, report) -> None:
        """After Undo: the table follows the files back."""
        self.folder_panel.model.relocate(dict(report.restored))


__all__ = ["FolderResults", "SORT_MARKER", "count_clashes"]
