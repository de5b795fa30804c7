"""The folder table: "not one of my classes" rows show an unknown confidence (with the novelty), never
the closest class's 93–100 %, and "Uncertain first" brings them up with the unsure ones; unreadable
and unknown rows do not pass a confidence filter that starts above 0 %; typing a filter does not
move the filter row; the verdict's bars are muted for an unknown image."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from cnndesk.core.predict.classifier import Prediction
from cnndesk.core.predict.stream import FileResult


def _row(i, label, score, unknown=False, novelty=None, error=None):
    if error:
        return FileResult(i, f"/photos/{i}.jpg", None, error)
    pred = Prediction((label, "other"), (score, 1 - score), (0, 1), novelty=novelty, unknown=unknown)
    return FileResult(i, f"/photos/{i}.jpg", pred)


ROWS = [
    _row(0, "goldfish", 0.97, unknown=True, novelty=3.2),
    _row(1, "tabby", 0.95),
    _row(2, "tabby", 0.41),
    _row(3, "", 0, error="not an image"),
    _row(4, "goldfish", 0.99, unknown=True, novelty=1.4),
    _row(5, "tiger", 0.92),
]


@pytest.fixture
def panel(qtbot):
    from cnndesk.qt.widgets.folder_panel import FolderPanel

    p = FolderPanel()
    qtbot.addWidget(p)
    p.start("photos", ["/photos"])
    p.add_results(ROWS)
    p.set_running(False)
    p.resize(1000, 500)
    p.show()
    return p


def _col(panel, col):
    px = panel.proxy
    return [px.data(px.index(i, col)) for i in range(px.rowCount())]


def test_unknown_rows_show_an_unknown_confidence_and_a_short_label(panel):
    from cnndesk.qt.item_models.results import COL_CONF, COL_LABEL

    m = panel.model
    conf = m.data(m.index(0, COL_CONF))
    assert "97" not in conf and conf == "unknown (novelty 3.20)"
    label = m.data(m.index(0, COL_LABEL))
    assert label == "Unknown (closest: goldfish)"
    fm = panel.table.fontMetrics()
    assert fm.horizontalAdvance(label) + 12 <= panel.table.columnWidth(COL_LABEL)  # not cut to "closest: g…"
    assert "novelty 3.20" in m.data(m.index(0, COL_LABEL), Qt.ItemDataRole.ToolTipRole)


def test_uncertain_first_brings_unknown_rows_up_with_the_unsure(panel):
    from cnndesk.qt.item_models.results import COL_FILE

    panel.uncertain.click()
    order = [f.split(".")[0] for f in _col(panel, COL_FILE)]
    assert order == ["3", "0", "4", "2", "5", "1"]  # unreadable, unknown (most unlike first), then 41 %…


def test_a_high_confidence_filter_leaves_out_unreadable_and_unknown_rows(panel):
    from cnndesk.qt.item_models.results import COL_FILE

    panel.min_conf.setValue(90)
    assert sorted(_col(panel, COL_FILE)) == ["1.jpg", "5.jpg"]
    assert sorted(r.path for r in panel.visible_rows()) == ["/photos/1.jpg", "/photos/5.jpg"]  # Export/Sort
    panel.min_conf.setValue(0)
    panel.max_conf.setValue(50)
    assert sorted(_col(panel, COL_FILE)) == ["0.jpg", "2.jpg", "3.jpg", "4.jpg"]
    panel.max_conf.setValue(100)
    panel.label_filter.setEditText("unknown")
    assert sorted(_col(panel, COL_FILE)) == ["0.jpg", "4.jpg"]


def test_typing_a_filter_does_not_move_the_filter_row(qtbot, panel):
    qtbot.waitExposed(panel)
    before = [w.geometry() for w in (panel.label_filter, panel.min_conf, panel.max_conf, panel.uncertain, panel.shown)]
    for text in ("t", "ta", "tabby", "tig", ""):
        panel.label_filter.setEditText(text)
        qtbot.wait(10)
        panel.layout().activate()
        after = [w.geometry() for w in (panel.label_filter, panel.min_conf, panel.max_conf, panel.uncertain, panel.shown)]
        assert after == before, text
    panel.grab().save("/tmp/cnndesk-folder-table.png")


def test_the_verdict_does_not_show_an_unknown_image_s_closest_score_as_confidence(qtbot):
    from cnndesk.qt.widgets.prediction_panel import PredictionPanel

    p = PredictionPanel()
    qtbot.addWidget(p)
    p.show_prediction("x.jpg", ROWS[0].prediction)
    assert p.headline.text() == "Not one of my classes"
    assert "97" not in p.detail.text() and "novelty 3.20" in p.detail.text()
    p.resize(360, 400)
    assert not p.grab().isNull()
