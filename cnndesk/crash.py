"""What a user sees when something unexpected goes wrong: one plain line (CLI) or a dialog (app),
never a Python traceback; the full details go to a log file under the data folder
(``<data>/logs/cnndesk.log``, kept small by rotation). Qt-free.
"""

from __future__ import annotations

import datetime as _dt
import errno
import os
import sys
import traceback
from pathlib import Path

MAX_LOG_BYTES = 1 << 20


def log_path() -> Path:
    from cnndesk.core.common.paths import user_data_dir

    return user_data_dir() / "logs" / "cnndesk.log"


def plain_reason(exc: BaseException) -> str:
    """One line, in plain words, for any exception."""
    from cnndesk.core.common.errors import CnndeskError
    from cnndesk.core.common.safeio import describe_oserror, display

    if isinstance(exc, CnndeskError):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = "not enough memory for this job (try a smaller image or fewer at once)"
    elif isinstance(exc, RecursionError):
        text = "the input is nested too deeply to read"
    elif isinstance(exc, OSError):
        text = describe_oserror(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            text += "; nothing was written, free some space and try again"
    elif isinstance(exc, UnicodeError):
        text = f"a name or text could not be encoded ({exc.reason})" if hasattr(exc, "reason") else str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return display(" ".join(text.split()), 400)


def details(exc: BaseException) -> str:
    """The full report a developer needs (version, platform, traceback)."""
    from cnndesk import __version__

    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return (f"cnndesk {__version__} · Python {sys.version.split()[0]} · {sys.platform}\n"
            f"{_dt.datetime.now().isoformat(timespec='seconds')}\n{tb}")


def log_exception(exc: BaseException) -> Path | None:
    """Append the details to the log file; returns its path, or None when it cannot be written
    (a full or read-only disk must not cause a second error)."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if path.stat().st_size > MAX_LOG_BYTES:
                os.replace(path, path.with_name(path.name + ".1"))
        except FileNotFoundError:
            pass
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        with os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(details(exc) + "\n")
        return path
    except OSError:
        return None
