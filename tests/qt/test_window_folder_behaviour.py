"""The main window around a classified folder: another model keeps the tab the user is on, a dropped
folder says which files it left out and why, and the "Sorted" box closes on Esc and takes Ctrl+Z."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt

from cnndesk.qt.main_tabs import TAB_EXPLAIN, TAB_FOLDER


def _classified(qtbot, window, n):
    qtbot.waitUntil(lambda: not window.runner.running("folder") and window.folder_panel.model.rowCount() == n,
                    timeout=60_000)


def _activate(qtbot, w):
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=3000)


def test_another_model_keeps_the_inside_the_cnn_tab(qtbot, window, photo_folder, monkeypatch):
    window.open_paths([str(photo_folder(3))])
    _classified(qtbot, window, 3)
    assert window.tabs.currentIndex() == TAB_FOLDER
    monkeypatch.setattr(window.explain_panel, "ensure_explainer", lambda: None)  # no PyTorch here
    window.show_explain()
    prev = dataclasses.replace(window.spec, name="another-model")
    window.models._model_ready(window.clf, prev)  # where picking another model ends: everything classified again
    assert window.runner.running("folder")
    assert window.tabs.currentIndex() == TAB_EXPLAIN
    _classified(qtbot, window, 3)
    assert window.tabs.currentIndex() == TAB_EXPLAIN


def test_a_dropped_folder_says_which_files_it_skipped_and_why(qtbot, window, photo_folder, drop):
    folder = photo_folder(2)
    (folder / "doc.pdf").write_bytes(b"%PDF-1.4\n")
    (folder / "image.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (folder / ".hidden.txt").write_text("not counted")
    drop(window, [folder])
    _classified(qtbot, window, 2)
    text = window.message.text()
    assert "skipped 2 files" in text and ".pdf" in text and ".svg" in text and "not a photo format" in text, text


def test_videos_in_a_folder_are_named_as_videos_with_where_to_open_them(tmp_path):
    from cnndesk.qt.jobs import not_images

    (tmp_path / "clip.mp4").write_bytes(b"\0" * 16)
    (tmp_path / "trip.MOV").write_bytes(b"\0" * 16)
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4\n")
    skipped = not_images([str(tmp_path)])
    assert (skipped.count, skipped.videos) == (3, 2)
    text = skipped.describe()
    assert "skipped 1 file that is not a photo format" in text and ".pdf" in text, text
    assert "2 videos (" in text and ".mp4" in text and ".mov" in text and "Camera / Video" in text, text
    assert ".mp4" not in text.split("videos")[0]  # a video is not called "not a photo format"
    (tmp_path / "notes.pdf").unlink()
    only = not_images([str(tmp_path)]).describe()
    assert only.startswith("skipped 2 videos") and "not a photo format" not in only, only


def test_the_sorted_box_takes_ctrl_z_and_closes_on_esc(qtbot, window, photo_folder, tmp_path):
    folder = photo_folder(3)
    originals = sorted(p.name for p in folder.iterdir())
    window.open_paths([str(folder)])
    _classified(qtbot, window, 3)
    window.folder.run_sort(str(tmp_path / "sorted"), "move", None, confirm=False)
    qtbot.waitUntil(lambda: window.folder.sorted_box is not None and window.folder.sorted_box.isVisible(),
                    timeout=20_000)
    box = window.folder.sorted_box
    assert not any(folder.iterdir())
    _activate(qtbot, box)
    qtbot.keyClick(box, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # "Ctrl+Z puts them back", it says
    qtbot.waitUntil(lambda: sorted(p.name for p in folder.iterdir()) == originals, timeout=20_000)
    assert not box.isVisible()
    window.folder.run_sort(str(tmp_path / "copies"), "copy", None, confirm=False)
    qtbot.waitUntil(lambda: window.folder.sorted_box is not box and window.folder.sorted_box.isVisible(), timeout=20_000)
    box = window.folder.sorted_box
    _activate(qtbot, box)
    qtbot.keyClick(box, Qt.Key.Key_Escape)
    assert not box.isVisible()
    qtbot.waitUntil(lambda: window.runner.active_count() == 0, timeout=10_000)
