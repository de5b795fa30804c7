"""The Label workspace (issue 22, app): open a generated folder, answer with keys, undo, accept
above 95 %, add a class, name a group, write the dataset; bad input shows a clear message."""

from __future__ import annotations

from pathlib import Path

from label_data import fake_embed, make_pile
from label_steps import answer, idle, open_pile, slow_refits
from PySide6.QtCore import Qt


def key(qtbot, ws, k, mod=Qt.KeyboardModifier.NoModifier):
    ws.panel.image.setFocus()
    qtbot.keyClick(ws.panel.image, k, mod)


def test_open_answer_with_keys_undo_and_counts(qtbot, ws, tmp_path, monkeypatch):
    from cnndesk.qt.label import dialogs

    truth = make_pile(tmp_path / "pile", per_class=6)
    open_pile(qtbot, ws, tmp_path / "pile")
    assert ws.model.rowCount() == 24 and ws.queue, "the grid shows every image and questions are asked"
    assert ws.pages.currentIndex() == 1
    first = ws.queue[0].path
    # N: a new class for the image shown
    monkeypatch.setattr(dialogs, "ask_class_name", lambda *a, **k: truth[first])
    key(qtbot, ws, Qt.Key.Key_N)
    idle(qtbot, ws)
    assert ws.session.label_of(first) == truth[first]
    assert ws.view.counts == {truth[first]: 1}
    assert ws.pos == 1
    # S skips, Backspace undoes it and shows that image again
    second = ws.queue[1].path
    key(qtbot, ws, Qt.Key.Key_S)
    idle(qtbot, ws)
    assert ws.session.state(second) is not None
    key(qtbot, ws, Qt.Key.Key_Backspace)
    idle(qtbot, ws)
    assert ws.session.state(second) is None and ws.pos == 1
    # 1 answers with the first class; Ctrl+Z (the window's Undo shortcut) undoes it here
    key(qtbot, ws, Qt.Key.Key_1)
    idle(qtbot, ws)
    assert ws.session.label_of(second) == truth[first]
    key(qtbot, ws, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    idle(qtbot, ws)
    assert ws.session.state(second) is None
    # a key for a class that does not exist says so
    key(qtbot, ws, Qt.Key.Key_7)
    assert "no class 7" in ws.messages[-1]
    # the class buttons carry their counts, as plain text
    assert f"{truth[first]}  (1)" in ws.panel._buttons[0].text()
    assert ws.stats.textFormat() == Qt.TextFormat.PlainText
    tip = ws.model.data(ws.model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("<p>") and "<b>" not in tip


def test_add_class_bad_name_accept_above_and_group(qtbot, ws, tmp_path):
    truth = make_pile(tmp_path / "pile", per_class=16)
    open_pile(qtbot, ws, tmp_path / "pile")
    # answer the truth for a few images of every class, then accept in bulk
    answer(qtbot, ws, [(path, truth[path]) for path in list(truth)[::2]], refresh=True)
    assert ws.view.refreshed and ws.view.calibrated and ws.view.accuracy is not None
    assert "confidence calibrated" in ws.stats.text()
    sugg = ws.view.suggestions
    sure = {i for i, s in enumerate(sugg) if ws.view.states[i] is None and s.score >= 0.95 and not s.unknown}
    unsure = {i for i, s in enumerate(sugg) if ws.view.states[i] is None and i not in sure}
    assert sure, "some suggestions are above 95 %"
    before = sum(ws.view.counts.values())
    qtbot.mouseClick(ws.accept_btn, Qt.MouseButton.LeftButton)
    idle(qtbot, ws)
    assert sum(ws.view.counts.values()) == before + len(sure)
    assert all(ws.session.state(i) is None for i in unsure), "nothing below 95 % is accepted"
    assert any(m.startswith(f"Accept {len(sure)} suggestions above 95") for m in ws.messages), ws.messages
    wrong = [p for p in truth if ws.session.label_of(p) not in (None, truth[p])]
    assert len(wrong) <= 1, wrong
    ws.undo()  # one undo takes the whole bulk accept back
    idle(qtbot, ws)
    assert sum(ws.view.counts.values()) == before
    ws.new_class("a/b", answer_current=False)
    assert "a/b" not in (ws.view.classes or []) and ws.messages[-1], "an invalid class name is refused with a message"
    ws.new_class("extra", answer_current=False)
    idle(qtbot, ws)
    assert "extra" in ws.view.classes
    # name a whole group at once
    ws.by.setCurrentIndex(0)
    ws.section.setCurrentIndex(1)
    assert ws.name_group_btn.isEnabled()
    members = ws.groups[0]
    ws.name_group("extra", 0)
    idle(qtbot, ws)
    assert all(ws.session.state(i) is not None for i in members)
    # regroup: 3 groups
    ws.group_count.setValue(3)
    idle(qtbot, ws)
    assert len(ws.groups) == 3 and ws.section.count() == 4
    # by suggested label: one section per label
    ws.by.setCurrentIndex(1)
    assert ws.section.count() >= 2


def test_write_dataset_refuses_non_empty_unless_confirmed(qtbot, ws, tmp_path, monkeypatch):
    from cnndesk.qt.label import dialogs

    truth = make_pile(tmp_path / "pile", per_class=4)
    open_pile(qtbot, ws, tmp_path / "pile")
    ws.write_dataset(str(tmp_path / "out"), "copy")
    assert "Nothing to write" in ws.messages[-1]
    answer(qtbot, ws, [(path, truth[path]) for path in list(truth)[:6]])
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    monkeypatch.setattr(dialogs, "confirm_non_empty", lambda *a: False)
    ws.write_dataset(str(out), "copy")
    assert "not empty" in ws.messages[-1] and sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    monkeypatch.setattr(dialogs, "confirm_non_empty", lambda *a: True)
    ws.write_dataset(str(out), "copy")
    qtbot.waitUntil(lambda: ws.written is not None, timeout=30_000)
    idle(qtbot, ws)
    copies = [p for p in out.rglob("*.png")]
    assert len(copies) == 6 and (out / "keep.txt").read_text() == "mine"
    assert all((tmp_path / "pile" / Path(p).name).exists() for p in list(truth)[:6]), "copy keeps the originals"
    # undo removes the copies
    ws.undo()
    idle(qtbot, ws)
    assert not list(out.rglob("*.png")) and (out / "keep.txt").exists()
    assert ws.messages[-1].startswith("Undid “Copy 6 files"), ws.messages[-1]  # not "Undone: Undid ..."
    # by moving: the grid follows the files, and undo brings them back
    moved = tmp_path / "moved"
    ws.write_dataset(str(moved), "move")
    qtbot.waitUntil(lambda: ws.written == str(moved), timeout=30_000)
    idle(qtbot, ws)
    assert len(list(moved.rglob("*.png"))) == 6
    assert sum(p.startswith(str(moved)) for p in ws.model.paths) == 6 and ws.paths == ws.model.paths
    ws.undo()
    idle(qtbot, ws)
    assert not list(moved.rglob("*.png")) and all(Path(p).exists() for p in truth)
    assert sorted(ws.model.paths) == sorted(truth)


def test_empty_and_unreadable_folders_say_why(qtbot, ws, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    ws.open_folder(str(empty))
    qtbot.waitUntil(lambda: bool(ws.messages), timeout=30_000)
    assert "holds no images" in ws.messages[-1] and ws.session is None
    assert "holds no images" in ws.empty.text() and ws.empty.textFormat() == Qt.TextFormat.PlainText
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"broken_{i}.jpg").write_bytes(b"not an image")
    ws.open_folder(str(bad))
    qtbot.waitUntil(lambda: "can be read" in ws.messages[-1], timeout=30_000)
    assert ws.session is None and not ws.progress.isVisible() and ws.open_btn.isEnabled()
    # a pile with some broken files opens and says how many could not be read
    make_pile(bad, per_class=3)
    open_pile(qtbot, ws, bad)
    assert ws.model.rowCount() == 12 and any("3 files could not be read" in m for m in ws.messages)


def test_first_embedding_can_be_cancelled(qtbot, ws, tmp_path):
    import time

    make_pile(tmp_path / "pile", per_class=5)

    def slow_embed(paths, progress=None, cancel=None, errors=None):
        for i in range(len(paths)):
            cancel.raise_if_cancelled()
            progress(i + 1, len(paths), "embedding")
            time.sleep(0.05)
        return fake_embed(paths)

    ws.embed = slow_embed
    ws.open_folder(str(tmp_path / "pile"))
    qtbot.waitUntil(lambda: ws.progress.isVisible() and ws.progress.maximum() == 20, timeout=10_000)
    assert ws.cancel_btn.isVisible()
    qtbot.mouseClick(ws.cancel_btn, Qt.MouseButton.LeftButton)
    assert not ws.progress.isVisible() and ws.messages[-1] == "Stopped reading the folder"
    qtbot.wait(300)
    assert ws.session is None


def test_main_window_has_the_label_tab_and_action(qtbot, tmp_path, monkeypatch):
    from cnndesk.qt.label import dialogs
    from cnndesk.qt.main_tabs import TAB_LABEL
    from cnndesk.qt.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    assert win.tabs.tabText(TAB_LABEL) == "Label" and win.tabs.widget(TAB_LABEL) is win.label_workspace
    assert win.act_label.shortcut().toString() == "Ctrl+L"
    assert win.act_label in win.menuBar().actions()[0].menu().actions()
    from PySide6.QtWidgets import QToolBar

    toolbar = win.findChild(QToolBar, "main-toolbar").actions()
    assert toolbar.index(win.act_label) == toolbar.index(win.act_train) - 1  # on the toolbar, before training
    asked = []
    monkeypatch.setattr(dialogs, "choose_folder", lambda *a: asked.append(a) or "")
    win.act_label.trigger()
    assert asked and win.stack.currentWidget() is win.tabs and win.tabs.currentIndex() == TAB_LABEL
    # in the window, Ctrl+Z in the workspace undoes the last answer there (not the file journal)
    ws = win.label_workspace
    ws.embed, ws.duplicates = fake_embed, False
    win.show()
    make_pile(tmp_path / "pile", per_class=3)
    open_pile(qtbot, ws, tmp_path / "pile")
    ws.new_class("disc", answer_current=True)
    idle(qtbot, ws)
    assert sum(ws.view.counts.values()) == 1
    ws.grid.setFocus()
    qtbot.keyClick(ws.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    idle(qtbot, ws)
    assert sum(ws.view.counts.values()) == 0 and ws.messages[-1].startswith("Undone: Label")
    win.close()
    assert win.runner.pool.waitForDone(5000)


def test_a_pause_after_answers_refits_the_suggestions(qtbot, ws, tmp_path, monkeypatch):
    """Answers in the middle of a batch reach the suggestions and the accuracy estimate after a
    pause (IDLE_REFRESH_MS), not only once the whole batch is answered: the light view a job
    returns carries the session's new version, which hid that the refit was still owed."""
    from cnndesk.qt.label import workspace

    monkeypatch.setattr(workspace, "IDLE_REFRESH_MS", 200)
    truth = make_pile(tmp_path / "pile", per_class=8)
    ws._idle.setInterval(200)
    open_pile(qtbot, ws, tmp_path / "pile")
    by_class: dict[str, list[str]] = {}
    for path, label in truth.items():
        by_class.setdefault(label, []).append(path)
    a, b = sorted(by_class)[:2]
    ws._queue_op("answer", (ws.session.index(by_class[a][0]), a), False)
    ws._pump()
    idle(qtbot, ws)
    assert "label at least two images of each class" in ws.stats.text()
    for path, label in ((by_class[a][1], a), (by_class[b][0], b), (by_class[b][1], b)):
        ws._queue_op("answer", (ws.session.index(path), label), False)
    ws._pump()
    qtbot.waitUntil(lambda: ws.view.accuracy is not None, timeout=30_000)
    assert ws.view.model_current and "(out-of-fold on your labels)" in ws.stats.text()
    assert ws.pos == 0, "a refit between answers must not replace the questions being answered"


def test_the_pause_refits_even_when_it_ends_while_a_job_runs(qtbot, ws, tmp_path, monkeypatch):
    """An answer given while a slow job (a refit on a big folder) runs: the pause timer ends while
    that job still runs, when the view on screen does not know of the answer yet; the refit it
    owes must still come once the job is done, not only after the next answer."""


    ws._idle.setInterval(200)
    truth = make_pile(tmp_path / "pile", per_class=8)
    open_pile(qtbot, ws, tmp_path / "pile")
    assert ws.view.model_current
    slow_refits(monkeypatch, 1.0)
    ws._refresh_wanted = True  # a slow refit runs (e.g. after an undo)
    ws._pump()
    path, label = next(iter(truth.items()))
    ws._queue_op("answer", (ws.session.index(path), label), False)  # answered meanwhile
    ws._pump()
    qtbot.waitUntil(lambda: not ws.busy, timeout=30_000)
    qtbot.wait(1500)  # a pause
    qtbot.waitUntil(lambda: not ws.busy, timeout=30_000)
    assert ws.view.model_current, "the answer never reached the suggestions during the pause"
