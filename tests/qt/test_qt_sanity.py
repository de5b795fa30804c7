"""Guards against a broken Qt binding: PySide6 6.12.0 on Python 3.11 dropped a reference to None
on every void call, so any app crashed ("deallocating None") after some ten thousand calls."""

import sys

from PySide6.QtCore import QCoreApplication, QObject, Signal
from PySide6.QtWidgets import QLabel


class _Emitter(QObject):
    fired = Signal(int)


def test_void_calls_and_slots_keep_reference_counts(qapp):
    label = QLabel()
    emitter = _Emitter()
    emitter.fired.connect(lambda v: None)
    none0, true0 = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(5000):
        QCoreApplication.processEvents()
        label.setText("x")
        label.update()
        emitter.fired.emit(1)
    assert abs(sys.getrefcount(None) - none0) < 100
    assert abs(sys.getrefcount(True) - true0) < 100
