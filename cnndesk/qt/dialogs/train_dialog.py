"""Teach the CNN your own classes: choose a folder, see what is in it, train (quick or full) with
live curves, progress and Cancel, then look at the evaluation and fix mistakes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnndesk.core.common.paths import user_models_dir
from cnndesk.core.common.safeio import unique_path
from cnndesk.core.organize.sorting import folder_name
from cnndesk.core.training.config import TrainConfig
from cnndesk.qt import file_dialogs, jobs
from cnndesk.qt.dialogs import train_text
from cnndesk.qt.dialogs.folder_drop import FolderDropTarget, same_folder
from cnndesk.qt.dialogs.train_options import FIELDS, TrainOptions
from cnndesk.qt.screen_fit import fit_to_screen, scrolling
from cnndesk.qt.widgets.charts import CurveChart
from cnndesk.qt.widgets.doctor_panel import DoctorPanel
from cnndesk.qt.widgets.evaluation import EvaluationView
from cnndesk.qt.widgets.plain_label import PlainLabel
from cnndesk.qt.workers import JobKind


class TrainDialog(QDialog):
    model_saved = Signal(str)  # path of the new model file
    activity = Signal(str)  # "Training… 40 %" while a training runs, "" when idle (main window badge)

    def __init__(self, settings, runner, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Train a model on your images")
        self.settings = settings
        self.runner = runner
        self.dataset = None
        self.result = None
        self.saved_path: str | None = None
        self._t0 = 0.0
        self._auto_name = ""  # the name filled in from the folder (replaced when the folder changes)
        self._name_typed = False  # the user typed a name: it stays when another folder is chosen
        self._quitting = False  # the app is closing: keep the best model without asking
        self._keep_on_stop = False  # the user said "Stop Training" on closing: keep it without asking

        # -- data ---------------------------------------------------------------------------------
        self.folder = QLineEdit(self.settings.get("dataset_folder") or "")
        self.folder.setPlaceholderText("A folder with one subfolder per class (e.g. cats/, dogs/)")
        browse = QPushButton("Choose…")
        browse.setAutoDefault(False)  # Enter in the folder field loads it, never opens the file dialog
        browse.clicked.connect(self.choose_folder)
        self.folder.editingFinished.connect(lambda: self.load_folder(self.folder.text()))
        # a folder dropped on the field or the dialog is loaded, not typed in
        self._drop = FolderDropTarget(self.folder, self._folder_dropped, self)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.classes = QListWidget()
        self.classes.setIconSize(QSize(56, 56))
        self.classes.setMinimumHeight(150)
        self.scan_info = PlainLabel()
        self.scan_info.setWordWrap(True)

        # -- mode and settings --------------------------------------------------------------------
        self.quick = QRadioButton(train_text.quick_label(None))
        self.quick.setToolTip(train_text.QUICK_TIP)
        self.full = QRadioButton("Full — minutes: fine-tune the network itself")
        self.full.setToolTip("Trains the network's later layers on your images (Advanced: how many, or all): "
                             "better on unusual images (textures, drawings, microscopy), minutes instead of seconds")
        self.quick.setChecked(True)
        from cnndesk.core.common import system

        if not system.has_torch():
            self.full.setEnabled(False)
            self.full.setToolTip(f"Full fine-tuning {system.FULL_ONLY}")
        self.name = QLineEdit()
        self.name.setPlaceholderText("model name")
        self.name.textEdited.connect(lambda t: setattr(self, "_name_typed", bool(t.strip())))
        self.advanced = TrainOptions()  # defaults from TrainConfig, the one source shared with the CLI
        for name in FIELDS:  # the option widgets under their usual names
            setattr(self, name, getattr(self.advanced, name))

        # -- progress and curves ------------------------------------------------------------------
        self.loss_chart = CurveChart("Loss")
        self.acc_chart = CurveChart("Accuracy", percent=True)
        charts = QHBoxLayout()
        charts.addWidget(self.loss_chart)
        charts.addWidget(self.acc_chart)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = PlainLabel("Choose a folder to start.")
        self.status.setWordWrap(True)
        self.train_btn = QPushButton("Train")
        self.train_btn.setDefault(True)
        self.train_btn.clicked.connect(self.start)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(self.cancel)
        self.cancel_btn.setEnabled(False)
        self.close_btn = QPushButton("Close")
        self.close_btn.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.train_btn)
        buttons.addWidget(self.cancel_btn)

        # the settings and curves scroll on a short screen; progress and buttons stay in view
        content = QWidget()
        tl = QVBoxLayout(content)
        tl.addWidget(QLabel("Images:"))
        tl.addLayout(row)
        tl.addWidget(self.classes)
        tl.addWidget(self.scan_info)
        self.doctor_link = QLabel()  # the dataset check's headline, linking to its tab
        tl.addWidget(self.doctor_link)
        tl.addWidget(self.quick)
        tl.addWidget(self.full)
        self.full_choices = PlainLabel("")
        self.full_choices.setObjectName("fullChoices")
        self.full_choices.setWordWrap(True)
        self.full_choices.setStyleSheet("color: palette(mid); margin-left: 24px;")
        tl.addWidget(self.full_choices)
        self.full.toggled.connect(lambda _on: self._show_full_choices())
        self.advanced.changed.connect(self._show_full_choices)
        nrow = QHBoxLayout()
        nrow.addWidget(QLabel("Model name:"))
        nrow.addWidget(self.name, 1)
        tl.addLayout(nrow)
        tl.addWidget(self.advanced)
        tl.addLayout(charts, 1)
        self.scroll = QScrollArea()
        self.scroll.setWidget(content)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        train_page = QWidget()
        pl = QVBoxLayout(train_page)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.scroll, 1)
        pl.addWidget(self.progress)
        pl.addLayout(buttons)

        self.evaluation = EvaluationView(runner)
        self.evaluation.retrain_requested.connect(self.retrain)
        self.tabs = QTabWidget()
        self.tabs.addTab(train_page, "Train")
        self.tabs.addTab(self.evaluation, "Evaluation")
        self.tabs.setTabEnabled(1, False)
        self.doctor = DoctorPanel(runner)
        self.doctor.checked.connect(self._doctor_checked)
        self.doctor.dataset_changed.connect(lambda: self.dataset and self.load_folder(str(self.dataset.root)))
        self.tabs.addTab(self.doctor, "Dataset check")
        self.eval_link = QLabel()  # the evaluation page links back to the check
        self.evaluation.layout().insertWidget(1, self.eval_link)
        for link in (self.doctor_link, self.eval_link):
            link.linkActivated.connect(lambda _: self.tabs.setCurrentWidget(self.doctor))
        lay = QVBoxLayout(self)
        lay.addWidget(scrolling(self.tabs))  # 1280x720 at 200 %: the Evaluation page needed 477 px of 304
        # Close beside the tabs: on every page (the evaluation and the check had none), no extra row
        self.tabs.setCornerWidget(self.close_btn, Qt.Corner.TopRightCorner)
        self.evaluation.open_in_app = getattr(parent, "open_paths", None)  # "Open in cnndesk" on its images
        undo = getattr(parent, "undo", None)
        if undo is not None:  # Ctrl+Z here too: a relabel on the evaluation page or a check's move is undoable
            self.addAction(undo.action)
            self.evaluation.journal = self.doctor.journal = undo.journal
            self.evaluation.dataset_changed.connect(undo.refresh)
            self.doctor.dataset_changed.connect(undo.refresh)
            undo.undone.connect(self._undone)
        fit_to_screen(self, 980, 760)
        for b in self.findChildren(QPushButton):  # Enter means Train, never Close or Cancel (or a tab's button)
            if b is not self.train_btn:
                b.setAutoDefault(False)
        self._set_running(False)
        if self.folder.text():
            self.load_folder(self.folder.text())

    # -- data -------------------------------------------------------------------------------------
    def choose_folder(self) -> None:
        d = file_dialogs.choose_folder(self, "Images, one subfolder per class", self.folder.text() or self.settings.get("last_folder"))
        if d:
            self.folder.setText(d)
            self.load_folder(d)

    def load_folder(self, folder: str) -> None:
        folder = folder.strip()
        if not folder:
            return
        self.status.setText("Looking at the folder…")
        self.train_btn.setEnabled(False)
        if self.dataset is not None and not same_folder(folder, str(self.dataset.root)):
            self.classes.clear()  # never the old folder's classes under the new path
            self.scan_info.setText("")
        self.runner.start(JobKind.SCAN, jobs.scan_dataset, folder, self.val_split.value() / 100, 0,
                          on_result=self._scanned, on_error=self._scan_failed)

    def _scan_failed(self, message: str) -> None:
        self.dataset = None
        self.classes.clear()
        self.scan_info.set_error(f"{message}")
        self.status.setText("Choose a folder with one subfolder per class.")
        self.train_btn.setEnabled(False)

    def _scanned(self, result: jobs.ScannedDataset) -> None:
        ds, thumbs = result.dataset, result.thumbs
        self.dataset = ds
        self.settings.set("dataset_folder", str(ds.root))
        self.classes.clear()
        for name, n in ds.counts().items():
            item = QListWidgetItem(f"{name} — {n} image{'s' if n != 1 else ''}")
            if thumbs.get(name):
                item.setIcon(QIcon(QPixmap.fromImage(thumbs[name][0])))
            self.classes.addItem(item)
        lines = [f"{len(ds.classes)} classes · {len(ds.train)} images to learn from · {len(ds.val)} to check on"]
        lines += [f"⚠ {w}" for w in ds.warnings]
        if ds.unreadable:
            lines.append("Unreadable: " + ", ".join(os.path.basename(p) for p, _ in ds.unreadable[:5])
                         + ("…" if len(ds.unreadable) > 5 else ""))
        self.scan_info.setText("\n".join(lines))
        name = self.name.text().strip()  # filled in (not typed, even if the same) or empty: follows the folder
        if not name or (self.name.text() == self._auto_name and not self._name_typed):
            self._auto_name = train_text.default_model_name(ds.root)
            self.name.setText(self._auto_name)
            self._name_typed = False
        self.quick.setText(train_text.quick_label(len(ds.train) + len(ds.val)))
        self._show_full_choices()
        self.status.setText("Ready to train.")
        self.train_btn.setEnabled(True)
        if self.doctor.check(str(ds.root), self.config().base, self.settings.device):
            self.doctor_link.setText('Checking the images for wrong labels and duplicates… <a href="check">Details</a>')

    def _doctor_checked(self, rep) -> None:
        n = len(rep.issues)
        self.tabs.setTabText(self.tabs.indexOf(self.doctor), f"Dataset check ({n})" if n else "Dataset check ✓")
        text = f'⚠ {self.doctor.headline()} <a href="check">Review them</a>' if n else "Dataset check: no problems found."
        for link in (self.doctor_link, self.eval_link):
            link.setText(text)

    def _show_full_choices(self) -> None:
        """Full mode's settings chosen from the data, shown before training (image headers only)."""
        if self.dataset is None or not self.full.isChecked():
            self.full_choices.setText("")
            return
        from cnndesk.core.training import full_settings as fullmode

        try:
            ch = fullmode.choose(self.dataset, self.config(), "cpu")
        except Exception as exc:  # never block the dialog on a preview
            self.full_choices.setText(f"Settings are chosen when training starts ({exc}).")
            return
        shown = {"time_budget", "epochs"} if "time_budget" in ch.reasons else set()  # already in describe()
        why = "; ".join(f"{v}" for k, v in ch.reasons.items() if k not in shown)
        self.full_choices.setText(f"Will train at {ch.describe()}, no mirroring unless asked, stops early when "
                                  f"validation stops improving. ({why})")
        self._full_epochs = ch.epochs

    # -- training ----------------------------------------------------------------------------------
    def config(self) -> TrainConfig:
        return self.advanced.config(full=self.full.isChecked(), device=self.settings.device)

    def start(self) -> None:
        if self.dataset is None:
            return
        self._closed = False
        cfg = self.config()
        self.result = None
        self._keep_on_stop = False
        n_epochs = cfg.resolved_epochs()
        if cfg.mode == "full" and not cfg.epochs:
            n_epochs = getattr(self, "_full_epochs", n_epochs)
        self.loss_chart.clear(n_epochs)
        self.acc_chart.clear(n_epochs)
        self.progress.setRange(0, 0)
        self.status.setText("Preparing…")
        self._t0 = time.perf_counter()
        self._t_steps = None  # when the first epoch's steps began (the time budget counts from there)
        self._budget = cfg.time_budget_s if cfg.mode == "full" and not cfg.epochs else 0.0
        self._set_running(True)
        self.activity.emit("Training…")
        self.runner.start(JobKind.TRAIN, jobs.train_model, self.dataset, cfg, on_partial=self._epoch,
                          on_progress=self._progress, on_result=self._trained, on_error=self._failed,
                          on_cancelled=self._cancelled_before_first_epoch, keep_result=True)

    def _set_running(self, running: bool) -> None:
        self.train_btn.setEnabled(not running and self.dataset is not None)
        self.cancel_btn.setEnabled(running)
        for w in (self.folder, self.quick, self.full, self.advanced, self.name):
            w.setEnabled(not running)

    def _epoch(self, s) -> None:
        for chart in (self.loss_chart, self.acc_chart):  # full mode: the epochs that fit the time budget
            chart.x_max = max(chart.x_max if s.epoch > 1 else 1.0, float(s.epochs))
        self.loss_chart.add(s.epoch, s.train_loss, s.val_loss)
        self.acc_chart.add(s.epoch, s.train_acc, s.val_acc)
        self.status.setText(f"Epoch {s.epoch}/{s.epochs}: validation accuracy {s.val_acc:.1%}")

    def _progress(self, done, total, text) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            now = time.perf_counter()
            if getattr(self, "_t_steps", None) is None:
                self._t_steps = now
            eta = train_text.eta_seconds(now - self._t_steps, done, total, getattr(self, "_budget", 0.0))
            self.progress.setFormat(f"{text} — %p% · about {int(eta + 0.5)} s left")
            self.activity.emit(f"Training… {100 * done // max(total, 1)} %")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(text)
            self.status.setText(text)

    @property
    def running(self) -> bool:
        return self.runner.running(JobKind.TRAIN)

    def cancel(self) -> None:
        self.runner.cancel(JobKind.TRAIN)
        self.status.setText("Stopping…")  # within a batch; the best model so far still arrives

    def confirm_stop(self, action: str = "close this window") -> bool:
        """While training runs: ask before stopping it. True when it may stop (or nothing runs)."""
        if not self.running:
            return True
        box = QMessageBox(QMessageBox.Icon.Question, "Training is running",
                          f"A training is still running. Stop it and {action}?\n\n"
                          "The best model so far is kept.", parent=self)
        stop = box.addButton("Stop Training", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Keep Training", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(stop)
        box.exec()
        return box.clickedButton() is stop

    def stop_for_quit(self) -> None:
        """The app is quitting: stop at once; a partly trained model is kept without a question."""
        self._quitting = True
        self.runner.cancel(JobKind.TRAIN)
        self.runner.cancel(JobKind.SCAN)

    def reject(self) -> None:  # Esc and the window's close button
        running = self.running
        if not self._quitting and not self.confirm_stop():
            return
        self._keep_on_stop = self._keep_on_stop or running
        self.runner.cancel(JobKind.TRAIN)
        self.runner.cancel(JobKind.SCAN)
        super().reject()

    def _cancelled_before_first_epoch(self) -> None:
        self._set_running(False)
        self.activity.emit("")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText("Training cancelled.")

    def _failed(self, message: str) -> None:
        self._set_running(False)
        self.activity.emit("")
        self.progress.setRange(0, 1)
        self.status.set_error(f"Training failed: {message}")

    def _trained(self, model) -> None:
        self._set_running(False)
        self.activity.emit("")
        self.result = model
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        verb = "Stopped after" if model.cancelled else "Done in"
        self.progress.setFormat(f"{verb} {model.seconds:.1f} s")
        self._show_kept_curves(model)
        if model.cancelled and not (self._quitting or self._keep_on_stop):
            if self._closed or not self.isVisible():  # closed meanwhile: no late modal
                self.status.setText("Cancelled; nothing was saved.")
                return
            keep = QMessageBox.question(self, "Training stopped", "Training was cancelled. Keep the best model so far?")
            if keep != QMessageBox.StandardButton.Yes:
                self.status.setText("Cancelled; nothing was saved.")
                return
        self.save(model)

    def _show_kept_curves(self, model) -> None:
        """Quick training shows the default regularisation's epochs live while it tries the others;
        when another one is kept, the curves become the kept fit's, so that they agree with the
        validation accuracy the status line reports."""
        history = getattr(model, "history", None) or []
        if model.mode != "quick" or not history:
            return
        for chart in (self.loss_chart, self.acc_chart):
            chart.clear(float(history[-1].epochs))
        for s in history:
            self.loss_chart.add(s.epoch, s.train_loss, s.val_loss)
            self.acc_chart.add(s.epoch, s.train_acc, s.val_acc)

    def save(self, model) -> str:
        name = folder_name(self.name.text().strip() or Path(self.dataset.root).name)
        target, _ = unique_path(user_models_dir() / f"{name}.safetensors")
        path = model.save(target, name=target.stem)
        self.saved_path = str(path)
        acc = model.evaluation.accuracy if model.evaluation is not None else float("nan")
        why = train_text.stop_reason(model)
        self.status.setText(f"Saved “{target.stem}” — validation accuracy {acc:.1%}. It is now in the model picker."
                            + (f"\n{why}" if why else ""))
        self.evaluation.set_evaluation(model.evaluation)
        self.tabs.setTabEnabled(1, True)
        self.model_saved.emit(str(path))
        return str(path)

    def retrain(self) -> bool:
        """Train again on the (corrected) folders, after asking: a full training takes minutes."""
        if self.dataset is None or self.running:
            return False
        cfg = self.config()
        moved = self.evaluation.moved
        quick = train_text.quick_time(len(self.dataset.train) + len(self.dataset.val))
        text = (f"Train a new model on {self.dataset.root}"
                + (f" ({moved} file{'s' if moved != 1 else ''} moved to another class)" if moved else "")
                + f"?\n\nMode: {'full — this takes minutes' if cfg.mode == 'full' else 'quick — ' + quick}. "
                "The current model stays as it is; the new one is saved beside it.")
        box = QMessageBox(QMessageBox.Icon.Question, "Retrain", text, parent=self)
        go = box.addButton("Retrain", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is not go:
            return False
        self.tabs.setCurrentIndex(0)
        if self.dataset is not None:
            self.runner.start(JobKind.SCAN, jobs.scan_dataset, str(self.dataset.root), self.val_split.value() / 100, 0,
                              on_result=lambda r: (self._scanned(r), self.start()), on_error=self._scan_failed)
        return True

    # -- reopening and dropping a folder ---------------------------------------------------------------
    def showEvent(self, event):
        """Reopened after a close that stopped a scan: look at the folder again (the dialog never stays on
        "Looking at the folder…" with the old folder's classes)."""
        super().showEvent(event)
        text = self.folder.text().strip()
        if text and not self.runner.running(JobKind.SCAN) and not self.running and (
                self.dataset is None or not same_folder(text, str(self.dataset.root))):
            self.load_folder(text)
        self.train_btn.setDefault(True)

    def _undone(self, report) -> None:
        """Edit ▸ Undo put files back: the evaluation's mistakes and the check's moves follow."""
        self.evaluation.undone(report)
        self.doctor.undone(report)

    def _folder_dropped(self, folder: str) -> None:
        self.tabs.setCurrentIndex(0)
        self.folder.setText(folder)
        self.load_folder(folder)

    _closed = False

    def closeEvent(self, event):
        self._closed = True
        running = self.running
        if not self._quitting and not self.confirm_stop():
            event.ignore()
            return
        self._keep_on_stop = self._keep_on_stop or running
        self.runner.cancel(JobKind.TRAIN)
        self.runner.cancel(JobKind.SCAN)
        self.doctor.stop()
        super().closeEvent(event)

