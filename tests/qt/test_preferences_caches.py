"""Preferences: each cache's size, measured on a worker, and its Clear button."""

from __future__ import annotations

import os

from cnndesk.core.common import cache_budget


def test_preferences_show_cache_sizes_and_clear_on_a_worker(qtbot, tmp_path, monkeypatch):
    from cnndesk.qt.dialogs.preferences import PreferencesDialog
    from cnndesk.qt.settings import Settings
    from cnndesk.qt.workers import JobRunner

    cache = tmp_path / "cache"
    monkeypatch.setenv("CNNDESK_CACHE_DIR", str(cache))
    (cache / "embeddings").mkdir(parents=True)
    (cache / "embeddings" / "m.npz").write_bytes(os.urandom(2_500_000))
    (cache / "doctor").mkdir()
    (cache / "doctor" / "thumbs32.npz").write_bytes(os.urandom(300_000))
    runner = JobRunner()
    dlg = PreferencesDialog(Settings(), None, runner=runner)
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.cache_sizes["embeddings"].text() in ("measuring…", "2.5 MB")  # sizes come from the worker
    qtbot.waitUntil(lambda: dlg.cache_sizes["embeddings"].text() == "2.5 MB", timeout=10_000)
    assert dlg.cache_sizes["thumbnails"].text() == "300.0 kB"
    assert dlg.cache_sizes["exports"].text() == "0 bytes" and not dlg.cache_clear["exports"].isEnabled()
    assert "2.8 MB in all of the 2.0 GB cap;" in dlg.cache_note.text()
    os.makedirs(tmp_path / "shots", exist_ok=True)
    dlg.grab().save(str(tmp_path / "shots" / "preferences.png"))
    if os.environ.get("CNNDESK_SHOTS"):
        dlg.grab().save(os.path.join(os.environ["CNNDESK_SHOTS"], "preferences-caches.png"))
    assert dlg.cache_clear["embeddings"].isEnabled()
    dlg.cache_clear["embeddings"].click()
    qtbot.waitUntil(lambda: dlg.cache_sizes["embeddings"].text() == "0 bytes", timeout=10_000)
    assert not (cache / "embeddings" / "m.npz").exists() and (cache / "doctor" / "thumbs32.npz").exists()
    assert [c.size for c in cache_budget.info()] == [0, 300_000, 0]
    dlg.reject()
    assert runner.drain()
