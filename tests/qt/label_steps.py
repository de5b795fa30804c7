"""Steps the Label workspace tests share."""

from __future__ import annotations


def idle(qtbot, ws):
    """Wait until the workspace has no job running or queued."""
    qtbot.waitUntil(lambda: not ws.busy, timeout=30_000)


def open_pile(qtbot, ws, root):
    """Open ``root`` in the workspace and wait until it is shown and idle."""
    ws.open_folder(str(root))
    qtbot.waitUntil(lambda: ws.session is not None and ws.view is not None, timeout=30_000)
    idle(qtbot, ws)


def answer(qtbot, ws, pairs, refresh: bool = False):
    """Answer (path, class) ``pairs`` as the keys do (queued, then applied in one job; with
    ``refresh`` the suggestions are refitted too) and wait until the workspace is idle."""
    for path, label in pairs:
        ws._queue_op("answer", (ws.session.index(path), label), False)
    if refresh:
        ws._refresh_wanted = True
    ws._pump()
    idle(qtbot, ws)


def slow_refits(monkeypatch, seconds: float) -> None:
    """Every job that refits the suggestions takes ``seconds`` longer (a big folder's refit)."""
    import time

    from cnndesk.qt import label_jobs

    apply_ops = label_jobs.apply_ops

    def slow(job, session, ops, refresh, ask):
        if refresh:
            time.sleep(seconds)
        return apply_ops(job, session, ops, refresh, ask)

    monkeypatch.setattr(label_jobs, "apply_ops", slow)
