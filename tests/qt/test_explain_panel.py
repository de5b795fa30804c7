"""The "Inside the CNN" tab, offscreen: heatmap, class choice, layers with feature maps, filters,
summary, saving."""

from __future__ import annotations

from PIL import Image


def test_inside_the_cnn_tab(qtbot, window, samples, tmp_path, drop):
    drop(window, [samples["coffee"]])
    qtbot.waitUntil(lambda: window.gallery_model.rowCount() == 1 and window.gallery_model.items[0].prediction is not None, timeout=30_000)
    window.gallery.setCurrentIndex(window.gallery_model.index(0))
    window.show_explain()
    panel = window.explain_panel
    if panel.explainer is None:  # PyTorch loads on a worker: the panel says so (not a blank page)
        assert panel.caption.text().startswith("Loading PyTorch")
    # a heatmap that a second request replaces leaves the screen: wait until the last one is shown
    qtbot.waitUntil(lambda: panel.result is not None and not panel.runner.running("heat"), timeout=120_000)
    assert not panel.caption.text().startswith("Loading PyTorch")
    assert panel.title.text() == "Inside the CNN — coffee.jpg"
    assert window.spec.labels[panel.result.index] == "espresso"
    assert panel.cls.itemText(0).startswith("espresso") and panel.cls.count() == 1000
    assert panel.layers.count() == len(panel.stages) == 13
    assert len(panel.filters.tiles) == 32  # the first convolution's channels
    assert "multiply-accumulates" in panel.summary.toPlainText()
    # another class, then occlusion
    first = panel.result
    panel.cls.setCurrentIndex(1)
    qtbot.waitUntil(lambda: panel.result is not None and panel.result is not first, timeout=60_000)
    assert window.spec.labels[panel.result.index] == window.gallery_model.items[0].prediction.labels[1]
    second = panel.result
    panel.method.setCurrentIndex(1)
    qtbot.waitUntil(lambda: panel.result is not None and panel.result is not second, timeout=60_000)
    # a stage's feature maps
    panel.layers.setCurrentRow(4)  # blocks.2
    qtbot.waitUntil(lambda: len(panel.maps.tiles) > 0, timeout=30_000)
    assert len(panel.maps.tiles) == 40 and "Block" in panel.caption.text()
    panel._enlarge_map(0)
    assert panel.enlarged.isVisible()
    panel.enlarged.close()
    out = tmp_path / "heat.png"
    assert panel.save_to(str(out)) and Image.open(out).size == (600, 400)
    qtbot.waitUntil(lambda: window.runner.active_count() == 0, timeout=30_000)
