"""What a user expects to find: Help guide and shortcuts, recent files and folders, removing
gallery items, error tiles with the name, a pasted file path, windows that fit small screens."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest

from cnndesk.qt.item_models.gallery import ItemRole


def _items(win):
    return [win.gallery_model.index(i).data(ItemRole) for i in range(win.gallery_model.rowCount())]


def test_help_recent_paste_path_and_removing_from_the_gallery(qtbot, window, samples, tmp_path):
    dlg = window.show_help(1)
    keys = dlg.keys.toPlainText()
    assert "Ctrl+Z" in keys and "Undo" in keys and "Ctrl+T" in keys and "Train a Model" in keys
    assert "five minutes" in dlg.guide.toPlainText()
    dlg.close()

    # a path copied from a file manager, pasted as text
    mime = QMimeData()
    mime.setText(f'"{samples["cat"]}"\n')
    QGuiApplication.clipboard().setMimeData(mime)
    window.paste()
    qtbot.waitUntil(lambda: len(_items(window)) == 1 and _items(window)[0].prediction is not None, timeout=30_000)
    QGuiApplication.clipboard().setText("no such file, just words")
    window.paste()
    assert "not the path" in window.message.text()

    bad = tmp_path / "holiday photo with a long name.jpg"
    bad.write_bytes(b"broken")
    window.open_paths([str(samples["rocket"]), str(bad)])
    qtbot.waitUntil(lambda: len(_items(window)) == 3 and all(i.prediction or i.error for i in _items(window)), timeout=30_000)
    text = window.gallery_model.index(2).data()
    assert text.startswith("Can't read\n") and "holiday" in text and "name.jpg" in text

    recent = window.recent.paths()
    assert recent[0] == str(bad) and str(samples["cat"]) in recent
    window.recent.rebuild()
    assert [a.text() for a in window.recent.actions()][:2] == [bad.name, samples["rocket"].name]

    # Delete removes the selected photo from the gallery, never from disk
    window.gallery.setFocus()
    window.gallery.setCurrentIndex(window.gallery_model.index(2))
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    QTest.keyClick(window.gallery, Qt.Key.Key_Delete)
    assert len(_items(window)) == 2 and bad.exists()
    assert "Removed 1 photo" in window.message.text()


def test_windows_fit_a_small_screen(qtbot, window):
    """The Train dialog scrolls instead of needing 884 px; the main window fits the screen."""
    avail = window.screen().availableGeometry()
    dlg = window.show_training()
    dlg.advanced.setChecked(True)
    assert dlg.minimumSizeHint().height() < 500 and dlg.height() <= avail.height()
    assert window.frameGeometry().height() <= avail.height() + 1
    from PySide6.QtWidgets import QToolBar

    tb = window.findChild(QToolBar, "main-toolbar")
    assert tb.widgetForAction(tb.actions()[1]) is window.model_combo  # the picker leads the toolbar
    dlg.close()


def test_folder_thumbnails_are_bounded_and_come_back(qtbot, window, photo_folder):
    model = window.folder_panel.model
    model.max_thumbs = 3
    folder = photo_folder(8)
    window.open_paths([str(folder)])
    qtbot.waitUntil(lambda: not window.runner.running("folder") and model.rowCount() == 8, timeout=60_000)
    assert model.thumbs_cached() <= 3
    assert all(r.extra is None for r in model.rows)  # the rows keep no images of their own
    evicted = next(i for i in range(8) if i not in model._pixmaps)
    idx = model.index(evicted, 0)
    assert model.data(idx, Qt.ItemDataRole.DecorationRole) is None  # asks a worker…
    qtbot.waitUntil(lambda: model.data(idx, Qt.ItemDataRole.DecorationRole) is not None, timeout=30_000)  # …and gets it
    assert model.thumbs_cached() <= 3


VIDEO_SCRIPT = """
import sys, time
from cnndesk.qt.app import create_app
app = create_app()
from PySide6.QtCore import QUrl, QCoreApplication
from PySide6.QtMultimedia import QMediaPlayer, QVideoSink
p = QMediaPlayer(); s = QVideoSink(); p.setVideoSink(s)
frames = []
s.videoFrameChanged.connect(lambda f: frames.append(1))
p.setSource(QUrl.fromLocalFile(sys.argv[1])); p.play()
t = time.time()
while time.time() - t < 20 and len(frames) < 10:
    QCoreApplication.processEvents(); time.sleep(0.01)
print("frames", len(frames))
"""


def test_opening_a_video_prints_no_ffmpeg_chatter():
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "QT_LOGGING_RULES"}  # as a user starts it
    env.update(PYTHONPATH=str(repo), QT_QPA_PLATFORM="offscreen")
    r = subprocess.run([sys.executable, "-c", VIDEO_SCRIPT, str(repo / "resources" / "samples" / "selftest.mp4")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert "frames 10" in r.stdout, r.stderr[-1000:]
    noise = [line for line in r.stderr.splitlines() if "multimedia" in line or "HW decoder" in line or "Stream #" in line]
    assert not noise, noise


def test_the_main_window_fits_1280x720_at_200_percent(qtbot, window):
    """640x360 logical px: the tabs need about 750x480, so the window grew past the screen's
    edge; now its page scrolls inside a window that fits."""
    from PySide6.QtWidgets import QScrollArea

    window.stack.setCurrentWidget(window.drop_zone)  # only the page on show counts: the drop zone
    assert window.stack.minimumSizeHint().width() <= 560  # fits 616 px without sideways scrolling
    window.stack.setCurrentWidget(window.tabs)
    widths = {}
    for i in range(window.tabs.count()):
        window.tabs.setCurrentIndex(i)
        widths[window.tabs.tabText(i)] = window.stack.minimumSizeHint().width()
    assert len(set(widths.values())) > 1, widths  # each tab asks for its own width, not the widest's
    window.tabs.setCurrentIndex(max(range(window.tabs.count()), key=lambda i: widths[window.tabs.tabText(i)]))
    hint = window.minimumSizeHint()
    assert hint.width() <= 620 and hint.height() <= 330, hint
    window.resize(620, 330)
    qtbot.waitUntil(lambda: window.width() == 620 and window.height() == 330, timeout=5000)
    area = window.centralWidget()
    assert isinstance(area, QScrollArea) and area.widget() is window.stack
    assert area.verticalScrollBar().maximum() > 0 or area.horizontalScrollBar().maximum() > 0  # reachable by scrolling
    window.resize(1120, 760)  # a big window: no scroll bars, the page fills it
    qtbot.waitUntil(lambda: area.verticalScrollBar().maximum() == 0 and area.horizontalScrollBar().maximum() == 0
                    and window.stack.size() == area.viewport().size(), timeout=5000)


def test_no_tab_scrolls_sideways_at_1280x720_and_200_percent(qtbot, window):
    """616 logical px of window: Inside the CNN asked for 742 (its method, class, opacity and Save
    in one row) and Camera for 656 (its source and recording rows); those rows now wrap."""
    window.stack.setCurrentWidget(window.tabs)
    for i in range(window.tabs.count()):
        window.tabs.setCurrentIndex(i)
        assert window.stack.minimumSizeHint().width() <= 600, window.tabs.tabText(i)
