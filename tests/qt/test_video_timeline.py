"""The Camera tab's video timeline: analyse a generated clip on a worker, see the segments on the
strip, click to seek, hover for the label, cancel, export segments and clips."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from videos import make_scene_clip  # noqa: E402

SCENES = ["coffee", "rocket", "grace_hopper", "coffee"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_scene_clip(tmp_path_factory.mktemp("v") / "scenes.mp4", SCENES, seconds=2.0, fps=15)


def x_for(strip, seconds):
    return int(strip.width() * seconds / (strip._span_ms() / 1000))


def test_analyse_click_seek_hover_and_export(qtbot, window, clip, tmp_path):
    panel = window.camera_panel
    window.show_camera()
    panel.open_video(str(clip))
    bar = panel.timeline
    qtbot.waitUntil(lambda: bar.isVisible() and bar.strip.duration_ms > 7000, timeout=20_000)
    panel.source.pause()
    qtbot.mouseClick(bar.analyse_btn, Qt.MouseButton.LeftButton)
    assert bar.analyse_btn.text() == "Cancel analysis"
    qtbot.waitUntil(lambda: bar.result is not None, timeout=60_000)
    assert bar.analyse_btn.text() == "Analyse whole video"
    segs = bar.result.segments
    assert len(segs) == 4 and segs[0].label == segs[3].label != segs[1].label
    assert [round(s.start) for s in segs] == [0, 2, 4, 6]
    assert bar.export_btn.isEnabled() and segs[1].label in bar.legend_view.text()

    # hover: the label and confidence of the segment under the mouse
    strip = bar.strip
    pos = QPointF(x_for(strip, 3.0), strip.height() / 2)
    move = QMouseEvent(QMouseEvent.Type.MouseMove, pos, strip.mapToGlobal(pos), Qt.MouseButton.NoButton,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(strip, move)
    assert strip.toolTip().startswith(f"{segs[1].label} · ") and "% confidence" in strip.toolTip()

    # click: the player seeks there
    with qtbot.waitSignal(strip.seekRequested, timeout=2000) as sig:
        qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QPoint(x_for(strip, 5.0), strip.height() // 2))
    assert sig.args[0] == pytest.approx(5000, abs=100)
    qtbot.waitUntil(lambda: abs(panel.source.player.position() - 5000) < 300, timeout=10_000)

    # exports: CSV one row per segment, JSON the result object
    n = bar.export_segments(str(tmp_path / "s.csv"), "csv")
    rows = list(csv.DictReader(open(tmp_path / "s.csv", encoding="utf-8")))
    assert n == 1 and [r["label_1"] for r in rows] == [s.label for s in segs]
    bar.export_segments(str(tmp_path / "s.json"), "json")
    data = json.loads((tmp_path / "s.json").read_text())
    assert [s["label"] for s in data[0]["segments"]] == [s.label for s in segs]

    # one clip per label, in the background; an existing file is not replaced
    out = tmp_path / "clips"
    out.mkdir()
    existing = out / f"scenes_{segs[0].label}.mp4"
    existing.write_bytes(b"keep me")
    bar.export_clips(str(out))
    qtbot.waitUntil(lambda: len(bar.clips_written) == 3, timeout=60_000)
    assert existing.read_bytes() == b"keep me"
    import av

    with av.open(str(out / f"scenes_{segs[0].label} (1).mp4")) as c:  # two 2-s segments
        assert float(c.duration / 1e6) == pytest.approx(4.0, abs=0.2)

    panel.resize(900, 640)
    panel.grab().save(str(Path(__file__).resolve().parents[2] / "bench" / "out" / "camera-timeline.png"))


def test_cancel_analysis(qtbot, window, tmp_path):
    clip = make_scene_clip(tmp_path / "long.mkv", ["coffee", "rocket"] * 3, seconds=3.0, fps=15)
    panel = window.camera_panel
    window.show_camera()
    panel.open_video(str(clip))
    bar = panel.timeline
    qtbot.waitUntil(bar.isVisible, timeout=20_000)
    bar.analyse()
    assert bar.busy and bar.analyse_btn.text() == "Cancel analysis"
    qtbot.mouseClick(bar.analyse_btn, Qt.MouseButton.LeftButton)  # cancel at once (racing the worker)
    assert bar.info.text() == "Analysis cancelled." and bar.result is None
    assert bar.analyse_btn.text() == "Analyse whole video" and not bar.busy
    assert window.runner.pool.waitForDone(10_000)
    qtbot.wait(200)  # late signals of the cancelled job are dropped
    assert bar.result is None and bar.info.text() == "Analysis cancelled." and bar.strip.analysed_ms is None

    empty = tmp_path / "empty.mp4"  # a bad file: one line, the button comes back
    empty.write_bytes(b"")
    bar.set_video(str(empty))
    bar.analyse()
    qtbot.waitUntil(lambda: not bar.busy, timeout=10_000)
    assert bar.info.text() == "empty.mp4: the file is empty (0 bytes)"
    assert bar.analyse_btn.text() == "Analyse whole video" and not bar.export_btn.isEnabled()
