"""Ask where and how to sort, then show the plan's summary before anything moves."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
)

from cnndesk.qt import file_dialogs


class SortDialog(QDialog):
    def __init__(self, start_folder: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Sort into folders")
        self.dest = QLineEdit(start_folder)
        browse = QPushButton("C&hoose…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.dest, 1)
        row.addWidget(browse)
        # mnemonics (Alt+letter) on every control: Alt+M chose "Move", it no longer types an "m"
        self.copy = QRadioButton("Co&py files (originals stay)")
        self.move = QRadioButton("&Move files")
        self.copy.setChecked(True)
        self.use_threshold = QCheckBox("&Only when confident; the rest go to _unsure")
        self.threshold = QSpinBox()
        self.threshold.setRange(1, 99)
        self.threshold.setValue(50)
        self.threshold.setSuffix(" %")
        self.threshold.setEnabled(False)
        self.use_threshold.toggled.connect(self.threshold.setEnabled)
        form = QFormLayout()
        dest_label = QLabel("&Destination:")
        dest_label.setBuddy(self.dest)
        form.addRow(dest_label, row)
        form.addRow("", self.copy)
        form.addRow("", self.move)
        th = QHBoxLayout()
        th.addWidget(self.use_threshold)
        th.addWidget(self.threshold)
        th.addStretch(1)
        form.addRow("", th)
        note = QLabel("One subfolder per predicted label. Existing files are never overwritten: "
                      "a clash gets a new name. You will see a summary before anything happens.")
        note.setWordWrap(True)
        note.setEnabled(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Co&ntinue…")
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("&Cancel")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(note)
        lay.addWidget(buttons)
        self.resize(560, 0)

    def _browse(self):
        d = file_dialogs.choose_folder(self, "Sort into", self.dest.text())
        if d:
            self.dest.setText(d)

    def values(self) -> tuple[str, str, float | None]:
        mode = "move" if self.move.isChecked() else "copy"
        t = self.threshold.value() / 100 if self.use_threshold.isChecked() else None
        return self.dest.text().strip(), mode, t
