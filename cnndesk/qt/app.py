"""Start the desktop app. (A first window; the full main window is built in the GUI issue.)"""

from __future__ import annotations

import sys


def run_app(paths: list[str] | None = None) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    from cnndesk import __version__
    from cnndesk.core.paths import resource_path

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("cnndesk")
    app.setApplicationVersion(__version__)
    icon = resource_path("icons", "cnndesk.png")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    win = QMainWindow()
    win.setWindowTitle("cnndesk")
    label = QLabel(
        "cnndesk\n\nThe desktop window is on its way.\n"
        "Meanwhile: cnndesk classify PHOTO_OR_FOLDER"
    )
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    win.setCentralWidget(label)
    win.resize(720, 480)
    win.show()
    return app.exec()
