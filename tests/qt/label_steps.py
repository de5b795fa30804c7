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
