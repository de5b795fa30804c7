"""The main window, offscreen: inputs, results, folders, exports, sorting, model switching,
cancellation and responsiveness."""

from __future__ import annotations

import csv
import json
import time

import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QImage

from cnndesk.qt.item_models.gallery import ItemRole


@pytest.fixture
def no_dialogs(monkeypatch):
    """Fail on any message box: errors must show inline, never a dialog per file."""
    from PySide6.QtWidgets import QMessageBox

    shown = []

    def record(*args, **kwargs):
        shown.append(args)
        return None

    monkeypatch.setattr(QMessageBox, "warning", record)
    monkeypatch.setattr(QMessageBox, "exec", lambda self: shown.append(self.text()))
    return shown


def _items(win):
    return [win.gallery_model.index(i).data(ItemRole) for i in range(win.gallery_model.rowCount())]


def _wait_classified(qtbot, win, n, timeout=30_000):
    qtbot.waitUntil(lambda: len(_items(win)) == n and all(i.prediction or i.error for i in _items(win)), timeout=timeout)


def test_starts_with_title_empty_state_and_device(window):
    assert window.windowTitle() == "cnndesk"
    assert window.stack.currentWidget() is window.drop_zone
    assert "CPU · ONNX Runtime" in window.device_label.text()
    assert not window.windowIcon().isNull()


def test_dropping_a_file_shows_its_result(drop, qtbot, window, samples, no_dialogs):
    mime = drop(window, [samples["coffee"]])
    _wait_classified(qtbot, window, 1)
    assert mime is not None
    assert window.stack.currentWidget() is window.tabs
    qtbot.waitUntil(lambda: window.panel.headline.text() == "espresso")
    assert "confident" in window.panel.detail.text()
    assert window.panel.bars.prediction.labels[0] == "espresso" and len(window.panel.bars.prediction.labels) == 5
    assert window.image_view.has_image()
    assert window.gallery_model.index(0).data().startswith("espresso\n")
    assert not no_dialogs


def test_several_files_and_a_corrupt_one_get_an_inline_badge(drop, qtbot, window, samples, tmp_path, no_dialogs):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(samples["cat"].read_bytes()[:1500])
    drop(window, [samples["cat"], bad, samples["rocket"]])
    _wait_classified(qtbot, window, 3)
    cat, broken, rocket = _items(window)
    assert cat.prediction and rocket.prediction and broken.error
    assert "broken.jpg" in broken.error and "truncated" in broken.error
    idx = window.gallery_model.index(1)
    assert idx.data() == "Can't read\nbroken.jpg" and "truncated" in idx.data(Qt.ItemDataRole.ToolTipRole)
    window.gallery.setCurrentIndex(idx)
    assert window.panel.headline.text() == "Can't read this file"
    assert "truncated" in window.panel.detail.text()
    assert not no_dialogs


def test_not_sure_below_threshold(drop, qtbot, window, samples):
    window.settings.set("threshold", 99)
    window.apply_preferences()
    drop(window, [samples["cat"]])
    _wait_classified(qtbot, window, 1)
    qtbot.waitUntil(lambda: window.panel.headline.text() == "Not sure")
    assert "Best guesses" in window.panel.detail.text()
    assert window.gallery_model.index(0).data() == "Not sure"


def test_paste_an_image_and_a_copied_file(qtbot, window, samples):
    QGuiApplication.clipboard().setImage(QImage(str(samples["coffee"])))
    window.act_paste.trigger()
    _wait_classified(qtbot, window, 1)
    item = _items(window)[0]
    assert item.name.startswith("Pasted image") and item.prediction.label == "espresso"
    from PySide6.QtCore import QMimeData, QUrl

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(samples["rocket"]))])
    QGuiApplication.clipboard().setMimeData(mime)
    window.paste()
    _wait_classified(qtbot, window, 2)
    assert _items(window)[1].name == "rocket.jpg"
    # Qt owns clipboard data until exit; a Python-made QMimeData destroyed after the interpreter
    # has gone crashes the process at exit, so give it back now
    QGuiApplication.clipboard().clear()


def test_open_dialog_and_try_a_sample(qtbot, window, samples, monkeypatch):
    from cnndesk.qt import file_dialogs

    monkeypatch.setattr(file_dialogs, "open_files", lambda *a, **k: [str(samples["cat"])])
    window.act_open.trigger()
    _wait_classified(qtbot, window, 1)
    window.drop_zone.btn_sample.click()
    _wait_classified(qtbot, window, 1 + len(samples))
    assert window.settings.get("last_folder") == str(samples["cat"].parent)


def test_folder_fills_the_table_and_exports(drop, qtbot, window, photo_folder, tmp_path, no_dialogs):
    folder = photo_folder(12)
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.jpg").write_bytes((folder / "img_0001.jpg").read_bytes())
    (folder / "zero.jpg").write_bytes(b"")
    drop(window, [folder])
    assert window.tabs.currentIndex() == 1
    qtbot.waitUntil(lambda: not window.runner.running("folder") and window.folder_panel.model.rowCount() == 14, timeout=60_000)
    rows = window.folder_panel.model.rows
    assert sum(1 for r in rows if r.error) == 1 and any(r.path.endswith("deep.jpg") for r in rows)
    assert window.folder_panel.export_csv.isEnabled()
    out = tmp_path / "results.csv"
    assert window.folder.export_to(str(out), "csv") == 14
    table = list(csv.DictReader(out.open()))
    assert len(table) == 14 and {r["path"] for r in table} == {r.path for r in rows}
    assert [r["error"] != "" for r in table].count(True) == 1
    out_json = tmp_path / "results.json"
    window.folder.export_to(str(out_json), "json")
    assert len(json.loads(out_json.read_text())) == 14
    # filters: by label and confidence
    proxy = window.folder_panel.proxy
    assert proxy.rowCount() == 14  # no filter until the user sets one
    assert window.folder_panel.label_filter.currentText() == ""
    label = rows[0].prediction.label
    window.folder_panel.label_filter.setEditText(label)
    assert 0 < proxy.rowCount() < 14
    window.folder_panel.label_filter.setEditText("")
    window.folder_panel.min_conf.setValue(101)  # clamps to 100 %: nothing is that sure
    assert proxy.rowCount() <= 1
    window.folder_panel.min_conf.setValue(0)
    window.folder_panel.uncertain.click()
    scores = [proxy.index(i, 3).data(proxy.sortRole()) for i in range(proxy.rowCount())]
    assert scores == sorted(scores)
    assert not no_dialogs


def test_cancel_mid_folder_stops_within_a_second(qtbot, window, photo_folder):
    folder = photo_folder(400, size=(640, 480))
    window.open_paths([str(folder)])
    qtbot.waitUntil(lambda: window.folder_panel.model.rowCount() >= 20, timeout=60_000)
    t0 = time.perf_counter()
    window.act_cancel.trigger()
    qtbot.waitUntil(lambda: window.runner.active_count() == 0, timeout=2000)
    assert time.perf_counter() - t0 < 1.0
    n = window.folder_panel.model.rowCount()
    assert n < 400
    qtbot.wait(300)
    assert window.folder_panel.model.rowCount() == n  # no late rows after cancel
    assert "Cancelled" in window.message.current()


def test_sort_into_folders_never_overwrites(qtbot, window, photo_folder, tmp_path):
    folder = photo_folder(6)
    window.open_paths([str(folder)])
    qtbot.waitUntil(lambda: not window.runner.running("folder") and window.folder_panel.model.rowCount() == 6, timeout=60_000)
    dest = tmp_path / "sorted"
    window.folder.run_sort(str(dest), "copy", None, confirm=False)
    qtbot.waitUntil(lambda: window.folder.last_sort_report is not None, timeout=10_000)
    first = window.folder.last_sort_report
    assert len(first.done) == 6 and first.renamed == 0
    window.folder.last_sort_report = None
    window.folder.run_sort(str(dest), "copy", 0.999, confirm=False)
    qtbot.waitUntil(lambda: window.folder.last_sort_report is not None, timeout=10_000)
    second = window.folder.last_sort_report
    assert len(second.done) == 6
    files = sorted(p for p in dest.rglob("*.jpg"))
    assert len(files) == 12  # nothing overwritten
    assert (dest / "_unsure").is_dir() and len(list((dest / "_unsure").iterdir())) == 6
    assert len(list(folder.glob("*.jpg"))) == 6  # copies leave the originals
    for src, target in first.done:
        assert target.read_bytes() == src.read_bytes()


def test_switching_model_reclassifies_the_gallery(drop, qtbot, window, samples, isolated_dirs):
    import timm
    import torch

    from cnndesk.core.common.paths import user_models_dir
    from cnndesk.core.models.files import save_model_file
    from cnndesk.core.models.registry import default_model

    drop(window, [samples["cat"], samples["coffee"]])
    _wait_classified(qtbot, window, 2)
    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=2)
    path = save_model_file(user_models_dir() / "pets.safetensors", model.state_dict(), arch="timm:tf_efficientnet_lite0",
                           labels=["cat", "dog"], preprocess=default_model().preprocess, name="pets")
    window.models.refresh_models()
    i = window.model_combo.findData(str(path.resolve()))
    assert i >= 0 and "(yours)" in window.model_combo.itemText(i)
    window.model_combo.setCurrentIndex(i)
    qtbot.waitUntil(lambda: window.clf is not None and window.clf.spec.name == "pets", timeout=60_000)
    qtbot.waitUntil(lambda: all(it.prediction and it.prediction.label in ("cat", "dog") for it in _items(window)), timeout=30_000)
    assert window.settings.get("last_model") == str(path.resolve())


def test_zoo_model_offline_says_so_and_keeps_the_old_model(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QApplication, QMessageBox

    monkeypatch.setenv("CNNDESK_OFFLINE", "1")
    warnings = []

    def boxes():  # the warning is a window-modal box that does not block (see test_app_training_models_and_quit)
        for w in QApplication.topLevelWidgets():
            if isinstance(w, QMessageBox) and w.isVisible() and (w.windowTitle(), w.text()) not in warnings:
                warnings.append((w.windowTitle(), w.text()))
        return bool(warnings)

    window.models.refresh_models()
    i = window.model_combo.findData("resnet50")
    assert "download" in window.model_combo.itemText(i)
    window.model_combo.setCurrentIndex(i)
    qtbot.waitUntil(boxes, timeout=10_000)
    assert warnings[0][0] == "No network connection" and "needs a network connection" in warnings[0][1]
    qtbot.waitUntil(lambda: window.clf is not None, timeout=60_000)
    assert window.clf.spec.name == "efficientnet-lite0"
    assert window.model_combo.currentData() == "efficientnet-lite0"


def test_ui_stays_responsive_while_a_folder_is_classified(qtbot, window, photo_folder):
    import threading

    folder = photo_folder(200, size=(800, 600))
    # an ONNX export left building in the background by an earlier test (fresh cache folders) holds
    # the GIL in long stretches: this test measures the folder job, so let such exports finish first
    qtbot.waitUntil(lambda: not any(t.name == "cnndesk-onnx-export" and t.is_alive() for t in threading.enumerate()),
                    timeout=180_000)
    gaps = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    # the click itself (measured apart): the first switch from the drop zone to the Folder results
    # tab polishes and lays out the tabs on the UI thread (80 of 118 ms in a profile), a one-off
    # before the job runs; it was counted as the job's first timer gap and failed the test
    clicked = clock.elapsed()
    window.open_paths([str(folder)])
    click_ms = clock.elapsed() - clicked
    last[0] = clock.elapsed()  # the first gap counts from here: the click has its own bound below
    qtbot.waitUntil(lambda: window.folder_panel.model.rowCount() == 200 and not window.runner.running("folder"), timeout=120_000)
    timer.stop()
    assert len(gaps) > 50
    assert max(gaps) <= 100, f"the UI thread stalled for {max(gaps)} ms while the folder was classified"
    assert click_ms <= 300, f"opening the folder took {click_ms} ms on the UI thread"


def test_status_messages_fade(qtbot, window):
    window.message.FADE_MS = 50
    window.status("Hello", 100)
    assert window.message.current() == "Hello"
    qtbot.waitUntil(lambda: window.message.current() == "", timeout=3000)
    window.status("Stays", 0)
    qtbot.wait(300)
    assert window.message.current() == "Stays"


def test_paths_on_the_command_line_open_and_classify(qtbot, classifier, samples, photo_folder):
    from cnndesk.qt.main_window import MainWindow

    folder = photo_folder(3)
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    win.start([str(samples["coffee"]), str(folder)])
    qtbot.waitUntil(lambda: len(_items(win)) == 1 and _items(win)[0].prediction is not None, timeout=60_000)
    qtbot.waitUntil(lambda: win.folder_panel.model.rowCount() == 3, timeout=60_000)
    assert _items(win)[0].prediction.label == "espresso"
    win.close()
    assert win.runner.pool.waitForDone(5000)


def test_preferences_and_window_state_persist(qtbot, window, qapp):
    from cnndesk.qt.main_window import MainWindow

    window.settings.set("top_k", 3)
    window.resize(760, 520)  # the offscreen screen is 800 x 600
    window.close()
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.settings.top_k == 3
    assert again.size().width() == 760 and again.size().height() == 520
    again.close()
