"""The Label workspace as a new user meets it (a walk-through of "Label a folder" under Xvfb):
the buttons do what they say, and what the user picked stays picked while the suggestions refit."""

from __future__ import annotations

import pytest
from label_data import fake_embed, make_pile
from label_steps import answer, idle, open_pile, slow_refits
from PySide6.QtCore import Qt


def test_the_name_group_button_asks_for_a_name(qtbot, ws, tmp_path, monkeypatch):
    """Clicking "Name group…" passed the button's checked flag (False) as the class name: the
    dialog never opened and the status said "a class name cannot be empty"."""
    from cnndesk.qt.label import dialogs

    make_pile(tmp_path / "pile", per_class=6)
    open_pile(qtbot, ws, tmp_path / "pile")
    ws.section.setCurrentIndex(1)
    asked = []
    monkeypatch.setattr(dialogs, "ask_class_name", lambda *a, **k: asked.append(a) or "disc")
    qtbot.mouseClick(ws.name_group_btn, Qt.MouseButton.LeftButton)
    assert asked, "the button must ask for the group's class"
    idle(qtbot, ws)
    assert all(ws.session.state(i) == "disc" for i in ws.groups[0])


def test_the_section_shown_stays_after_a_refit(qtbot, ws, tmp_path):
    """The group (or suggested label) picked above the grid fell back to "All images" after every
    refit of the suggestions (QComboBox.findData compares a Python tuple by identity)."""
    truth = make_pile(tmp_path / "pile", per_class=6)
    open_pile(qtbot, ws, tmp_path / "pile")
    ws.section.setCurrentIndex(2)
    shown = list(ws.model.rows)
    path = next(iter(truth))
    answer(qtbot, ws, [(path, truth[path])], refresh=True)
    assert ws.view.refreshed
    assert ws.section.currentData() == ("group", 1) and ws.model.rows == shown


def test_keys_answer_while_the_focus_is_elsewhere_in_the_window(qtbot, tmp_path):
    """Under a real X server, after a click on the Label tab (or on a toolbar button, or when the
    focused button is disabled by a refit) the keyboard focus is outside the workspace: 1-9, N, S
    and Backspace did nothing. They act while the Label tab is shown, wherever the focus is in the
    window (not in a text field, and not in another window)."""
    from PySide6.QtWidgets import QApplication, QLineEdit

    from cnndesk.qt.main_tabs import TAB_LABEL
    from cnndesk.qt.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    ws = win.label_workspace
    ws.embed, ws.duplicates = fake_embed, False
    win.show()
    make_pile(tmp_path / "pile", per_class=4)
    win._show_tab(TAB_LABEL)
    open_pile(qtbot, ws, tmp_path / "pile")
    ws.new_class("disc", answer_current=True)
    idle(qtbot, ws)
    bar = win.tabs.tabBar()
    bar.setFocus()
    QApplication.processEvents()
    assert QApplication.focusWidget() is bar
    second = ws.queue[ws.pos].path
    qtbot.keyClick(bar, Qt.Key.Key_1)
    idle(qtbot, ws)
    assert ws.session.label_of(second) == "disc", "1 on the tab bar answers the image shown"
    qtbot.keyClick(bar, Qt.Key.Key_Backspace)
    idle(qtbot, ws)
    assert ws.session.state(second) is None
    assert win.tabs.currentIndex() == TAB_LABEL
    # a text field elsewhere in the window keeps its keys
    field = QLineEdit(win.statusBar())
    field.show()
    field.setFocus()
    qtbot.keyClick(field, Qt.Key.Key_1)
    assert field.text() == "1" and ws.session.state(second) is None
    win.close()
    assert win.runner.pool.waitForDone(5000)


def test_one_class_shows_no_suggestion_rather_than_zero_percent(qtbot, ws, tmp_path):
    """With one class there is no model yet: every other image showed "<that class> 0%" under its
    thumbnail (a ball captioned "bottle 0%") and sat in that class's section."""
    from cnndesk.qt.label.workspace import by_label

    truth = make_pile(tmp_path / "pile", per_class=4)
    open_pile(qtbot, ws, tmp_path / "pile")
    path = next(iter(truth))
    answer(qtbot, ws, [(path, "disc")], refresh=True)
    texts = {ws.model.data(ws.model.index(r)) for r in range(ws.model.rowCount())}
    assert texts == {"\u2713 disc", "\u2014"}, texts
    sections = by_label(ws.view)
    assert sections["disc"] == [ws.session.index(path)] and len(sections["no suggestion yet"]) == 15


def test_answers_are_kept_when_the_app_is_opened_again(qtbot, ws, make_label_ws, tmp_path):
    """Quitting lost every answer: the same folder opened again showed "0 of N labelled"."""
    truth = make_pile(tmp_path / "pile", per_class=4)
    open_pile(qtbot, ws, tmp_path / "pile")
    answer(qtbot, ws, [(path, truth[path]) for path in list(truth)[:5]])
    counts = dict(ws.view.counts)
    ws.shutdown()

    again = make_label_ws()  # the app started again
    open_pile(qtbot, again, tmp_path / "pile")
    assert again.view.counts == counts and "5 of 16 labelled" in again.stats.text()
    assert any("5 answers from last time restored" in m for m in again.messages), again.messages
    again.undo()  # a fresh start is one undo away
    idle(qtbot, again)
    assert sum(again.view.counts.values()) == 0


def test_what_the_first_reading_does_is_said_beside_the_bar(qtbot, ws, tmp_path):
    """The progress text sat inside a 220-px bar: clipped to "0 % · 0 of 308 images from" and, while
    the bar is busy (the network being prepared), not drawn at all for ~20 s."""
    import threading
    import time

    make_pile(tmp_path / "pile", per_class=3)
    go = threading.Event()

    def slow_embed(paths, progress=None, cancel=None, errors=None):
        progress(0, None, "Preparing the network")
        go.wait(10)
        for i in range(len(paths)):
            progress(i + 1, len(paths), "Computing image features")
            time.sleep(0.06)
        return fake_embed(paths)

    ws.embed = slow_embed
    ws.open_folder(str(tmp_path / "pile"))
    qtbot.waitUntil(lambda: "Preparing the network" in ws.folder_label.text(), timeout=10_000)
    assert ws.folder_label.text().startswith("Reading ") and ws.progress.maximum() == 0
    go.set()
    qtbot.waitUntil(lambda: "Computing image features (" in ws.folder_label.text(), timeout=10_000)
    assert " of 12)" in ws.folder_label.text()
    idle_open = lambda: ws.session is not None and ws.view is not None  # noqa: E731
    qtbot.waitUntil(idle_open, timeout=30_000)
    assert ws.progress.format() == "%p %", "the bar shows the share only; the words are beside it"
    assert ws.folder_label.text() == str(tmp_path / "pile")


def test_the_files_that_cannot_be_read_stay_named(qtbot, ws, tmp_path):
    """"2 files could not be read" was said once in the status bar (and replaced by the next
    hover tip); which ones, nowhere."""
    pile = tmp_path / "pile"
    make_pile(pile, per_class=3)
    (pile / "notes.jpg").write_text("not an image")
    (pile / "empty.png").write_bytes(b"")
    open_pile(qtbot, ws, pile)
    assert ws.folder_label.text().endswith("2 files cannot be read (left out)")
    tip = ws.folder_label.toolTip()
    assert "notes.jpg" in tip and "empty.png" in tip and tip.startswith("<p>")


def test_write_dataset_offers_a_new_folder_then_the_same_one(qtbot, ws, tmp_path, monkeypatch):
    """"Write dataset…" offered the pile's parent folder, which is never empty (it holds the pile):
    OK led to "already holds files", and Yes put class folders beside the user's folders."""
    from cnndesk.qt.label import dialogs

    truth = make_pile(tmp_path / "pile", per_class=3)
    open_pile(qtbot, ws, tmp_path / "pile")
    answer(qtbot, ws, [(path, truth[path]) for path in list(truth)[:4]])
    offered = []
    monkeypatch.setattr(dialogs, "ask_write", lambda parent, start: offered.append(start) or (start, "copy"))
    ws.write_dataset()
    qtbot.waitUntil(lambda: ws.written is not None, timeout=30_000)
    idle(qtbot, ws)
    assert offered == [str(tmp_path / "pile-dataset")]
    assert len(list((tmp_path / "pile-dataset").rglob("*.png"))) == 4
    monkeypatch.setattr(dialogs, "confirm_non_empty", lambda *a: True)
    ws.write_dataset()  # again: the same folder, and nothing doubled
    qtbot.waitUntil(lambda: any("already there" in m for m in ws.messages), timeout=30_000)
    idle(qtbot, ws)
    assert offered[1] == str(tmp_path / "pile-dataset")
    assert len(list((tmp_path / "pile-dataset").rglob("*.png"))) == 4


def test_training_does_not_widen_the_grid_side(qtbot, ws, tmp_path):
    """While "Train now" ran, its progress bar and Stop were added beside the (disabled) Train now
    and mode buttons: the grid side asked for ~180 px more and the splitter jumped, then back."""
    from PySide6.QtWidgets import QApplication

    make_pile(tmp_path / "pile", per_class=3)
    open_pile(qtbot, ws, tmp_path / "pile")
    QApplication.processEvents()
    left = ws.grid.parentWidget()
    before = left.minimumSizeHint().width()
    ws.training._running(True)
    try:
        QApplication.processEvents()  # the layout takes the shown/hidden widgets into account
        assert ws.train_progress.isVisible() and ws.train_stop.isVisible()
        assert left.minimumSizeHint().width() <= before, (left.minimumSizeHint().width(), before)
    finally:
        ws.training._running(False)
    assert ws.train_btn.isVisible() and ws.train_btn.isEnabled() and ws.train_mode.isVisible()
    ws.use_model_btn.setVisible(True)  # a model was saved: "Use it" sits by the message, not in the row
    ws.train_status.setVisible(True)
    QApplication.processEvents()
    assert left.minimumSizeHint().width() <= before


def test_the_subfolders_switch_applies_to_the_folder_open(qtbot, ws, tmp_path):
    """Ticking "Subfolders are classes" with a folder open did nothing until the folder was chosen
    again; and the subfolder names must not stay as answers once it is unticked."""
    make_pile(tmp_path / "sorted", per_class=3, subfolders=True)
    open_pile(qtbot, ws, tmp_path / "sorted")
    assert sum(ws.view.counts.values()) == 0
    first = ws.session.paths[0]
    ws.subfolders.setChecked(True)
    qtbot.waitUntil(lambda: ws.view is not None and sum(ws.view.counts.values()) == 12, timeout=30_000)
    idle(qtbot, ws)
    wrong = next(c for c in ws.view.classes if c != ws.session.label_of(first))
    answer(qtbot, ws, [(first, wrong)])
    ws.subfolders.setChecked(False)
    qtbot.waitUntil(lambda: ws.view is not None and sum(ws.view.counts.values()) == 1, timeout=30_000)
    assert ws.session.label_of(first) == wrong, "the user's own answer stays; the folder names go"


def test_the_workspace_fits_a_small_screen(qtbot, ws, tmp_path):
    """At 1280x720 and 200 % (640 logical pixels across) the Label tab needed 693 px and scrolled
    sideways: Accept, Write, Train now and the mode shared one row. Now they take two."""
    from PySide6.QtWidgets import QApplication

    truth = make_pile(tmp_path / "pile", per_class=3)
    open_pile(qtbot, ws, tmp_path / "pile")
    answer(qtbot, ws, [(path, truth[path]) for path in list(truth)[:8]])  # three classes: a row of three class buttons
    QApplication.processEvents()
    assert ws.minimumSizeHint().width() <= 560, ws.minimumSizeHint()


def test_a_question_does_not_name_a_group_the_grid_does_not_have(qtbot, ws, tmp_path):
    """The first question said "the most typical image of a group of 45" while the grid's groups
    were 59, 50, 44, 43…: the asking splits the folder its own way, so the reason speaks of
    similar images, not of a group."""
    make_pile(tmp_path / "pile", per_class=6)
    open_pile(qtbot, ws, tmp_path / "pile")
    reasons = [q.reason for q in ws.queue]
    assert reasons and not [r for r in reasons if "group" in r], reasons
    assert "similar images with no answers yet" in ws.panel.reason.text()


def test_the_saved_message_says_what_its_accuracy_is_measured_on(qtbot, ws):
    """After "Train now" the row said "validation accuracy 73.7%" beside the stats line's
    "estimated accuracy 95%": two figures for the same labels, the first on 19 held-back images
    (3 of some classes). The message now says how many images it is measured on."""
    from cnndesk.qt.label_jobs import Trained

    ws.training._active = True
    ws.training._trained(Trained("/m/pile-labels.safetensors", "pile-labels", "quick", 14 / 19, 4.0, 19))
    assert "validation accuracy 74% on 19 held-back images" in ws.train_status.text()


def test_the_grid_gets_the_larger_share_of_the_window(qtbot, ws, tmp_path):
    """With the grid side's minimum width down (two button rows), the splitter followed the size
    hints and gave the large image 60 % of the window: three thumbnail columns instead of four."""
    from PySide6.QtWidgets import QApplication

    make_pile(tmp_path / "pile", per_class=3)
    open_pile(qtbot, ws, tmp_path / "pile")
    QApplication.processEvents()
    grid_side, queue_side = ws.grid.parentWidget().width(), ws.panel.width()
    assert grid_side >= 1.3 * queue_side, (grid_side, queue_side)


def test_opening_another_folder_asks_about_that_folder(qtbot, ws, tmp_path):
    """The queue of the folder open before stayed while its batch was not finished: another
    folder opened then showed the old questions (indices into the other folder's images)."""
    truth = make_pile(tmp_path / "a", per_class=6)
    open_pile(qtbot, ws, tmp_path / "a")
    ws.section.setCurrentIndex(2)  # a group of that folder
    first = ws.queue[0].path
    ws.new_class(truth[first])
    idle(qtbot, ws)
    assert ws.pos == 1
    make_pile(tmp_path / "b", per_class=2, seed=5)
    ws.open_folder(str(tmp_path / "b"))
    qtbot.waitUntil(lambda: ws.root == str(tmp_path / "b"), timeout=30_000)
    idle(qtbot, ws)
    assert ws.pos == 0 and ws.queue
    assert all(q.path.startswith(str(tmp_path / "b")) for q in ws.queue), [q.path for q in ws.queue]
    assert ws.panel.title.text().startswith("Label these next \u00b7 1 of")
    assert ws.section.currentIndex() == 0 and ws.model.rowCount() == 8, "all of the new folder, not its group 2"


def test_only_the_labels_file_can_be_written(qtbot, ws, tmp_path, monkeypatch):
    """Issue 22: "Write the dataset … or only the labels file". The app offered copy, move and link
    only, so the answers given there could not be handed to `cnndesk label --labels`."""
    from cnndesk.core.labelling import read_labels
    from cnndesk.qt.label import dialogs

    assert "labels" in [key for key, _ in dialogs.MODES]
    truth = make_pile(tmp_path / "pile", per_class=3)
    open_pile(qtbot, ws, tmp_path / "pile")
    chosen = list(truth)[:5]
    for path in chosen:
        ws._queue_op("answer", (ws.session.index(path), truth[path]), False)
    ws._queue_op("skip", (ws.session.index(list(truth)[6]),), False)
    ws._pump()
    idle(qtbot, ws)
    out = tmp_path / "answers"
    ws.write_dataset(str(out), "labels")
    qtbot.waitUntil(lambda: ws.written == str(out), timeout=30_000)
    idle(qtbot, ws)
    f = out / "labels.csv"
    got = read_labels(f, str(tmp_path / "pile"), set(truth))
    assert {p: got[p] for p in chosen} == {p: truth[p] for p in chosen} and got[list(truth)[6]] is None
    assert "Wrote the answers for 6 images" in ws.messages[-1] and not list(out.rglob("*.png"))
    f.write_text("path,label\n", encoding="utf-8")  # the user's own file there now
    monkeypatch.setattr(dialogs, "confirm_replace", lambda *a: False)
    ws.write_dataset(str(out), "labels")
    assert "is kept" in ws.messages[-1] and f.read_text(encoding="utf-8") == "path,label\n"
    monkeypatch.setattr(dialogs, "confirm_replace", lambda *a: True)
    ws.written = None
    ws.write_dataset(str(out), "labels")
    qtbot.waitUntil(lambda: ws.written == str(out), timeout=30_000)
    idle(qtbot, ws)
    assert len(f.read_text(encoding="utf-8").splitlines()) == 7
    ws.undo()  # the old file back
    idle(qtbot, ws)
    assert f.read_text(encoding="utf-8") == "path,label\n"


@pytest.mark.parametrize("delivered", [True, False])
def test_answers_queued_while_a_refit_runs_are_kept_at_quit(qtbot, ws, tmp_path, monkeypatch, delivered):
    """Answers typed while a refit ran wait in the queue; quitting then (the window stops its jobs)
    lost them. Once no job runs they are applied and kept -- also when the quit came without the
    window's close (QApplication.quit, a logout), so the job's finished signal never arrived."""

    from PySide6.QtWidgets import QApplication

    from cnndesk.core.labelling import LabelSession

    truth = make_pile(tmp_path / "pile", per_class=3)
    open_pile(qtbot, ws, tmp_path / "pile")
    slow_refits(monkeypatch, 0.5)
    ws._refresh_wanted = True
    ws._pump()  # a slow refit runs
    paths = list(truth)[:3]
    for p in paths:  # answered meanwhile: queued
        ws._queue_op("answer", (ws.session.index(p), truth[p]), False)
    ws._queue_op("accept_above", (0.95,), False)  # needs the model: not applied at quit
    assert ws.busy and ws.session.labelled == []
    assert ws.runner.drain(10_000)  # the window closes, or the application's own drain
    if delivered:
        QApplication.processEvents()
    ws.keep_pending()  # the application quits
    again = LabelSession.open(tmp_path / "pile", embed=fake_embed, duplicates=False, keep_answers=True)
    assert sorted(again.paths[i] for i in again.labelled) == sorted(paths)
