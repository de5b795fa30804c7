"""Manage your models: rename, delete, import, save a copy, export a bundle (ONNX, int8, OpenVINO,
TorchScript, torch.export — checked against the app, with the parity report shown)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
)

from cnndesk.core.common.errors import CnndeskError
from cnndesk.core.common.safeio import display
from cnndesk.core.models import manage
from cnndesk.core.models.registry import unusable_user_models, user_model_specs
from cnndesk.qt import file_dialogs
from cnndesk.qt.widgets.plain_label import PlainLabel

PathRole = Qt.ItemDataRole.UserRole + 20


class ModelsDialog(QDialog):
    models_changed = Signal()

    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Your models")
        self.runner = runner
        self.list = QListWidget()
        self.list.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.info = PlainLabel()
        self.info.setWordWrap(True)
        self.buttons = {}
        row = QHBoxLayout()
        for key, text in (("rename", "Rename…"), ("delete", "Delete…"), ("import", "Import…"), ("copy", "Save a copy…"),
                          ("export", "Export…")):
            b = QPushButton(text)
            b.clicked.connect(getattr(self, f"do_{key}"))
            self.buttons[key] = b
            row.addWidget(b)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.info)
        lay.addLayout(row)
        lay.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)
        self.resize(760, 420)
        self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        for spec in user_model_specs():
            m = spec.metadata.get("metrics", {})
            acc = f" · validation accuracy {m['val_accuracy']:.0%}" if "val_accuracy" in m else ""
            kind = "quick" if spec.metadata.get("kind") == "head" else "full"
            item = QListWidgetItem(f"{spec.title} — {len(spec.labels)} classes ({', '.join(spec.labels[:4])}"
                                   f"{'…' if len(spec.labels) > 4 else ''}) · {kind}{acc}")
            item.setData(PathRole, spec.weights.path)
            item.setToolTip(spec.weights.path)
            self.list.addItem(item)
        for path, reason in unusable_user_models():  # listed with the reason (it can be deleted)
            why = reason.split(": ", 1)[1] if reason.startswith(f"{path.name}: ") else reason
            item = QListWidgetItem(f"⚠ {display(path.stem, 60)} — unusable: {display(why, 200)}")
            item.setData(PathRole, str(path))
            item.setToolTip(display(reason, 500))
            self.list.addItem(item)
        if not self.list.count():
            self.info.setText("No models yet: train one (Model ▸ Train a Model…) or import a model file.")
        else:
            self.info.setText("")
        self._update_buttons()

    def _selected(self) -> str | None:
        item = self.list.currentItem()
        return item.data(PathRole) if item is not None else None

    def _update_buttons(self) -> None:
        from cnndesk.core.common import system

        has = self._selected() is not None
        for key, b in self.buttons.items():
            b.setEnabled(has or key == "import")
        if not system.has_torch():
            self.buttons["export"].setEnabled(False)
            self.buttons["export"].setToolTip(f"Export {system.FULL_ONLY}")

    def _changed(self, message: str) -> None:
        self.refresh()
        self.info.setText(message)
        self.models_changed.emit()

    def do_rename(self) -> None:
        path = self._selected()
        if not path:
            return
        name, ok = QInputDialog.getText(self, "Rename model", "New name:", text=Path(path).stem)
        if ok and name.strip():
            try:
                new = manage.rename_model(path, name)
            except CnndeskError as exc:
                QMessageBox.warning(self, "Rename failed", str(exc))
                return
            self._changed(f"Renamed to {new.stem}")

    def do_delete(self) -> None:
        path = self._selected()
        if not path:
            return
        if QMessageBox.question(self, "Delete model", f"Delete “{Path(path).stem}”? This cannot be undone.") != QMessageBox.StandardButton.Yes:
            return
        try:
            manage.delete_model(path)
        except (CnndeskError, OSError) as exc:
            QMessageBox.warning(self, "Delete failed", str(exc))
            return
        self._changed(f"Deleted {Path(path).stem}")

    def do_import(self) -> None:
        src = file_dialogs.open_file(self, "Import a model", "", "cnndesk models (*.safetensors)")
        if src:
            try:
                new = manage.import_model(src)
            except (CnndeskError, OSError) as exc:
                QMessageBox.warning(self, "Cannot import this file", str(exc))
                return
            self._changed(f"Imported {new.stem}")

    def do_copy(self) -> None:
        path = self._selected()
        if not path:
            return
        dest = file_dialogs.save_file(self, "Save a copy", str(Path.home() / Path(path).name), "cnndesk models (*.safetensors)")
        if dest:
            try:
                out = manage.copy_model(path, dest, overwrite=True)  # the file dialog asked already
            except OSError as exc:
                QMessageBox.warning(self, "Copy failed", str(exc))
                return
            self.info.setText(f"Saved a copy as {out}")

    def do_export(self):
        from cnndesk.qt.dialogs.export_dialog import ExportDialog

        path = self._selected()
        if not path:
            return None
        self.export_dialog = ExportDialog(self.runner, path, self)
        self.export_dialog.show()
        return self.export_dialog
