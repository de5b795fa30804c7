from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
)

from cnndesk.core.runtime.devices import DEVICE_NAMES, DEVICES
from cnndesk.qt.settings import Settings
from cnndesk.qt.widgets.plain_label import PlainLabel


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, parent=None, model=None):
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
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(note)
        lay.addWidget(buttons)

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
