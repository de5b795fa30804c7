"""Manage Models ▸ Export…: choose a format and a folder; the bundle is written on a worker, checked
against the app (its own predict.py on the model's validation images), and the parity report is
shown with a button that opens the folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from cnndesk.core.export.formats import FORMATS
from cnndesk.qt import file_dialogs, jobs
from cnndesk.qt.widgets.plain_label import PlainLabel
from cnndesk.qt.workers import JobKind

FormatRole = Qt.ItemDataRole.UserRole + 30


def _runtime_installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


class ExportDialog(QDialog):
    def __init__(self, runner, model_path: str, parent=None):
        super().__init__(parent)
        self.runner, self.model_path = runner, model_path
        self.report = None
        stem = Path(model_path).stem
        self.setWindowTitle(f"Export “{stem}”")
        self.formats = QListWidget()
        for f in FORMATS.values():
            ok = _runtime_installed(f.runtime)
            text = f"{f.name} — {f.description}" + ("" if ok else f"  (parity unchecked here: {f.runtime} is not installed)")
            item = QListWidgetItem(text)
            item.setData(FormatRole, f.name)
            item.setToolTip(f.note or f.description)
            self.formats.addItem(item)
        self.formats.setCurrentRow(0)
        rows = self.formats.count() * max(self.formats.sizeHintForRow(0), 18)
        self.formats.setFixedHeight(rows + 2 * self.formats.frameWidth() + 4)
        self.formats.currentItemChanged.connect(lambda *_: self._suggest_folder())
        self.folder = QLineEdit()
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(self.folder, 1)
        where.addWidget(browse)
        self.data = QLineEdit()
        self.data.setPlaceholderText("the model's own validation images (from its dataset folder)")
        data_browse = QPushButton("Choose…")
        data_browse.clicked.connect(self._browse_data)
        data_row = QHBoxLayout()
        data_row.addWidget(self.data, 1)
        data_row.addWidget(data_browse)
        form = QFormLayout()
        form.addRow("Bundle folder:", where)
        form.addRow("Check with:", data_row)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.result = PlainLabel("Every bundle holds the model, model.json, a predict.py that needs only Pillow, numpy "
                             "and the runtime, a README and parity.json — the bundle checked against the app.")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.open_button = self.buttons.addButton("Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.setEnabled(False)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.export_button.clicked.connect(self.start)
        self.open_button.clicked.connect(self.open_folder)
        self.cancel_button.clicked.connect(self._cancel_or_close)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Format:"))
        lay.addWidget(self.formats)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(self.result, 1)
        lay.addWidget(self.buttons)
        self.resize(720, 360)
        self._stem = stem
        self._suggest_folder()

    # -- choices ---------------------------------------------------------------------------------
    def chosen_format(self) -> str:
        item = self.formats.currentItem()
        return item.data(FormatRole) if item is not None else "onnx"

    def _suggest_folder(self) -> None:
        parent = Path(self.folder.text()).parent if self.folder.text() else Path.home()
        base = parent / f"{self._stem}-{self.chosen_format()}"
        n, cand = 2, base
        while cand.exists():
            cand, n = base.with_name(f"{base.name} ({n})"), n + 1
        self.folder.setText(str(cand))

    def _browse(self) -> None:
        parent = file_dialogs.choose_folder(self, "Where to put the bundle folder", str(Path(self.folder.text()).parent))
        if parent:
            self.folder.setText(str(Path(parent) / Path(self.folder.text()).name))

    def _browse_data(self) -> None:
        d = file_dialogs.choose_folder(self, "Images to check the export with", str(Path.home()))
        if d:
            self.data.setText(d)

    # -- the job ---------------------------------------------------------------------------------
    def start(self) -> None:
        out = self.folder.text().strip()
        if not out:
            return
        self.report = None
        self.export_button.setEnabled(False)
        self.open_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.result.setText(f"Exporting to {self.chosen_format()} and checking it against the app…")
        self.runner.start(JobKind.EXPORT, jobs.export_bundle, self.model_path, self.chosen_format(), out, self.data.text().strip(),
                          on_result=self._done, on_error=self._failed, on_progress=self._progress,
                          on_cancelled=self._cancelled)

    def _progress(self, done, total, text) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        if text:
            self.result.setText(text + "…")

    def _finish_ui(self) -> None:
        self.progress.setVisible(False)
        self.export_button.setEnabled(True)
        self.cancel_button.setText("Close")

    def _done(self, report) -> None:
        self._finish_ui()
        self.report = report
        (self.result.setText if report.ok else self.result.set_error)(report.describe())  # plain text: it names folders
        self.open_button.setEnabled(True)
        self._suggest_folder()  # a second export goes to a new folder

    def _failed(self, message) -> None:
        self._finish_ui()
        self.result.set_error(f"Export failed: {message}")

    def _cancelled(self) -> None:
        self._finish_ui()
        self.result.setText("Export cancelled; nothing was written.")

    def open_folder(self) -> None:
        if self.report is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.report.folder)))

    def _cancel_or_close(self) -> None:
        if self.runner.running(JobKind.EXPORT):
            self.runner.cancel(JobKind.EXPORT)  # the bundle's temporary folder is removed by the core
            self._cancelled()
        else:
            self.accept()

    def reject(self) -> None:  # Esc or the window's close button: stop a running export too
        if self.runner.running(JobKind.EXPORT):
            self.runner.cancel(JobKind.EXPORT)
        super().reject()
