"""Model labels and messages are shown as text in Qt, never rendered as HTML: the video timeline's
legend (an injected <img> showed a local image), the prediction panel's headline, error labels."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt

from cnndesk.core.predict.classifier import Prediction
from cnndesk.core.predict.video import Segment, VideoResult

EVIL = "<img src='/etc/secret.png'><b>tench</b>"


def test_timeline_legend_and_error_are_plain_text(qtbot, tmp_path):
    from cnndesk.qt.camera.timeline import TimelineBar

    bar = TimelineBar(runner=None, classifier_getter=lambda: None)
    qtbot.addWidget(bar)
    bar.resize(640, 90)
    result = VideoResult("v.mp4", [Segment(0, 2, EVIL, 0.9), Segment(2, 4, "goldfish", 0.8)], 4.0,
                         error="<a href='x'>damaged</a> at 0:04")
    bar._done(result)
    assert bar.info.textFormat() == Qt.TextFormat.PlainText
    assert bar.info.text() == result.error
    assert EVIL in bar.legend_view.text() and "goldfish" in bar.legend_view.text()
    bar.show()
    bar.grab().save(os.path.join(tmp_path, "legend.png"))
    if os.environ.get("CNNDESK_SHOTS"):
        bar.grab().save(os.path.join(os.environ["CNNDESK_SHOTS"], "timeline-legend.png"))


def test_prediction_headline_and_errors_are_plain_text(qtbot):
    from cnndesk.qt.widgets.prediction_panel import PredictionPanel

    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.show_prediction("x.jpg", Prediction((EVIL, "b"), (0.9, 0.1), (0, 1)))
    assert panel.headline.text() == EVIL and panel.headline.textFormat() == Qt.TextFormat.PlainText
    panel.show_error("x.jpg", "<b>not an image</b>")
    assert panel.detail.text() == "<b>not an image</b>" and "d93025" in panel.detail.styleSheet()
    panel.show_pending("y.jpg")
    assert panel.detail.styleSheet() == ""


def test_status_bar_messages_are_plain_text(qtbot, tmp_path):
    """The status bar shows the Label tab's and Edit ▸ Undo's messages, which name files and
    folders: before, an undo that skipped a file named <img src=...>.png rendered it as HTML."""
    from cnndesk.qt.widgets.status_message import FadingMessage

    msg = FadingMessage()
    qtbot.addWidget(msg)
    text = f"Undid “Move 6 files into ds”: 5 files put back; 1 left as they are: {EVIL}.png is no longer there."
    msg.show_message(text)
    assert msg.textFormat() == Qt.TextFormat.PlainText and msg.text() == text
