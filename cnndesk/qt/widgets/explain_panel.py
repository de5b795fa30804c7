"""The "Inside the CNN" tab: where the network looked (Grad-CAM or occlusion, any class, opacity,
save as PNG), the network as a list of stages with their feature maps for this image, the first
layer's learned filters, and an architecture summary. Everything is computed on workers; changing
the image, class or layer cancels the stale job."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnndesk.qt import file_dialogs, jobs
from cnndesk.qt.widgets.flow_row import FlowRow, together
from cnndesk.qt.widgets.image_view import ImageView
from cnndesk.qt.widgets.plain_label import PlainLabel
from cnndesk.qt.workers import JobKind


class TileGrid(QWidget):
    """Small images in a grid; click one to enlarge it."""

    clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tiles: list[QImage] = []
        self.captions: list[str] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 160)

    def set_tiles(self, tiles: list[QImage], captions: list[str] | None = None) -> None:
        self.tiles = tiles
        self.captions = captions or [""] * len(tiles)
        self.update()

    def _layout(self):
        n = max(1, len(self.tiles))
        cols = max(1, int(np.ceil(np.sqrt(n * self.width() / max(1, self.height())))))
        rows = int(np.ceil(n / cols))
        size = min(self.width() / cols, self.height() / rows)
        return cols, size

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
        if not self.tiles:
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Choose an image and a stage")
            return
        cols, size = self._layout()
        for i, img in enumerate(self.tiles):
            r, c = divmod(i, cols)
            rect = QRectF(c * size + 1, r * size + 1, size - 2, size - 2)
            p.drawImage(rect, img)

    def mousePressEvent(self, event):
        if not self.tiles:
            return
        cols, size = self._layout()
        i = int(event.position().y() // size) * cols + int(event.position().x() // size)
        if 0 <= i < len(self.tiles):
            self.clicked.emit(i)


class ExplainPanel(QWidget):
    status = Signal(str)

    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.spec = None
        self.classifier = None
        self.explainer = None
        self.item = None
        self.result: jobs.Heatmap | None = None
        self.stages = []

        self.title = PlainLabel("Choose an image in the gallery to see where the network looks.")
        f = self.title.font()
        f.setBold(True)
        f.setPointSizeF(f.pointSizeF() * 1.15)
        self.title.setFont(f)
        self.title.setWordWrap(True)
        self.method = QComboBox()
        self.method.addItem("Grad-CAM", "gradcam")
        self.method.addItem("Occlusion", "occlusion")
        self.method.setToolTip("Grad-CAM: gradients of the class score at the last convolutional stage.\n"
                               "Occlusion: how much the score drops when each part is hidden (model-agnostic).")
        self.cls = QComboBox()
        self.cls.setMinimumWidth(140)
        self.cls.setToolTip("Which class to explain")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setMaximumWidth(160)
        self.opacity.setMinimumWidth(60)  # at 800 px wide (scale 2) it had shrunk to a dot
        self.opacity.setToolTip("Heatmap opacity")
        self.save_btn = QPushButton("Save PNG…")
        self.save_btn.clicked.connect(self.save_png)
        self.save_btn.setEnabled(False)
        top = FlowRow()  # wraps on a narrow window (1280x720 at 200 %) instead of widening the page
        top.addWidget(self.method)
        top.addWidget(together(QLabel("Class:"), self.cls))
        top.addWidget(together(QLabel("Opacity:"), self.opacity))
        top.addWidget(self.save_btn)
        self.view = ImageView()
        self.busy_label = PlainLabel()  # while a heatmap is computed (occlusion takes seconds): say so
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(160)
        busy = QHBoxLayout()
        busy.addWidget(self.busy_label, 1)
        busy.addWidget(self.busy)
        self._set_busy(False)

        self.layers = QListWidget()
        self.layers.currentRowChanged.connect(self._stage_chosen)
        self.caption = PlainLabel()
        self.caption.setWordWrap(True)
        self.maps = TileGrid()
        self.maps.clicked.connect(self._enlarge_map)
        layers_page = QWidget()
        lp = QVBoxLayout(layers_page)
        lp.addWidget(self.layers, 2)
        lp.addWidget(self.caption)
        lp.addWidget(self.maps, 3)
        self.filters = TileGrid()
        self.filters_caption = PlainLabel()
        self.filters_caption.setWordWrap(True)
        filters_page = QWidget()
        fp = QVBoxLayout(filters_page)
        fp.addWidget(self.filters_caption)
        fp.addWidget(self.filters, 1)
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        fnt = self.summary.font()
        fnt.setFamily("monospace")
        self.summary.setFont(fnt)
        export = QPushButton("Export as text…")
        export.clicked.connect(self.export_summary)
        summary_page = QWidget()
        sp = QVBoxLayout(summary_page)
        sp.addWidget(self.summary, 1)
        sp.addWidget(export, 0, Qt.AlignmentFlag.AlignRight)
        self.side = QTabWidget()
        self.side.addTab(layers_page, "Layers")
        self.side.addTab(filters_page, "Filters")
        self.side.addTab(summary_page, "Summary")

        split = QSplitter()
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addLayout(top)
        ll.addLayout(busy)
        ll.addWidget(self.view, 1)
        split.addWidget(left)
        split.addWidget(self.side)
        split.setSizes([640, 460])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 12, 12, 12)
        lay.addWidget(self.title)
        lay.addWidget(split, 1)

        self.method.currentIndexChanged.connect(lambda _: self.compute_heat())
        self.cls.currentIndexChanged.connect(lambda _: self.compute_heat())
        self.opacity.valueChanged.connect(self._reblend)

    # -- inputs -----------------------------------------------------------------------------------
    def set_model(self, spec, classifier) -> None:
        changed = spec != self.spec
        self.spec, self.classifier = spec, classifier
        if changed:
            self.explainer = None
            self.layers.clear()
            self.maps.set_tiles([])
            self.filters.set_tiles([])
            self.summary.clear()
            self._fill_classes(None)
        if self.isVisible():
            self.ensure_explainer()

    def set_item(self, item) -> None:
        """``item``: the gallery's ImageResult (a file path or a pasted/snapshot image)."""
        self.item = item
        if item is None:
            return
        self.title.setText(f"Inside the CNN — {item.name}")
        self._fill_classes(item.prediction)
        self.ensure_explainer()

    def _fill_classes(self, prediction) -> None:
        self.cls.blockSignals(True)
        self.cls.clear()
        if prediction is not None:
            for label, score, idx in zip(prediction.labels, prediction.scores, prediction.indices, strict=True):
                self.cls.addItem(f"{label} ({score:.0%})", idx)
        elif self.spec is not None:
            self.cls.addItem("the top class", None)
        if self.spec is not None:
            known = {self.cls.itemData(i) for i in range(self.cls.count())}
            for i, label in enumerate(self.spec.labels):
                if i not in known:
                    self.cls.addItem(label, i)
        self.cls.blockSignals(False)

    def _source(self):
        if self.item is None:
            return None
        return self.item.source if self.item.source is not None else self.item.path

    # -- jobs -------------------------------------------------------------------------------------
    def ensure_explainer(self) -> None:
        if self.spec is None:
            return
        from cnndesk.core.common import system

        if not system.has_torch():  # lite build: occlusion only
            self._lite_mode(system.FULL_ONLY)
            self.compute_heat()
            return
        if self.explainer is None:
            if not self.runner.running(JobKind.EXPLAINER):
                self.status.emit("Loading PyTorch to look inside the network…")
                # in the panel too (the status bar message fades; the first load takes up to a minute)
                self.caption.setText("Loading PyTorch to look inside the network… The first time can take a minute.")
                self.runner.start(JobKind.EXPLAINER, jobs.load_explainer, self.spec, on_result=self._explainer_ready,
                                  on_error=lambda exc: self.status.emit(str(exc)))
            return
        self.compute_heat()

    def _explainer_ready(self, result: jobs.ExplainerReady) -> None:
        ex, stages, filters, summary = result.explainer, result.stages, result.filters, result.summary
        if ex.spec != self.spec:
            return
        self.explainer, self.stages = ex, stages
        self.layers.clear()
        for st in stages:
            shape = " × ".join(map(str, st.output_shape))
            item = QListWidgetItem(f"{st.name}  ·  {st.kind}  ·  {shape}  ·  {st.params:,} parameters")
            item.setToolTip(st.caption)
            self.layers.addItem(item)
        n = len(filters)
        self.filters.set_tiles(filters)
        self.filters_caption.setText(f"The {n} filters of the first convolution, as colour patches: each one looks for "
                                     "one small pattern of colour or edge in the image.")
        self.summary.setPlainText(summary)
        if self.caption.text().startswith("Loading PyTorch"):
            self.caption.setText("Pick a layer on the left to see what it computes.")
        self.status.emit("Ready to look inside the network")
        self.compute_heat()

    def _lite_mode(self, why: str) -> None:
        self.method.setCurrentIndex(1)
        self.method.model().item(0).setEnabled(False)
        self.method.setItemData(0, f"Grad-CAM {why}", Qt.ItemDataRole.ToolTipRole)
        self.caption.setText(f"The layer explorer {why}.")
        self.filters_caption.setText(f"The filters view {why}.")
        self.summary.setPlainText(f"The architecture summary {why}.")

    def compute_heat(self) -> None:
        src = self._source()
        method = self.method.currentData()
        if src is None or (self.explainer is None and method != "occlusion"):
            return
        if method == "occlusion" and self.classifier is None:
            return
        self.save_btn.setEnabled(False)
        self.result = None  # the last heatmap is not this one: it leaves the screen while the new one is made
        self.view.set_image(None)
        self._set_busy(True, f"Computing {self.method.currentText()} for “{self.cls.currentText()}”…"
                       + (" (each part of the image is hidden in turn: this takes a few seconds)"
                          if method == "occlusion" else ""))
        self.runner.start(JobKind.HEATMAP, jobs.heatmap, self.explainer, self.classifier, src, method,
                          self.cls.currentData(), self.opacity.value() / 100, on_result=self._heat_ready,
                          on_error=self._heat_failed)
        row = self.layers.currentRow()
        if row >= 0:
            self._stage_chosen(row)

    def _set_busy(self, on: bool, text: str = "") -> None:
        self.busy_label.setText(text)
        self.busy_label.setVisible(on)
        self.busy.setVisible(on)

    def _heat_failed(self, exc) -> None:
        self._set_busy(False)
        self.status.emit(str(exc))

    def _heat_ready(self, result: jobs.Heatmap) -> None:
        self._set_busy(False)
        self.result = result
        self.view.set_image(result.overlay)
        self.save_btn.setEnabled(True)
        label = self.spec.labels[result.index] if self.spec else str(result.index)
        self.status.emit(f"{self.method.currentText()} for “{label}”")

    def _reblend(self, value: int) -> None:
        if self.result is None:
            return
        self.runner.start(JobKind.OVERLAY, jobs.overlay, self.result.image, self.result.heat, value / 100,
                          on_result=self._reblended)

    def _reblended(self, qimage) -> None:
        if self.result is not None:
            self.result = replace(self.result, overlay=qimage)
            self.view.set_image(qimage)

    def _stage_chosen(self, row: int) -> None:
        if row < 0 or row >= len(self.stages):
            return
        st = self.stages[row]
        self.caption.setText(st.caption + f"  (output {' × '.join(map(str, st.output_shape))}; "
                             "most active channels first; click one to enlarge)")
        src = self._source()
        if src is not None and self.explainer is not None:
            self.runner.start(JobKind.FEATURE_MAPS, jobs.feature_maps, self.explainer, src, st.name, on_result=self._maps_ready,
                              on_error=lambda exc: self.status.emit(str(exc)))

    def _maps_ready(self, result: jobs.FeatureMaps) -> None:
        stage, tiles, channels = result.stage, result.maps, result.order
        self.maps.set_tiles(tiles, [f"channel {c}" for c in channels])
        self.maps_stage = stage

    def _enlarge_map(self, i: int) -> None:
        dlg = QDialog(self)
        dlg.setWindowTitle(f"{getattr(self, 'maps_stage', '')} — {self.maps.captions[i]}")
        v = ImageView()
        v.set_image(self.maps.tiles[i].scaled(QSize(448, 448), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
        QVBoxLayout(dlg).addWidget(v)
        dlg.resize(480, 480)
        dlg.show()
        self.enlarged = dlg

    # -- saving -----------------------------------------------------------------------------------
    def save_png(self) -> None:
        if self.result is None:
            return
        name = Path(self.item.path).stem if self.item and self.item.path else "image"
        start = os.path.join(str(Path.home()), f"{name}-{self.method.currentData()}.png")
        path = file_dialogs.save_file(self, "Save heatmap", start, "PNG (*.png)")
        if path:
            self.save_to(path)

    def save_to(self, path: str) -> bool:
        from cnndesk.qt.imaging import save_qimage

        ok = self.result is not None and save_qimage(self.result.overlay, path, "PNG")  # the safe writer
        self.status.emit(f"Saved {path}" if ok else f"Could not save {path}")
        return bool(ok)

    def export_summary(self) -> None:
        path = file_dialogs.save_file(self, "Export architecture summary", str(Path.home() / "architecture.txt"), "Text (*.txt)")
        if path:
            from cnndesk.core.common.safeio import safe_write

            try:
                with safe_write(path, "w") as fh:
                    fh.write(self.summary.toPlainText() + "\n")
            except OSError as exc:
                self.status.emit(f"Could not save {path}: {exc.strerror or exc}")
                return
            self.status.emit(f"Saved {path}")
