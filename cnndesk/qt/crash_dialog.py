"""The app's answer to an unexpected error: a dialog with the reason in plain words, a
"Copy details" button and where the log file is; never a traceback on the terminal only, never a
silent exit. Installed as ``sys.excepthook`` (and for threads) by :func:`install`."""

from __future__ import annotations

import sys
import threading

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

from cnndesk import crash


class ErrorDialog(QMessageBox):
    def __init__(self, exc: BaseException, log_file=None, parent=None):
        super().__init__(parent)
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("cnndesk ran into a problem")
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(crash.plain_reason(exc))
        where = f"The details were saved to {log_file}." if log_file else "The details could not be saved to a log file."
        self.setInformativeText(where)
        self.details_text = crash.details(exc)
        self.setDetailedText(self.details_text)
        self.copy_button = QPushButton("Copy details")
        self.addButton(self.copy_button, QMessageBox.ButtonRole.ActionRole)
        self.copy_button.clicked.disconnect()  # an action button would close the dialog
        self.copy_button.clicked.connect(self.copy_details)
        self.addButton(QMessageBox.StandardButton.Close)

    def copy_details(self) -> None:
        QApplication.clipboard().setText(self.details_text)
        self.copy_button.setText("Copied")


class _Relay(QObject):
    """Carries exceptions from any thread to the UI thread."""

    raised = Signal(object)


_relay: _Relay | None = None
_showing = False


def show_error(exc: BaseException) -> None:
    """Log ``exc`` and show the dialog (one at a time; later ones are only logged)."""
    global _showing
    log_file = crash.log_exception(exc)
    if _showing or QApplication.instance() is None:
        return
    _showing = True
    try:
        dlg = ErrorDialog(exc, log_file, QApplication.activeWindow())
        dlg.exec()
    finally:
        _showing = False


def install() -> None:
    """Route uncaught exceptions (UI thread and other threads) to the dialog."""
    global _relay
    _relay = _Relay()
    _relay.raised.connect(lambda exc: QTimer.singleShot(0, lambda: show_error(exc)),
                          Qt.ConnectionType.QueuedConnection)

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        if exc is not None and exc.__traceback__ is None:
            exc = exc.with_traceback(tb)
        _relay.raised.emit(exc)

    sys.excepthook = hook
    threading.excepthook = lambda args: hook(args.exc_type, args.exc_value, args.exc_traceback)
