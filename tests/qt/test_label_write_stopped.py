"""A dataset write stopped half-way in the app says so (review): opening another folder while a
move runs stops the write (its files so far are journaled, undo puts them back), but the job's
result was dropped with the cancel, so the user was never told that only part of the pile moved."""

from __future__ import annotations

import os

from label_data import make_pile
from label_steps import answer, idle, open_pile


def test_a_write_stopped_by_opening_another_folder_is_reported(qtbot, ws, tmp_path, monkeypatch):
    from cnndesk.core.organize import sorting
    from cnndesk.qt.label import dialogs

    truth = make_pile(tmp_path / "pile", per_class=4)
    make_pile(tmp_path / "other", per_class=2)
    open_pile(qtbot, ws, tmp_path / "pile")
    answer(qtbot, ws, [(path, truth[path]) for path in truth])

    moved = []
    real = sorting.move_into

    def slow_move(*a, **kw):  # one file at a time, slowly: time to open another folder
        import time

        time.sleep(0.3)
        moved.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(sorting, "move_into", slow_move)
    monkeypatch.setattr(dialogs, "ask_write", lambda parent, start: (str(tmp_path / "dataset"), "move"))
    ws.write_dataset()
    qtbot.waitUntil(lambda: len(moved) >= 2, timeout=30_000)
    ws.open_folder(str(tmp_path / "other"))
    qtbot.waitUntil(lambda: any(m.startswith("Stopped: moved") for m in ws.messages), timeout=30_000)
    said = next(m for m in ws.messages if m.startswith("Stopped: moved"))
    assert f"(of {len(truth)})" in said, said
    left = sum(os.path.exists(p) for p in truth)
    assert 0 < left < len(truth), "the write was not stopped half-way"


def test_undo_in_the_tab_after_edit_undo_says_so_and_follows_the_files(qtbot, ws, tmp_path):
    """Edit ▸ Undo (or `cnndesk undo`) put a moved write back first. Before: the tab's undo ran the
    journal entry again ("Undone: Undid …: 0 files put back; 4 left as they are: … no longer
    there") and the tab kept looking for the images in the dataset folder."""
    from cnndesk.core.organize.journal import Journal

    truth = make_pile(tmp_path / "pile", per_class=2)
    open_pile(qtbot, ws, tmp_path / "pile")
    answer(qtbot, ws, [(path, truth[path]) for path in list(truth)[:4]])
    ws.write_dataset(str(tmp_path / "ds"), "move")
    qtbot.waitUntil(lambda: ws.written is not None, timeout=30_000)
    idle(qtbot, ws)
    mine = [e for e in Journal().entries() if e.pairs[0][1].startswith(str(tmp_path / "ds"))]
    Journal().undo(mine[-1])  # Edit ▸ Undo
    ws.undo()
    idle(qtbot, ws)
    assert ws.messages[-1] == "Already undone: “Move 4 files into ds” (Edit ▸ Undo or cnndesk undo)", ws.messages
    assert all(os.path.exists(p) for p in ws.view.paths)


def test_edit_undo_of_a_moved_write_is_followed_by_the_label_tab_at_once(isolated_dirs, qtbot, window, tmp_path):
    """Edit ▸ Undo of the Label tab's "Write dataset…" by moving puts the files back in the pile:
    the tab follows them at once (review: before, it kept the dataset paths — thumbnails and
    suggestions of files no longer there — until the user pressed Ctrl+Z in the tab itself)."""
    from label_data import fake_embed

    ws = window.label_workspace
    ws.embed, ws.duplicates = fake_embed, False
    truth = make_pile(tmp_path / "pile", per_class=2)
    open_pile(qtbot, ws, tmp_path / "pile")
    mine = list(truth)[:4]
    answer(qtbot, ws, [(path, truth[path]) for path in mine])
    ws.write_dataset(str(tmp_path / "ds"), "move")
    qtbot.waitUntil(lambda: ws.written is not None, timeout=30_000)
    idle(qtbot, ws)
    assert not any(os.path.exists(p) for p in mine)
    assert not set(mine) & set(ws.view.paths)  # the tab followed the move
    window.undo.refresh()
    with qtbot.waitSignal(window.undo.undone, timeout=30_000):
        assert window.undo.undo()  # Edit ▸ Undo
    qtbot.waitUntil(lambda: set(mine) <= set(ws.view.paths), timeout=30_000)
    idle(qtbot, ws)
    assert all(os.path.exists(p) for p in ws.view.paths) and all(os.path.exists(p) for p in ws.paths)
