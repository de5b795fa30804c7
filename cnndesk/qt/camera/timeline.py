"""The video timeline under the Camera tab's player: "Analyse whole video" classifies the file on a
worker (progress, cancel) into labelled segments, drawn as a strip coloured by label. Click the
strip to seek, hover for the label and confidence; export the segments (CSV/JSON) or one clip per
label."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from cnndesk.core.predict import results as results_io
from cnndesk.core.predict.video import VideoResult, fmt_time
from cnndesk.qt import file_dialogs, jobs
from cnndesk.qt.workers import JobKind

PALETTE = ["#4f8ff7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948",
           "#ff9da7", "#9c755f", "#bab0ac"]
JOB = JobKind.VIDEO_ANALYSIS


def label_colours(result: VideoResult | None) -> dict[str, QColor]:
    """One colour per label, the labels covering the most time first (stable for a result)."""
    if result is None:
        return {}
    order = [d["label"] for d in result.as_dict()["predictions"]]
    top = {s.label for s in result.segments}
    order += sorted(top - set(order))
    return {lab: QColor(PALETTE[i % len(PALETTE)]) for i, lab in enumerate(order)}


class TimelineStrip(QWidget):
    """Segments as coloured blocks over the video's duration, a playhead, analysis progress."""

    seekRequested = Signal("qlonglong")  # ms

    def __init__(self, parent=None):
        super().__init__(parent)
        self.result: VideoResult | None = None
        self.colours: dict[str, QColor] = {}
        self.duration_ms = 0
        self.position_ms = 0
        self.analysed_ms: int | None = None  # while analysing
        self.setMouseTracking(True)
        self.setMinimumHeight(30)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def sizeHint(self):
        return QSize(600, 30)

    def set_result(self, result: VideoResult | None) -> None:
        self.result = result
        self.colours = label_colours(result)
        if result is not None and not self.duration_ms:
            self.duration_ms = int(result.duration * 1000)
        self.update()

    def _span_ms(self) -> int:
        return max(self.duration_ms, int(self.result.duration * 1000) if self.result else 0, 1)

    def x_to_ms(self, x: float) -> int:
        return int(min(max(x / max(1, self.width()), 0.0), 1.0) * self._span_ms())

    def segment_at(self, x: float):
        if self.result is None:
            return None
        t = self.x_to_ms(x) / 1000
        for s in self.result.segments:
            if s.start <= t < s.end:
                return s
        return None

    def paintEvent(self, event):
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(self.palette().color(self.palette().ColorRole.AlternateBase).darker(115))
        p.drawRoundedRect(r, 4, 4)
        span = self._span_ms() / 1000
        w = r.width()
        if self.result is not None:
            fm = p.fontMetrics()
            for s in self.result.segments:
                x0, x1 = r.left() + w * s.start / span, r.left() + w * s.end / span
                c = QColor(self.colours.get(s.label, QColor("#888")))
                c.setAlphaF(0.55 + 0.45 * min(1.0, s.score * 1.5))
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(c)
                block = QRectF(x0, r.top(), max(1.0, x1 - x0), r.height())
                p.drawRect(block)
                if block.width() > 40:  # the label, where it fits
                    p.setPen(QColor(255, 255, 255))
                    text = fm.elidedText(s.label, Qt.TextElideMode.ElideRight, int(block.width() - 10))
                    p.drawText(block.adjusted(5, 0, -5, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
                p.setPen(QPen(QColor(0, 0, 0, 90), 1))
                p.drawLine(QPointF(x0, r.top()), QPointF(x0, r.bottom()))
            p.setPen(Qt.PenStyle.NoPen)
            if self.result.stopped_at is not None:  # the damaged rest of the file
                x = r.left() + w * self.result.stopped_at / span
                p.setBrush(QColor(120, 120, 120, 90))
                p.drawRect(QRectF(x, r.top(), r.right() - x, r.height()))
        elif self.analysed_ms is not None:
            p.setBrush(QColor(79, 143, 247, 90))
            p.drawRect(QRectF(r.left(), r.top(), w * self.analysed_ms / 1000 / span, r.height()))
        if self.duration_ms or self.result is not None:
            x = r.left() + w * min(1.0, self.position_ms / 1000 / span)
            p.setPen(QPen(QColor(255, 255, 255), 2))
            p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
            p.setPen(QPen(QColor(0, 0, 0, 160), 1))
            p.drawLine(QPointF(x + 1.5, r.top()), QPointF(x + 1.5, r.bottom()))

    def mousePressEvent(self, event):
        if event.button() == Qt.MouseButton.LeftButton and (self.duration_ms or self.result is not None):
            self.seekRequested.emit(self.x_to_ms(event.position().x()))
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event):
        x = event.position().x()
        seg = self.segment_at(x)
        text = (f"{seg.label} · {seg.score:.0%} confidence\n{fmt_time(seg.start)} – {fmt_time(seg.end)}"
                if seg else (f"{fmt_time(self.x_to_ms(x) / 1000)}" if self.duration_ms else ""))
        self.setToolTip(text)
        if text:
            QToolTip.showText(event.globalPosition().toPoint(), text, self)
        super().mouseMoveEvent(event)


class Legend(QWidget):
    """A colour swatch and the label for each of the first labels, painted as plain text (a label
    is the model's text: it is never interpreted as HTML, whatever it holds)."""

    SWATCH = 10

    def __init__(self, parent=None):
        super().__init__(parent)
        self.items: list[tuple[str, QColor]] = []
        self.more = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_items(self, items: list[tuple[str, QColor]], more: int = 0) -> None:
        self.items, self.more = items, more
        self.setToolTip(self.text())
        self.updateGeometry()
        self.update()

    def text(self) -> str:
        return "  ".join(lab for lab, _ in self.items) + (f"  +{self.more} more" if self.more > 0 else "")

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, self.fontMetrics().height() + 4 if self.items else 0)

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        fm = self.fontMetrics()
        x, h = 0, self.height()
        for lab, colour in self.items:
            p.fillRect(QRectF(x, (h - self.SWATCH) / 2, self.SWATCH, self.SWATCH), colour)
            x += self.SWATCH + 4
            shown = fm.elidedText(lab.replace("\n", " "), Qt.TextElideMode.ElideRight, 160)
            p.setPen(self.palette().windowText().color())
            p.drawText(QRectF(x, 0, fm.horizontalAdvance(shown) + 2, h), Qt.AlignmentFlag.AlignVCenter, shown)
            x += fm.horizontalAdvance(shown) + 14
        if self.more > 0:
            p.drawText(QRectF(x, 0, max(0, self.width() - x), h), Qt.AlignmentFlag.AlignVCenter, f"+{self.more} more")
        p.end()


class TimelineBar(QWidget):
    """The strip plus its controls: analyse/cancel, progress text, legend and exports."""

    seekRequested = Signal("qlonglong")
    status = Signal(str)

    def __init__(self, runner, classifier_getter, parent=None, every: float = 0.5):
        super().__init__(parent)
        self.runner = runner
        self.classifier = classifier_getter
        self.every = every
        self.path: str | None = None
        self.result: VideoResult | None = None
        self.legend = ""
        self.clips_written: list = []
        self.strip = TimelineStrip()
        self.strip.seekRequested.connect(self.seekRequested)
        self.analyse_btn = QPushButton("Analyse whole video")
        self.analyse_btn.setToolTip("Classify the whole file into labelled segments (runs in the background)")
        self.analyse_btn.clicked.connect(self.toggle)
        self.export_btn = QToolButton()
        self.export_btn.setText("Export")
        self.export_btn.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_btn)
        menu.addAction("Segments as CSV…", lambda: self.choose_export("csv"))
        menu.addAction("Segments as JSON…", lambda: self.choose_export("json"))
        menu.addAction("One clip per label…", self.choose_clip_folder)
        self.export_btn.setMenu(menu)
        self.export_btn.setEnabled(False)
        self.info = QLabel("")
        self.info.setTextFormat(Qt.TextFormat.PlainText)  # file names and errors: never HTML
        self.info.setWordWrap(True)
        self.legend_view = Legend()
        texts = QVBoxLayout()
        texts.setContentsMargins(0, 0, 0, 0)
        texts.setSpacing(2)
        texts.addWidget(self.legend_view)
        texts.addWidget(self.info)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.analyse_btn)
        row.addLayout(texts, 1)
        row.addWidget(self.export_btn)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self.strip)
        lay.addLayout(row)

    # -- state from the player ------------------------------------------------------------------
    def set_video(self, path: str) -> None:
        if path != self.path:
            self.cancel()
            self.path = path
            self.result = None
            self.strip.duration_ms = 0
            self.strip.set_result(None)
            self.export_btn.setEnabled(False)
            self.legend_view.set_items([])
            self.info.setText("Analyse the whole file to see what is where.")

    def set_duration(self, ms: int) -> None:
        self.strip.duration_ms = int(ms)
        self.strip.update()

    def set_position(self, ms: int) -> None:
        self.strip.position_ms = int(ms)
        self.strip.update()

    @property
    def busy(self) -> bool:
        return self.runner.running(JOB)

    # -- analysis -------------------------------------------------------------------------------
    def toggle(self) -> None:
        if self.busy:
            self.cancel()
        else:
            self.analyse()

    def analyse(self) -> None:
        clf = self.classifier()
        if self.path is None:
            self.status.emit("Open a video file first")
            return
        if clf is None:
            self.status.emit("The model is still loading")
            return
        self.result = None
        self.strip.set_result(None)
        self.strip.analysed_ms = 0
        self.export_btn.setEnabled(False)
        self.analyse_btn.setText("Cancel analysis")
        self.info.setText("Starting…")

        self.runner.start(JOB, jobs.classify_video, self.path, clf, self.every, scope="model", on_progress=self._progress,
                          on_result=self._done, on_error=self._failed, on_cancelled=self._cancelled)

    def cancel(self) -> None:
        if self.busy:
            self.runner.cancel(JOB)
            self._cancelled()

    def _progress(self, done, total, text) -> None:
        self.strip.analysed_ms = int(done)
        if total and not self.strip.duration_ms:
            self.strip.duration_ms = int(total)
        pct = f"{done / total:.0%} · " if total else ""
        self.info.setText(f"Analysing… {pct}{text}")
        self.strip.update()

    def _reset(self) -> None:
        self.analyse_btn.setText("Analyse whole video")
        self.strip.analysed_ms = None
        self.strip.update()

    def _cancelled(self) -> None:
        self._reset()
        if self.result is None:
            self.info.setText("Analysis cancelled.")

    def _failed(self, exc) -> None:
        message = str(exc)
        self._reset()
        self.info.setText(message)
        self.status.emit(message)

    def _done(self, result: VideoResult) -> None:
        self._reset()
        self.result = result
        self.strip.set_result(result)
        self.export_btn.setEnabled(bool(result.segments))
        self.legend_view.set_items(list(self.strip.colours.items())[:6], len(self.strip.colours) - 6)
        self.legend = result.error or ""  # shown under the legend, as plain text
        self.info.setText(self.legend)
        self.status.emit(f"{len(result.segments)} segments in {os.path.basename(result.path)}")

    # -- exports ----------------------------------------------------------------------------------
    def _default_dir(self) -> str:
        return str(Path(self.path).parent) if self.path else str(Path.home())

    def choose_export(self, fmt: str) -> None:
        if self.result is None:
            return
        start = os.path.join(self._default_dir(), f"{Path(self.result.path).stem}-segments.{fmt}")
        path = file_dialogs.save_file(self, f"Export segments as {fmt.upper()}", start, f"{fmt.upper()} (*.{fmt})")
        if path:
            self.export_segments(path, fmt)

    def export_segments(self, path: str, fmt: str) -> int:
        """Write the segments (CSV: one row per segment; JSON: the result object) atomically."""
        try:
            n = results_io.export([self.result.as_dict()], path, fmt, 1, segments=True)
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", f"Could not write {path}: {exc.strerror or exc}")
            return 0
        self.status.emit(f"Exported {len(self.result.segments)} segments to {path}")
        return n

    def choose_clip_folder(self) -> None:
        if self.result is None:
            return
        folder = file_dialogs.choose_folder(self, "Folder for one clip per label", self._default_dir())
        if folder:
            self.export_clips(folder)

    def export_clips(self, folder: str) -> None:
        result = self.result

        def done(paths):
            self.info.setText(self.legend)
            self.status.emit(f"Wrote {len(paths)} clips to {folder}")
            self.clips_written = paths

        self.info.setText("Writing clips…")
        self.runner.start(JobKind.VIDEO_CLIPS, jobs.export_clips, result.path, result.segments, folder, on_result=done, on_error=self._failed,
                          on_progress=lambda d, t, m: self.info.setText(f"{self.legend}\n{m}".strip()))
