"""The training dialog's Advanced box. Every value starts from ``TrainConfig``'s defaults — the one
source of training defaults, shared with the command line — and "default"/"automatic" leave the
setting to the core (chosen from the data in full mode)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnndesk.core.models.registry import list_models, user_model_specs
from cnndesk.core.training.config import TrainConfig

DEFAULTS = TrainConfig()
FIELDS = ("base", "init_from", "epochs", "lr", "batch", "blocks", "size", "budget", "val_split",
          "aug_crop", "aug_flip", "aug_color")


class TrainOptions(QGroupBox):
    """Checkable "Advanced" box; collapsed until checked. ``changed`` when a full-mode choice changes."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__("Advanced", parent)
        self.setCheckable(True)
        self.setChecked(False)
        self.base = QComboBox()
        for spec in list_models(include_user=False):
            self.base.addItem(spec.title, spec.name)
        self.base.setCurrentIndex(max(0, self.base.findData(DEFAULTS.base)))
        self.init_from = QComboBox()
        self.init_from.addItem("— a fresh model —", None)
        for spec in user_model_specs():
            self.init_from.addItem(f"continue “{spec.title}”", spec.weights.path)
        self.init_from.setToolTip("Continue from one of your models, e.g. after adding images or classes")
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 2000)
        self.epochs.setSpecialValueText("default")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(0, 1)
        self.lr.setSingleStep(0.0001)
        self.lr.setSpecialValueText("default")
        self.batch = QSpinBox()
        self.batch.setRange(1, 512)
        self.batch.setValue(DEFAULTS.batch_size)
        self.blocks = QSpinBox()
        self.blocks.setRange(-1, 20)
        self.blocks.setValue(-1)
        self.blocks.setSpecialValueText("automatic")
        self.blocks.setToolTip("Full mode: how many of the last blocks to train (0 = the whole network; "
                               "automatic: the last two, so the earlier layers keep what tells your images "
                               "from unrelated ones)")
        self.size = QSpinBox()
        self.size.setRange(0, 512)
        self.size.setSingleStep(32)
        self.size.setValue(0)
        self.size.setSpecialValueText("automatic")
        self.size.setToolTip("Full mode: training resolution (automatic: the network's own 224 px, where its pretrained layers "
                             "tell unknown images apart best; from your images' sizes when the whole network is trained)")
        self.budget = QSpinBox()
        self.budget.setRange(0, 24 * 3600)
        self.budget.setSingleStep(30)
        self.budget.setValue(int(DEFAULTS.time_budget_s))
        self.budget.setSuffix(" s")
        self.budget.setSpecialValueText("no limit")
        self.budget.setToolTip("Full mode with the default epochs: the first epoch is timed and as many epochs "
                               "as fit this time are run (early stopping may end sooner)")
        self.val_split = QSpinBox()
        self.val_split.setRange(5, 50)
        self.val_split.setValue(round(DEFAULTS.val_split * 100))
        self.val_split.setSuffix(" %")
        self.aug_crop = QCheckBox("random crops")
        self.aug_flip = QCheckBox("mirroring")
        self.aug_color = QCheckBox("colour changes")
        self.aug_crop.setChecked(DEFAULTS.augment_crop)
        self.aug_flip.setChecked(DEFAULTS.augment_flip)
        self.aug_color.setChecked(DEFAULTS.augment_color)
        self.aug_flip.setToolTip("Off by default: mirroring changes the meaning of text, digits and arrows")
        inner = QWidget()
        QVBoxLayout(self).addWidget(inner)
        self.toggled.connect(inner.setVisible)  # collapsed until asked for
        inner.setVisible(False)
        form = QFormLayout(inner)
        form.setContentsMargins(0, 0, 0, 0)
        for label, w in (("Start from:", self.base), ("Or continue:", self.init_from), ("Epochs:", self.epochs),
                         ("Learning rate:", self.lr), ("Batch size:", self.batch),
                         ("Trained blocks (full):", self.blocks), ("Image size (full):", self.size),
                         ("Time budget (full):", self.budget), ("Validation share:", self.val_split)):
            form.addRow(label, w)
        aug = QHBoxLayout()
        for b in (self.aug_crop, self.aug_flip, self.aug_color):
            aug.addWidget(b)
        form.addRow("Augmentation (full):", aug)
        self.toggled.connect(lambda _on: self.changed.emit())
        for spin in (self.blocks, self.size, self.budget, self.epochs):
            spin.valueChanged.connect(lambda _v: self.changed.emit())

    def config(self, full: bool, device: str) -> TrainConfig:
        """The settings as a TrainConfig: the Advanced values when the box is checked, else the defaults
        (the validation share and the augmentation switches always count)."""
        adv = self.isChecked()
        return TrainConfig(
            mode="full" if full else "quick",
            base=self.base.currentData() if adv else DEFAULTS.base,
            epochs=(self.epochs.value() or None) if adv else None,
            lr=(self.lr.value() or None) if adv else None,
            batch_size=self.batch.value() if adv else DEFAULTS.batch_size,
            val_split=self.val_split.value() / 100,
            unfrozen_blocks=self.blocks.value() if adv and self.blocks.value() >= 0 else None,
            image_size=(self.size.value() or None) if adv else None,
            time_budget_s=float(self.budget.value()) if adv else DEFAULTS.time_budget_s,
            augment_crop=self.aug_crop.isChecked(),
            augment_flip=self.aug_flip.isChecked(),
            augment_color=self.aug_color.isChecked(),
            device=device,
            init_from=self.init_from.currentData() if adv else None,
        )
