"""The Label grid's sections by suggested label."""

from __future__ import annotations


def test_an_odd_image_is_shown_under_unknown_before_any_model():
    """One class answered (no model yet): an odd image came with no label and its unknown flag
    was never shown ("no suggestion yet")."""
    from types import SimpleNamespace

    from cnndesk.qt.label_jobs import Suggested, by_label

    view = SimpleNamespace(states=["cat", None, None], classes=["cat"],
                           suggestions=[None, Suggested(None, 0.0, True), Suggested(None, 0.0, False)])
    sections = by_label(view)
    assert sections["unknown"] == [1] and sections["no suggestion yet"] == [2] and sections["cat"] == [0]
