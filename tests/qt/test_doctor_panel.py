"""The dataset check panel, offscreen: issues grouped by kind with pictures side by side, one-click
move (and undo), ignore, cancel; and its place in the Train dialog."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import doctor_data  # noqa: E402


@pytest.fixture
def runner(qapp):
    from cnndesk.qt.workers import JobRunner

    r = JobRunner()
    yield r
    assert r.drain(20_000), "worker threads left running"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("panel") / "shapes"
    man = doctor_data.make(root, per_class=16, flip_share=0.1, n_dupes=2, n_leaks=2, n_outliers=1, seed=5)
    return root, man


def _items(panel):
    out = {}
    for g in range(panel.tree.topLevelItemCount()):
        group = panel.tree.topLevelItem(g)
        out[group.text(0)] = [group.child(c) for c in range(group.childCount())]
    return out


def test_panel_lists_fixes_and_ignores(qtbot, runner, dataset, tmp_path, monkeypatch):
    from cnndesk.core.doctor import check as doctor
    from cnndesk.qt.widgets import doctor_panel
    from cnndesk.qt.widgets.doctor_panel import DoctorPanel

    root, man = dataset
    panel = DoctorPanel(runner)
    qtbot.addWidget(panel)
    panel.resize(900, 560)
    panel.show()
    with qtbot.waitSignal(panel.checked, timeout=180_000) as sig:
        assert panel.check(str(root))
        assert panel.cancel_btn.isVisible()
    rep = sig.args[0]
    assert not panel.check(str(root))  # the same folder is not checked twice unless asked
    groups = _items(panel)
    assert any(t.startswith("Probably in the wrong class (") for t in groups)
    assert any(t.startswith("Same picture in train and val/test (") for t in groups)
    assert "possible problem" in panel.summary.text()

    # a pair: both pictures side by side
    pair_item = next(i for t, items in groups.items() if t.startswith("Same picture") for i in items)
    panel.tree.setCurrentItem(pair_item)
    issue = panel.current_issue()
    assert issue.other and panel.right_img.isVisible()
    qtbot.waitUntil(lambda: panel.left_img.pixmap() is not None and not panel.left_img.pixmap().isNull()
                    and panel.right_img.pixmap() is not None and not panel.right_img.pixmap().isNull(), timeout=20_000)
    assert not panel.move_btn.isVisible()

    # a suspected label: move to the suggested class, undo, move again
    label_item = next(i for t, items in groups.items() if t.startswith("Probably in the wrong") for i in items)
    panel.tree.setCurrentItem(label_item)
    issue = panel.current_issue()
    assert panel.move_btn.isEnabled() and issue.suggested in panel.move_btn.text()
    qtbot.waitUntil(lambda: panel.left_img.pixmap() is not None and not panel.left_img.pixmap().isNull(), timeout=20_000)
    panel.grab().save(str(tmp_path / "doctor_panel.png"))
    if os.environ.get("CNNDESK_SHOTS"):
        panel.grab().save(os.path.join(os.environ["CNNDESK_SHOTS"], "doctor_panel.png"))
    changed = []
    panel.dataset_changed.connect(lambda: changed.append(1))
    target = panel.move_selected()
    assert target and os.path.exists(target) and not os.path.exists(issue.path)
    assert Path(target).parent.name == issue.suggested and label_item.font(0).strikeOut()
    assert not panel.move_btn.isEnabled() and panel.undo_btn.isEnabled()
    assert panel.undo() == issue.path and os.path.exists(issue.path) and not os.path.exists(target)
    assert not label_item.font(0).strikeOut() and len(changed) == 2

    # ignore: recorded in the dataset, gone on the next check
    panel.tree.setCurrentItem(pair_item)
    ignored = panel.current_issue()
    panel.ignore_selected()
    data = json.loads((root / doctor.IGNORE_FILE).read_text())
    assert {"kind": ignored.kind, "path": os.path.relpath(ignored.path, root),
            "other": os.path.relpath(ignored.other, root)} in data["ignored"]
    opened = []
    monkeypatch.setattr(doctor_panel.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    panel.show_selected()
    assert opened == [os.path.dirname(ignored.path)]
    with qtbot.waitSignal(panel.checked, timeout=60_000) as sig2:
        panel.again_btn.click()
    assert sig2.args[0].summary["ignored"] == 1
    assert len(sig2.args[0].issues) == len(rep.issues) - 1
    (root / doctor.IGNORE_FILE).unlink()


def test_cancel_stops_the_check(qtbot, runner, tmp_path):
    from cnndesk.qt.widgets.doctor_panel import DoctorPanel

    root = tmp_path / "d"
    doctor_data.make(root, per_class=30, n_dupes=0, n_leaks=0, seed=6)
    panel = DoctorPanel(runner)
    qtbot.addWidget(panel)
    panel.check(str(root))
    panel.cancel()
    assert "cancelled" in panel.summary.text() and not panel.cancel_btn.isVisible()
    assert panel.again_btn.isEnabled() and panel.report is None
    qtbot.waitUntil(lambda: runner.active_count() == 0, timeout=60_000)
    assert panel.report is None  # the late result of the cancelled job is dropped


def test_train_dialog_checks_after_scanning(qtbot, window, dataset, tmp_path):
    root, _ = dataset
    dlg = window.show_training()
    qtbot.addWidget(dlg)
    dlg.resize(1000, 760)
    dlg.load_folder(str(root))
    qtbot.waitUntil(lambda: dlg.doctor.report is not None, timeout=180_000)
    assert dlg.train_btn.isEnabled()  # training can proceed with issues
    idx = dlg.tabs.indexOf(dlg.doctor)
    assert dlg.tabs.tabText(idx).startswith("Dataset check (")
    assert "Review them" in dlg.doctor_link.text() and dlg.eval_link.text() == dlg.doctor_link.text()
    dlg.eval_link.linkActivated.emit("check")
    assert dlg.tabs.currentWidget() is dlg.doctor
    if os.environ.get("CNNDESK_SHOTS"):
        dlg.tabs.setCurrentIndex(0)
        dlg.grab().save(os.path.join(os.environ["CNNDESK_SHOTS"], "train_dialog_check.png"))
        dlg.tabs.setCurrentWidget(dlg.doctor)
        dlg.grab().save(os.path.join(os.environ["CNNDESK_SHOTS"], "train_dialog_doctor.png"))
    dlg.close()
