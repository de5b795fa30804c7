"""Progress reporting and cooperative cancellation, with no Qt.

Long jobs take an optional ``progress`` callable and an optional :class:`CancelToken`. The Qt layer
wraps both in its worker abstraction; the CLI prints a bar; tests pass plain functions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from cnndesk.core.common.errors import Cancelled

# progress(done, total_or_None, message)
ProgressCallback = Callable[[int, "int | None", str], None]


class CancelToken:
    """A thread-safe cancellation flag (a ``threading.Event``) checked by long jobs."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def check(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()


def report(progress: ProgressCallback | None, done: int, total: int | None, message: str = "") -> None:
    if progress is not None:
        progress(done, total, message)
