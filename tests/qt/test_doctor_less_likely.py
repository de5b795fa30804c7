"""The Dataset check tab hides label suspicions without strong evidence until "Show less likely"
is ticked, keeps what was done to the others when toggled, and names the "overlap" kind."""

from __future__ import annotations

import pytest
from PIL import Image


@pytest.fixture
def runner(qapp):
    from cnndesk.qt.workers import JobRunner

    r = JobRunner()
    yield r
    assert r.drain(20_000), "worker threads left running"


def test_show_less_likely_toggles_weak_label_suspicions(qtbot, runner, tmp_path):
    from cnndesk.core.doctor import check as doctor
    from cnndesk.qt.widgets.doctor_panel import DoctorPanel, IssueRole

    for sub, name, colour in (("a", "1.png", "red"), ("a", "2.png", "blue"), ("b", "3.png", "green"), ("b", "4.png", "olive")):
        (tmp_path / sub).mkdir(exist_ok=True)
        Image.new("RGB", (48, 48), colour).save(tmp_path / sub / name)
    issues = [
        doctor.Issue("label", str(tmp_path / "a/1.png"), label="a", suggested="b", score=0.97, reason="looks like “b”"),
        doctor.Issue("label", str(tmp_path / "a/2.png"), label="a", suggested="b", score=0.6, reason="maybe “b”",
                     likely=False),
        doctor.Issue("overlap", str(tmp_path / "b/3.png"), label="b", other=str(tmp_path / "b/4.png"), score=0.7,
                     reason="the two pictures share a part"),
    ]
    panel = DoctorPanel(runner)
    qtbot.addWidget(panel)
    panel.root = str(tmp_path)
    panel._done(doctor.Report(str(tmp_path), issues, {"images": 4}))

    def shown():
        out = {}
        for g in range(panel.tree.topLevelItemCount()):
            group = panel.tree.topLevelItem(g)
            out[group.text(0)] = [group.child(c) for c in range(group.childCount())]
        return out

    groups = shown()
    assert "Probably in the wrong class (1)" in groups and "Share part of a picture (1)" in groups
    assert "1 share part of a picture" in panel.headline()
    strong = groups["Probably in the wrong class (1)"][0]
    panel._mark(strong, "Moved to “b”.")
    panel.less_likely.setChecked(True)
    groups = shown()
    labels = groups["Probably in the wrong class (2)"]
    assert {i.data(0, IssueRole).path for i in labels} == {issues[0].path, issues[1].path}
    kept = next(i for i in labels if i.data(0, IssueRole).path == issues[0].path)
    assert kept.data(0, IssueRole + 1) == "Moved to “b”."  # what was done survives the toggle
    panel.less_likely.setChecked(False)
    assert "Probably in the wrong class (1)" in shown()
