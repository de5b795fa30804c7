"""``cnndesk gui [IMAGE_OR_FOLDER...]`` (the default command): the desktop app."""

from __future__ import annotations

from cnndesk.cli.common import EXIT_MODEL, fail

HELP = "open the desktop app (the default)"


def add_arguments(g) -> None:
    g.description = "Open the desktop app, optionally with images or folders to classify."
    g.add_argument("paths", nargs="*", metavar="IMAGE_OR_FOLDER")


def run(args) -> int:
    try:
        from cnndesk.qt.app import run_app
    except ImportError as exc:
        return fail(f"cnndesk: the desktop app cannot start: {exc}", EXIT_MODEL)
    return run_app(args.paths, getattr(args, "qt_args", []))
