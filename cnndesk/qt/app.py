"""Start the desktop app: the window paints first, the model loads on a worker meanwhile."""

from __future__ import annotations

import sys


def create_app(argv: list[str] | None = None):
    import os

    from PySide6.QtCore import QLoggingCategory
    from PySide6.QtGui import QIcon

    # Qt Multimedia logs which optional system libraries (PipeWire, VA-API) it did not find and
    # which FFmpeg it uses: noise for users. QT_LOGGING_RULES set by the user wins. (Filter rules,
    # not the environment variable: Qt may have read the environment already.)
    if "QT_LOGGING_RULES" not in os.environ:
        # FFmpeg's own log (stream info, "No HW decoder found") goes through Qt's ffmpeg categories;
        # playback errors still reach the user through QMediaPlayer.errorOccurred
        QLoggingCategory.setFilterRules("qt.multimedia.symbolsresolver=false\nqt.multimedia.ffmpeg*=false\n"
                                        "qt.multimedia.ffmpeg.*=false\nqt.multimedia.playbackengine.codec=false")
    from PySide6.QtWidgets import QApplication

    from cnndesk import __version__
    from cnndesk.core.common.paths import resource_path

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("cnndesk")
    app.setOrganizationName("cnndesk")
    app.setApplicationDisplayName("cnndesk")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("cnndesk")
    icon = QIcon()
    for size in (16, 32, 64, 128, 256):
        p = resource_path("icons", f"cnndesk-{size}.png")
        if p.is_file():
            icon.addFile(str(p))
    app.setWindowIcon(icon)
    return app


def run_app(paths: list[str] | None = None, qt_args: list[str] | None = None) -> int:
    import os

    app = create_app(sys.argv[:1] + list(qt_args or []))
    from cnndesk.qt import crash_dialog
    from cnndesk.qt.main_window import MainWindow

    crash_dialog.install()  # an unexpected error: a dialog with the reason, details in the log

    win = MainWindow()
    win.show()
    if os.environ.get("CNNDESK_STARTUP_PROBE"):  # bench/bench_startup.py: time to first paint
        _probe_first_paint(win)
    app.aboutToQuit.connect(lambda: win.runner.drain())
    win.start([os.path.abspath(p) for p in (paths or [])])
    return app.exec()


def _probe_first_paint(win) -> None:
    import time

    from PySide6.QtCore import QEvent, QObject, QTimer

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint and not getattr(self, "seen", False):
                self.seen = True
                print(f"first-paint {time.time():.6f} title={win.windowTitle()}", flush=True)
                QTimer.singleShot(0, win.close)
            return False

    win._first_paint = FirstPaint(win)
    win.installEventFilter(win._first_paint)
