"""The Label workspace's keys: 1-9 a class, N a new class, S skip, Backspace and Ctrl+Z undo,
for the image shown (or the images selected in the grid). An application event filter, so the
keys reach the workspace from any of its widgets (and from the rest of its window while it is
shown: the tab bar, the toolbar) and Ctrl+Z is taken from the window's Undo
while the workspace has the focus (never from a text field)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)


class LabelKeys(QObject):
    def __init__(self, ws):
        super().__init__(ws)
        self.ws = ws

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        t = event.type()
        if t not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) or self.ws.session is None:
            return False
        if not isinstance(obj, QWidget) or not self.ws.isVisible() or not self._ours(obj):
            return False
        if isinstance(obj, (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit)) or (isinstance(obj, QComboBox) and obj.isEditable()):
            return False
        action = self._key_action(event)
        if action is None:
            return False
        if t == QEvent.Type.ShortcutOverride:
            event.accept()  # ours, not the window's Undo (both use Ctrl+Z)
            return True
        action()
        return True

    def _ours(self, obj: QWidget) -> bool:
        """A key on ``obj`` is for the workspace: it is in the workspace, or elsewhere in the same
        window while the workspace is shown (the tab bar after a click on the Label tab, a toolbar
        button, or wherever Qt moved the focus from a button a refit disabled), never in another
        window (a dialog, a menu)."""
        return obj is self.ws or self.ws.isAncestorOf(obj) or obj.window() is self.ws.window()

    def _key_action(self, event):
        key, mods = event.key(), event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if mods == Qt.KeyboardModifier.ControlModifier and key == Qt.Key.Key_Z:
            return self.ws.undo
        if mods != Qt.KeyboardModifier.NoModifier:
            return None
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            return lambda: self.ws.answer_class(key - Qt.Key.Key_1)
        return {Qt.Key.Key_N: self.ws.new_class, Qt.Key.Key_S: lambda: self.ws._answer_current("skip"),
                Qt.Key.Key_Backspace: self.ws.undo}.get(key)
