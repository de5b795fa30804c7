"""The Label workspace's "Train now" row: train a model straight from the labels so far (quick by
default, full as an option) without writing a dataset folder first
(:mod:`cnndesk.core.labelling.training`: the same trainer and model file as Train a Model), with
progress and Stop through the worker contract, a clear message when there are too few labels, and
"Use it" once the model is saved (the main window lists it in the model picker)."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QProgressBar, QPushButton, QSizePolicy

from cnndesk.core.common.safeio import display
from cnndesk.core.labelling.folder import LabelError
from cnndesk.qt import label_jobs
from cnndesk.qt.label.queue_panel import plain_label
from cnndesk.qt.workers import JobKind

MODES = (("quick", "Quick"), ("full", "Full"))


def build(ws, row: QHBoxLayout, parent_layout) -> None:
    """The widgets, as attributes of the workspace ``ws``: added to ``row`` (the grid's actions);
    the status line below it (``parent_layout``), shown once there is something to say."""
    ws.train_btn = QPushButton("Train now")
    ws.train_btn.setToolTip("Train a model on the images labelled so far (no dataset folder needed); "
                            "it appears in the model picker")
    ws.train_mode = QComboBox()
    for key, text in MODES:
        ws.train_mode.addItem(text, key)
    ws.train_mode.setToolTip("Quick: a new head on the network's features, in seconds. "
                             "Full: fine-tunes the network itself, in minutes")
    ws.train_progress = QProgressBar()
    ws.train_progress.setFixedWidth(64)  # with Stop, no wider than Train now and the mode it replaces
    ws.train_progress.setVisible(False)
    ws.train_stop = QPushButton("Stop")
    ws.train_stop.setToolTip("Stop training; nothing is saved")
    ws.train_stop.setVisible(False)
    ws.train_status = plain_label("", wrap=True)
    ws.train_status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    ws.train_status.setVisible(False)
    ws.use_model_btn = QPushButton("Use it")
    ws.use_model_btn.setToolTip("Classify with the model just trained")
    ws.use_model_btn.setVisible(False)
    ws.train_btn.clicked.connect(ws.train_now)
    ws.train_stop.clicked.connect(ws.training.stop)
    ws.use_model_btn.clicked.connect(ws.training.use)
    for w in (ws.train_btn, ws.train_stop, ws.use_model_btn):
        w.setAutoDefault(False)
    row.addWidget(ws.train_btn)
    row.addWidget(ws.train_mode)
    row.addWidget(ws.train_progress)
    row.addWidget(ws.train_stop)
    below = QHBoxLayout()  # below, the whole width: messages can be long; "Use it" beside the one that says so
    below.addWidget(ws.train_status, 1)
    below.addWidget(ws.use_model_btn)
    parent_layout.addLayout(below)


class TrainController:
    """Runs one training at a time from the workspace's current view (never the session itself)."""

    def __init__(self, ws):
        self.ws = ws
        self.saved: str | None = None  # the last model file saved
        self._active = False  # a training started and not yet answered (result, error or stopped)

    @property
    def running(self) -> bool:
        return self._active

    def start(self) -> None:
        """Build the dataset from the labels shown (after the pending answers are applied) and train."""
        ws = self.ws
        if ws.session is None or self.running:
            return
        ws._when_idle(self._start)

    def _start(self) -> None:
        from cnndesk.core.labelling import training

        ws, v = self.ws, self.ws.view
        if v is None or self.running:
            return
        classes = set(v.classes)  # skipped and "none of these" are not classes
        labels = {v.paths[i]: s for i, s in enumerate(v.states) if s in classes}
        try:
            ds = training.dataset_from_labels(ws.root, labels)
        except LabelError as exc:
            self._said(str(exc), error=True)
            return
        mode = ws.train_mode.currentData()
        n = len(ds.train) + len(ds.val)
        self._running(True)
        self._said(f"Training a {mode} model on {n} labelled images of {len(ds.classes)} classes\u2026")
        for w in ds.warnings:
            ws.say(w)
        ws.runner.start(JobKind.LABEL_TRAIN, label_jobs.train_model, ds, mode, training.model_name(ws.root),
                        on_progress=self._progress, on_partial=self._epoch, on_result=self._trained,
                        on_error=self._failed, on_cancelled=self._cancelled)

    def stop(self) -> None:
        if self.running:
            self.ws.runner.cancel(JobKind.LABEL_TRAIN)
            self._cancelled()

    def use(self) -> None:
        if self.saved:
            self.ws.use_model.emit(self.saved)

    # -- job signals -------------------------------------------------------------------------------
    def _running(self, on: bool) -> None:
        ws = self.ws
        self._active = on
        ws.train_progress.setVisible(on)
        ws.train_stop.setVisible(on)
        ws.train_btn.setEnabled(not on and ws.session is not None)
        ws.train_mode.setEnabled(not on)
        # the bar and Stop take their place: the row (and the splitter) keeps its width
        ws.train_btn.setVisible(not on)
        ws.train_mode.setVisible(not on)
        if on:
            ws.use_model_btn.setVisible(False)
            ws.train_progress.setRange(0, 0)
            ws.train_progress.setFormat("")

    def _said(self, text: str, error: bool = False) -> None:
        self.ws.train_status.setVisible(True)
        self.ws.train_status.setText(text)
        self.ws.train_status.setStyleSheet("color: #b00020;" if error else "")
        self.ws.say(text)

    def _progress(self, done, total, text) -> None:
        bar = self.ws.train_progress
        if total:
            bar.setRange(0, int(total))
            bar.setValue(int(done))
        else:
            bar.setRange(0, 0)
        bar.setFormat("%p %" if total else "")
        if text:
            self.ws.train_status.setText(display(text, 120))

    def _epoch(self, s) -> None:
        self.ws.train_status.setText(f"Epoch {s.epoch}/{s.epochs}: validation accuracy {s.val_acc:.1%}")

    def _trained(self, t: label_jobs.Trained) -> None:
        self._running(False)
        self.saved = t.path
        on = f" on {t.val_images} held-back image{'s' if t.val_images != 1 else ''}" if t.val_images else ""
        acc = f" \u2014 validation accuracy {t.accuracy:.0%}{on}" if t.accuracy is not None else ""
        self._said(f"Saved \u201c{display(t.name, 60)}\u201d ({t.mode}, {t.seconds:.0f} s){acc}. "
                   "It is in the model picker.")
        self.ws.use_model_btn.setVisible(True)
        self.ws.model_trained.emit(t.path)

    def _failed(self, exc) -> None:
        self._running(False)
        self._said(f"Training failed: {exc}", error=True)

    def _cancelled(self) -> None:
        if self._active:
            self._running(False)
            self._said("Training stopped; nothing was saved")
