from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
)

from cnndesk.qt.settings import Settings


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
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
        for text, value in (("Automatic (GPU if available)", "auto"), ("CPU", "cpu"), ("NVIDIA GPU (CUDA)", "cuda"), ("Apple GPU (MPS)", "mps")):
            self.device.addItem(text, value)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.device)))
        form = QFormLayout()
        form.addRow("Classes shown:", self.top_k)
        form.addRow("\"Not sure\" below:", self.threshold)
        form.addRow("Run the model on:", self.device)
        note = QLabel("Changing the device reloads the model.")
        note.setEnabled(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(note)
        lay.addWidget(buttons)

    def accept(self):
        self.settings.set("top_k", self.top_k.value())
        self.settings.set("threshold", self.threshold.value())
        self.settings.set("device", self.device.currentData())
        super().accept()
