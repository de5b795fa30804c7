"""What the commands share: exit codes, the parser class, argument types, the shared options
(model, device) and the progress lines on stderr. Importing this module stays cheap: the core
modules behind an option are imported when that command's arguments are built."""

from __future__ import annotations

import argparse
import sys
import time

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_MODEL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    pass


class ModelUnavailable(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 2 with a one-line message, like argparse, minus the noise
        self.print_usage(sys.stderr)
        say(f"{self.prog}: error: {message}", sys.stderr)  # the message may quote the user's text
        self.exit(EXIT_USAGE)


# -- argument types --------------------------------------------------------------------------------
def shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 0/4, got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"shard {text}: need 0 <= I < N")
    return i, n


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return v


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


# -- shared options --------------------------------------------------------------------------------
def default_model() -> str:
    from cnndesk.core.models.registry import DEFAULT_MODEL

    return DEFAULT_MODEL


def add_device(p: argparse.ArgumentParser, default: str = "auto", help: str | None = None) -> None:
    from cnndesk.core.runtime.devices import DEVICES  # the one device list

    p.add_argument("--device", choices=DEVICES, default=default, help=help)


# -- progress on stderr ----------------------------------------------------------------------------
class StatusLine:
    def __init__(self):
        self.shown = False

    def __call__(self, done, total, message):  # messages name files and labels: escaped
        from cnndesk.core.common.safeio import display

        sys.stderr.write("\r\033[K" + display(message, 300))
        sys.stderr.flush()
        self.shown = True

    def clear(self):
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def progress_line(status: StatusLine | None):
    """A core ``progress(done, total, text)`` callback that shows ``text done/total`` on ``status``."""

    def progress(done, total, text):
        if status:
            status(done, total, f"{text} {done}/{total}" if total else text)

    return progress


class ProgressBar:
    def __init__(self, total: int):
        self.total = total
        self.start = time.perf_counter()
        self.last = 0.0

    def __call__(self, done, total, message):
        now = time.perf_counter()
        if now - self.last < 0.1 and done < self.total:
            return
        self.last = now
        frac = done / self.total if self.total else 1.0
        width = 30
        filled = int(frac * width)
        rate = done / (now - self.start) if now > self.start else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        sys.stderr.write(
            f"\r\033[K[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
            f"{rate:.1f} img/s  ETA {fmt_secs(eta)}"
        )
        sys.stderr.flush()

    def clear(self):
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def fmt_secs(s: float) -> str:
    s = int(s + 0.5)
    return f"{s // 60}:{s % 60:02d}"


def say(text: object, file=None) -> None:
    """The CLI's one way to print text for a person: every line through the one escaper
    (``safeio.display``), so control characters in labels, file or folder names and messages
    (ESC sequences, CR, bidi overrides) never reach the terminal raw; line breaks between lines stay.
    (tests/core/test_terminal_text.py checks that the commands print through here.)"""
    from cnndesk.core.common.safeio import display

    print("\n".join(display(line, 1 << 20) for line in str(text).split("\n")), file=file or sys.stdout)


def say_json(obj: object, indent: int | None = None) -> None:
    """Print ``obj`` as JSON on stdout: UTF-8 text, with the C1 controls and bidi overrides that
    ``json.dumps`` leaves raw written as \\u escapes (still the same JSON value)."""
    import json
    import re

    text = json.dumps(obj, indent=indent, ensure_ascii=False)
    print(re.sub("[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text))


def utf8_text(obj):
    """``obj`` (JSON data: dicts, lists, strings...) with every string through ``safeio.path_text``:
    a file name that is not UTF-8 becomes the ``\\xNN`` text the labels file and the other commands
    accept, not a lone surrogate ("\\udcff") that a script cannot write back as UTF-8."""
    from cnndesk.core.common.safeio import path_text

    if isinstance(obj, str):
        return path_text(obj)
    if isinstance(obj, dict):
        return {utf8_text(k): utf8_text(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [utf8_text(v) for v in obj]
    return obj


def fail(message: str, code: int) -> int:
    """Print ``message`` on stderr (one line for the user, escaped) and return the exit ``code``."""
    say(message, sys.stderr)
    return code


class CtrlC:
    """``with CtrlC() as cancel:`` Ctrl+C (SIGINT), ``kill`` (SIGTERM) and a closed terminal (SIGHUP)
    set the CancelToken ``cancel`` instead of raising KeyboardInterrupt (or ending the process)
    wherever the main thread happens to be: a file operation stops between files and is still
    recorded in the undo journal (a KeyboardInterrupt while the journal entry was being written,
    or a SIGTERM mid-write, left files moved with nothing to undo them). Outside the main thread
    (tests calling main from a worker) the signals are left as they are."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __enter__(self):
        import signal

        from cnndesk.core.common.progress import CancelToken

        self.cancel = CancelToken()
        self.old: dict = {}
        for name in self.SIGNALS:
            sig = getattr(signal, name, None)
            if sig is None:  # SIGHUP: not on Windows
                continue
            try:
                self.old[sig] = signal.signal(sig, lambda *_: self.cancel.cancel())
            except ValueError:  # not the main thread
                break
        return self.cancel

    def __exit__(self, *exc) -> None:
        import signal

        for sig, old in self.old.items():
            signal.signal(sig, old)
