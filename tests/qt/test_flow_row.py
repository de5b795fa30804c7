"""FlowRow: a toolbar-like row that wraps on a narrow window instead of widening the page."""

from PySide6.QtWidgets import QPushButton, QVBoxLayout, QWidget

from cnndesk.qt.widgets.flow_row import FlowRow, together


def _row(qtbot):
    page = QWidget()
    qtbot.addWidget(page)
    outer = QVBoxLayout(page)
    row = FlowRow()
    buttons = [QPushButton(t) for t in ("Grad-CAM", "A rather long button text", "Opacity", "Save PNG…")]
    for b in buttons[:2]:
        row.addWidget(b)
    row.addWidget(together(*buttons[2:]))  # these two stay on one line
    outer.addLayout(row)
    outer.addStretch(1)
    return page, row, buttons


def _lines(buttons):
    return sorted({b.mapTo(b.window(), b.rect().topLeft()).y() for b in buttons})


def test_wide_is_one_line_and_narrow_wraps_without_overlap(qtbot):
    page, row, buttons = _row(qtbot)
    widest = max(b.sizeHint().width() for b in buttons[:2])
    assert row.minimumSize().width() <= max(widest, buttons[2].sizeHint().width() + buttons[3].sizeHint().width() + 20)
    assert row.minimumSize().width() < row.sizeHint().width() / 2  # a plain row asks for all of it
    page.resize(row.sizeHint().width() + 40, 200)
    page.show()
    qtbot.waitExposed(page)
    qtbot.waitUntil(lambda: len(_lines(buttons)) == 1)
    one_line = row.heightForWidth(page.width())

    page.resize(row.minimumSize().width() + 24, 300)
    qtbot.waitUntil(lambda: len(_lines(buttons)) >= 3)
    assert row.heightForWidth(page.width()) >= 3 * one_line  # the box layout gives it the height
    rects = [b.geometry().translated(b.parentWidget().mapTo(page, b.parentWidget().rect().topLeft()))
             for b in buttons]
    for i, a in enumerate(rects):
        assert a.right() < page.width() and a.left() >= 0, (a, page.width())  # nothing cut off
        for b in rects[i + 1:]:
            assert not a.intersects(b), (a, b)
    # the pair in together() stays on one line
    assert _lines(buttons[2:3]) == _lines(buttons[3:4])


def test_hidden_controls_take_no_room(qtbot):
    page, row, buttons = _row(qtbot)
    full = row.sizeHint().width()
    buttons[1].hide()
    row.invalidate()
    assert row.sizeHint().width() < full - buttons[1].sizeHint().width() + 1
