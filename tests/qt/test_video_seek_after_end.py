"""A video that has played to its end: clicking the timeline shows the frame there (not the last
frame with a stale "0 fps" overlay), and Play goes on from there instead of from 0:00."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from videos import make_scene_clip  # noqa: E402


@pytest.fixture
def panel(qtbot):
    from cnndesk.qt.camera.panel import CameraPanel
    from cnndesk.qt.settings import Settings
    from cnndesk.qt.workers import JobRunner

    runner = JobRunner()
    p = CameraPanel(Settings(), runner)
    qtbot.addWidget(p)
    p.resize(800, 600)
    p.show()
    yield p
    p.shutdown()
    runner.drain()


def _mean_colour(image) -> np.ndarray:
    from cnndesk.qt.imaging import qimage_to_rgb_array

    return qimage_to_rgb_array(image).reshape(-1, 3).mean(axis=0)


def test_seeking_after_the_end_shows_that_frame_and_play_goes_on_from_there(qtbot, panel, tmp_path):
    clip = make_scene_clip(tmp_path / "two.mp4", ["coffee", "rocket"], seconds=1.0, fps=15)
    panel.open_video(str(clip))
    qtbot.waitUntil(lambda: panel.source.state == "ended", timeout=30_000)
    last = panel.source.latest()
    seq_at_end = panel.source.take_latest()[1]
    assert last is not None
    panel.timeline.seekRequested.emit(400)  # a click on the strip, 0.4 s in: the coffee scene
    qtbot.waitUntil(lambda: panel.source.take_latest()[1] > seq_at_end, timeout=10_000)
    shown = panel.view.image
    assert shown is not None and shown.cacheKey() != last.cacheKey()
    assert np.abs(_mean_colour(shown) - _mean_colour(last)).max() > 5  # another scene, not the last frame
    assert panel.source.state == "paused" and panel.play_btn.text() == "Play"
    assert panel.seek.value() == pytest.approx(400, abs=100)
    panel.view.grab().save(str(tmp_path / "after-seek.png"))
    assert "fps" not in panel.view.status_text()  # a still frame: no "0 fps"
    positions = []
    panel.source.positionChanged.connect(positions.append)
    panel.play_btn.click()
    qtbot.waitUntil(lambda: len(positions) >= 2, timeout=10_000)
    assert min(positions) >= 300, positions  # on from 0.4 s, not from 0:00
