"""The model picker: the toolbar's model list, loading a model on a worker, the download dialog,
falling back when a model cannot be loaded. It owns the current classifier; the main window
listens to :attr:`ModelPicker.ready` and hands the classifier to the panels.

A pick is remembered (``last_model``) only once the model has loaded: a zoo model that cannot be
downloaded offline never becomes the model every later start tries again. The download dialog
appears only when bytes are actually coming, and never outlives the job; errors are shown in a
window-modal box that does not block the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QMessageBox, QProgressDialog, QWidget

from cnndesk.core.common.errors import NetworkRequiredError
from cnndesk.core.common.safeio import display
from cnndesk.core.models.registry import ModelSpec, get_spec, list_models, unusable_user_models
from cnndesk.qt import jobs
from cnndesk.qt.workers import JobKind


def model_key(spec: ModelSpec | None) -> str | None:
    """What the picker stores for ``spec``: the zoo name, or the file path of a user model."""
    if spec is None:
        return None
    return spec.weights.path if spec.source == "user" else spec.name


class ModelPicker(QObject):
    """``ready(classifier, switched)``: a model finished loading (``switched``: it replaced
    another one, so what was classified before should be classified again)."""

    ready = Signal(object, bool)
    unloaded = Signal()  # a new model is loading: the old classifier is gone

    def __init__(self, window: QWidget, settings, runner, device_label: QLabel, status: Callable[..., None]):
        super().__init__(window)
        self.window, self.settings, self.runner = window, settings, runner
        self.device_label, self.status = device_label, status
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(22)
        self.model_combo.setToolTip("The network that classifies your images")
        self.clf = None
        self.spec: ModelSpec | None = None
        self.error_box: QMessageBox | None = None
        self._download_dialog: QProgressDialog | None = None
        self._after_model: list[Callable[[], None]] = []
        self.refresh_models(scan=False)  # the folder of your models is read on a worker
        self.model_combo.currentIndexChanged.connect(self._model_chosen)
        self.list_models_later()

    def refresh_models(self, select: str | None = None, scan: bool = True):
        """Fill the picker. ``scan=False`` (the window's first paint): the built-in models and the
        remembered pick only; the models folder is read on a worker (:meth:`list_models_later`)."""
        select = select or self.settings.get("last_model")
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for spec in list_models(include_user=scan):
            if not getattr(spec, "runnable", True):
                continue
            text = spec.title
            if spec.source == "user":
                text = f"{display(spec.title, 80)} (yours)"
            elif spec.needs_download:
                text = f"{spec.title} — download {spec.weights.size_mb:.0f} MB"
            self.model_combo.addItem(text, model_key(spec))
            self.model_combo.setItemData(self.model_combo.count() - 1, display(spec.description, 500),
                                         Qt.ItemDataRole.ToolTipRole)
        if not scan and select and self.model_combo.findData(select) < 0 and str(select).endswith(".safetensors"):
            self.model_combo.addItem(f"{display(Path(select).stem, 80)} (yours)", select)  # listed for real soon
        for path, reason in (unusable_user_models() if scan else []):  # listed, greyed out, with the reason
            self.model_combo.addItem(f"{display(path.stem, 60)} (unusable)", f"unusable:{path}")
            i = self.model_combo.count() - 1
            self.model_combo.setItemData(i, display(reason, 500), Qt.ItemDataRole.ToolTipRole)
            self.model_combo.model().item(i).setEnabled(False)
        i = self.model_combo.findData(select) if select else 0
        if i < 0 or not self.model_combo.model().item(i).isEnabled():
            i = 0
        self.model_combo.setCurrentIndex(i)
        self.model_combo.blockSignals(False)

    def load_current(self) -> None:
        self.load_model(self.model_combo.currentData())

    def list_models_later(self) -> None:
        """Read the models folder on a worker (a folder of broken or huge files never blocks the
        window), then list it: the picker reads the metadata the worker just checked (cached)."""
        self.runner.start(JobKind.MODEL_LIST, jobs.list_user_models,
                          on_result=lambda _: self.refresh_models(self.model_combo.currentData()))

    def load_model(self, name: str | None):
        try:
            spec = get_spec(name)
        except Exception as exc:  # a deleted user model: fall back to the default
            self.status(str(exc), 8000)
            spec = get_spec(None)
        prev = self.spec
        self.clf = None
        self.unloaded.emit()
        self.device_label.setText("Loading model…")
        self.status(f"Loading {spec.title}…", 0)

        def progress(done, total, text):
            if spec.needs_download and text.startswith("Downloading"):
                dlg = self._download_dialog or self._open_download_dialog(spec, prev)
                if total:
                    dlg.setValue(int(100 * done / total))
            elif text:
                self.status(text + "…", 0)

        self.runner.start(
            JobKind.MODEL, jobs.load_classifier, spec, self.settings.device,
            on_result=lambda clf: self._model_ready(clf, prev),
            on_error=lambda exc: self.failed(spec, exc, prev),
            on_progress=progress,
        )

    def _open_download_dialog(self, spec: ModelSpec, prev: ModelSpec | None) -> QProgressDialog:
        dlg = QProgressDialog(f"Downloading {spec.title} ({spec.weights.size_mb:.0f} MB)…", "Cancel", 0, 100, self.window)
        dlg.setWindowTitle("Downloading model")
        dlg.setMinimumDuration(0)
        dlg.setAutoClose(False)
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        dlg.canceled.connect(lambda: self._cancel_model_load(prev))
        dlg.show()
        self._download_dialog = dlg
        return dlg

    def _close_download_dialog(self):
        if self._download_dialog is not None:
            dlg, self._download_dialog = self._download_dialog, None
            dlg.canceled.disconnect()
            dlg.cancel()  # stops QProgressDialog's show-later timer (close() alone does not)
            dlg.hide()
            dlg.deleteLater()

    def _cancel_model_load(self, prev: ModelSpec | None):
        self.runner.cancel(JobKind.MODEL)
        self._close_download_dialog()
        self.status("Download cancelled")
        self._revert_model(prev)

    def _revert_model(self, prev: ModelSpec | None):
        self.model_combo.blockSignals(True)
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(model_key(prev))))
        self.model_combo.blockSignals(False)
        self.load_model(self.model_combo.currentData())

    def _model_ready(self, clf, prev: ModelSpec | None):
        self._close_download_dialog()
        first = prev is None
        self.clf, self.spec = clf, clf.spec
        clf.set_flag_rate(self.settings.novelty_rate(clf.spec.name) / 100)
        self.settings.set("last_model", model_key(clf.spec))
        self.device_label.setText(f"{clf.spec.title} · {clf.describe()}")
        done = getattr(clf, "export_done", None)
        if done is not None and not done.is_set():  # PyTorch answers until the ONNX export is ready
            self._watch_export(clf)
            self.runner.adopt("the first answer's background export", done.wait)  # drained on quit
        self.status(f"{clf.spec.title} ready" + (f" — {clf.device_info.note}" if clf.device_info.note else ""), 6000)
        self.refresh_models(model_key(clf.spec))
        self.ready.emit(clf, not first and prev is not None and prev != clf.spec)
        queued, self._after_model = self._after_model, []
        for action in queued:
            action()

    def _watch_export(self, clf) -> None:
        """Update the status bar when the background export switches the model to ONNX Runtime."""
        def check():
            if self.clf is not clf:
                return
            if clf.export_done.is_set():
                self.device_label.setText(f"{clf.spec.title} · {clf.describe()}")
            else:
                QTimer.singleShot(2000, self.device_label, check)

        # the label as context: a window closed meanwhile drops the call (no deleted-object error)
        QTimer.singleShot(2000, self.device_label, check)

    def failed(self, spec: ModelSpec, exc: Exception, prev: ModelSpec | None):
        """``spec`` could not be loaded: say why (a window-modal box that does not block) and go
        back to ``prev`` (or the default model)."""
        self._close_download_dialog()
        self.device_label.setText("No model")
        title = "No network connection" if isinstance(exc, NetworkRequiredError) else "Could not load the model"
        # window-modal but not a nested event loop: the revert below goes on while it shows
        box = QMessageBox(QMessageBox.Icon.Warning, title, str(exc), QMessageBox.StandardButton.Ok, self.window)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.error_box = box
        if spec != prev and prev is not None:
            self._revert_model(prev)
        elif spec.name != get_spec(None).name:
            self._revert_model(get_spec(None))

    def _model_chosen(self, _index: int):
        self.load_model(self.model_combo.currentData())

    def when_ready(self, action: Callable[[], None]) -> None:
        """Run ``action`` now if a model is loaded, else once one is."""
        if self.clf is not None:
            action()
        else:
            self._after_model.append(action)
