"""The Keyboard Shortcuts page lists each key once and says what a bare "Cancel" does (seen under
Xvfb: "Esc Cancel" and "Esc Stop the running folder" were both listed)."""

from PySide6.QtGui import QAction, QKeySequence

from cnndesk.qt.dialogs.help import shortcuts_html


def test_escape_listed_once_with_what_it_does(qtbot):
    cancel = QAction("Cancel")
    cancel.setShortcut(QKeySequence("Esc"))
    cancel.setToolTip("Stop the running folder")
    train = QAction("&Train a Model…")
    train.setShortcut(QKeySequence("Ctrl+T"))
    html = shortcuts_html([cancel, train])
    assert html.count("<b>Esc</b>") == 1
    assert "Stop the running folder" in html and ">Cancel<" not in html
    assert "Train a Model" in html
    assert shortcuts_html([train]).count("<b>Esc</b>") == 1  # no action has Esc: the row still says it
