from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnndesk.core.runtime.devices import DEVICE_NAMES, DEVICES
from cnndesk.qt import jobs
from cnndesk.qt.screen_fit import fit_to_screen, scrolling
from cnndesk.qt.settings import Settings
from cnndesk.qt.widgets.plain_label import PlainLabel
from cnndesk.qt.workers import JobKind, JobRunner


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, parent=None, model=None, runner: JobRunner | None = None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.model = model if model is not None and getattr(model, "novelty", None) is not None else None
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 20)
        self.top_k.setValue(settings.top_k)
        self.top_k.setToolTip("How many classes to show per image")
        self.threshold = QSpinBox()
        self.threshold.setRange(0, 100)
        self.threshold.setSuffix(" %")
        self.threshold.setValue(round(settings.threshold * 100))
        self.threshold.setToolTip("Below this confidence the verdict says \"Not sure\" instead of forcing a choice")
        self.device = QComboBox()
        for value in DEVICES:
            self.device.addItem(DEVICE_NAMES[value], value)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.device)))
        form = QFormLayout()
        form.addRow("Classes shown:", self.top_k)
        form.addRow("\"Not sure\" below:", self.threshold)
        form.addRow("Run the model on:", self.device)
        # per user model: how readily "Not one of my classes" is said
        self.flag_rate = QDoubleSpinBox()
        self.flag_rate.setRange(0, 50)
        self.flag_rate.setDecimals(1)
        self.flag_rate.setSingleStep(1)
        self.flag_rate.setSuffix(" % of its own images")
        self.flag_rate.setSpecialValueText("never")
        self.flag_note = PlainLabel()
        self.flag_note.setEnabled(False)
        self.flag_note.setWordWrap(True)
        if self.model is not None:
            self.flag_rate.setValue(settings.novelty_rate(self.model.spec.name))
            self.flag_rate.setToolTip("Images unlike anything the model learned from are called \"Not one of my "
                                      "classes\". Higher: more readily (also some of its own images); lower: "
                                      "more of the unrelated images pass as one of its classes.")
            self.flag_rate.valueChanged.connect(self._show_flag_threshold)
            self._show_flag_threshold()
        else:
            self.flag_rate.setEnabled(False)
            self.flag_note.setText("Only for models you trained: the built-in ImageNet models know 1000 "
                                   "classes and say \"Not sure\" instead.")
        form.addRow("\"Not one of my classes\":", self.flag_rate)
        form.addRow("", self.flag_note)
        note = QLabel("Changing the device reloads the model.")
        note.setEnabled(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        content = QWidget()  # scrolls above OK / Cancel on a small screen (1280x720 at 200 %: 304 px)
        cl = QVBoxLayout(content)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addLayout(form)
        cl.addWidget(note)
        cl.addWidget(self._cache_box(runner))
        lay = QVBoxLayout(self)
        lay.addWidget(scrolling(content), 1)
        lay.addWidget(buttons)
        hint = content.sizeHint()
        fit_to_screen(self, hint.width() + 40, hint.height() + buttons.sizeHint().height() + 40)

    # -- the on-disk caches: sizes and Clear, measured and cleared on a worker -----------------
    def _cache_box(self, runner: JobRunner | None) -> QGroupBox:
        from cnndesk.core.common import cache_budget

        if runner is None and isinstance(getattr(self.parent(), "runner", None), JobRunner):
            runner = self.parent().runner  # the main window's: drained when the app quits
        self._own_runner, self._closed = runner is None, False
        self.runner = runner or JobRunner(self)
        box = QGroupBox("Disk caches")
        grid = QGridLayout(box)
        self.cache_sizes: dict[str, QLabel] = {}
        self.cache_clear: dict[str, QPushButton] = {}
        for row, name in enumerate(cache_budget.CACHES):
            title = PlainLabel(cache_budget.TITLES[name])
            size = QLabel("measuring…")
            size.setMinimumWidth(80)
            clear = QPushButton("Clear")
            clear.setEnabled(False)
            clear.setToolTip(f"Remove the {name} cache (rebuilt when needed; models in use are kept)")
            clear.clicked.connect(lambda _=False, n=name: self.clear_cache(n))
            grid.addWidget(title, row, 0)
            grid.addWidget(size, row, 1)
            grid.addWidget(clear, row, 2)
            self.cache_sizes[name], self.cache_clear[name] = size, clear
        self.cache_note = PlainLabel("")
        self.cache_note.setEnabled(False)
        self.cache_note.setToolTip("Set CNNDESK_CACHE_LIMIT_MB to change the cap (0: no cap).")
        grid.addWidget(self.cache_note, len(cache_budget.CACHES), 0, 1, 3)
        self._start_cache_job(jobs.cache_sizes)
        return box

    def _start_cache_job(self, fn, *args) -> None:
        for b in self.cache_clear.values():
            b.setEnabled(False)
        self.runner.start(JobKind.CACHE, fn, *args, on_result=self._show_caches,
                          on_error=lambda exc: self.cache_note.setText(f"Could not read the caches: {exc}"))

    def clear_cache(self, name: str) -> None:
        self.cache_sizes[name].setText("clearing…")
        self._start_cache_job(jobs.clear_cache, name)

    def _show_caches(self, sizes: jobs.CacheSizes) -> None:
        from cnndesk.core.common.cache_budget import human_size

        if self._closed:
            return
        total = 0
        for c in sizes.caches:
            total += c.size
            self.cache_sizes[c.name].setText(human_size(c.size))
            self.cache_clear[c.name].setEnabled(c.entries > 0)
        cap = f"of the {human_size(sizes.limit)} cap" if sizes.limit else "(no cap)"
        text = f"{human_size(total)} in all {cap}; the least recently used go first."
        if sizes.cleared is not None and sizes.cleared.kept_in_use:
            text += f" {sizes.cleared.kept_in_use} in use kept."
        self.cache_note.setText(text)

    def done(self, r):
        self._closed = True
        if self._own_runner:
            self.runner.drain()
        else:
            self.runner.cancel(JobKind.CACHE)  # a clear in progress finishes; its answer is dropped
        super().done(r)

    def _show_flag_threshold(self):
        thr = self.model.novelty.threshold_for(self.flag_rate.value() / 100)
        name = self.model.spec.title
        self.flag_note.setText(f"{name}: never says it." if thr == float("inf") else
                               f"{name}: said when an image's novelty is above {thr:.2f} (default "
                               f"{self.model.novelty.threshold:.2f}, about 5 % of its own images).")

    def accept(self):
        if self.model is not None:
            self.settings.set_novelty_rate(self.model.spec.name, self.flag_rate.value())
        self.settings.set("top_k", self.top_k.value())
        self.settings.set("threshold", self.threshold.value())
        self.settings.set("device", self.device.currentData())
        super().accept()
