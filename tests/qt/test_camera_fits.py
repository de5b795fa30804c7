"""The camera tab, playing a video with its timeline shown, fits a 1600×1000 screen at
QT_SCALE_FACTOR=2 (800×500 logical px; about 380 px are left below the menu, toolbar, tabs and
status bar). Seen under Xvfb: the preview's 240 px minimum pushed the recording row and the status
bar off the window."""

from cnndesk.qt.camera.panel import CameraPanel
from cnndesk.qt.settings import Settings
from cnndesk.qt.workers import JobRunner


def test_camera_tab_with_timeline_fits_800x500(qtbot):
    runner = JobRunner()
    panel = CameraPanel(Settings(), runner)
    qtbot.addWidget(panel)
    panel.pages.setCurrentWidget(panel.view)  # a video is open: preview, play bar, timeline
    panel.video_bar.show()
    panel.timeline.show()
    panel.show()
    size = panel.minimumSizeHint()
    assert size.height() <= 380, size
    assert size.width() <= 800, size
    panel.shutdown()
    runner.drain()
