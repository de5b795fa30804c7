"""The command line: ``cnndesk`` opens the app; ``cnndesk classify|models|...`` work headless.

Every sub-command is one row of :data:`COMMANDS` (name, help, its arguments, the function that runs
it), in a module of this package per command group; adding a command is one module and one row.

Exit codes: 0 everything worked; 1 some inputs failed (the rest are still reported) or the job
failed (e.g. a full disk); 2 usage errors (bad options, unknown model, an output path that cannot
be written); 3 the model could not be loaded (e.g. offline, an unusable model file);
130 interrupted. No command ever ends with a Python traceback: an unexpected error prints one
line (exit 1) and its details go to the log file; ``--debug`` prints the traceback too.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass

from cnndesk import __version__
from cnndesk.cli import cache, classify, doctor, explain, export, gui, label, models, train, undo
from cnndesk.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    Parser,
    fail,
    say,
)

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]  # description, epilog and options
    run: Callable[[argparse.Namespace], int]  # returns the exit code
    needs_torch_for: str = ""  # what is missing without PyTorch, for the one-line message
    without_torch: str = ""  # what still works then


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("gui", gui.HELP, gui.add_arguments, gui.run),
    Command("classify", classify.CLASSIFY_HELP, classify.add_classify_arguments, classify.run_classify),
    Command("train", train.HELP, train.add_arguments, train.run, "full fine-tuning",
            " (quick training works: --mode quick)"),
    Command("export", export.HELP, export.add_arguments, export.run, "exporting"),
    Command("explain", explain.HELP, explain.add_arguments, explain.run, "Grad-CAM",
            " (occlusion works: --method occlusion)"),
    Command("merge", classify.MERGE_HELP, classify.add_merge_arguments, classify.run_merge),
    Command("doctor", doctor.HELP, doctor.add_arguments, doctor.run),
    Command("label", label.HELP, label.add_arguments, label.run, "full training",
            " (quick training works: --train-mode quick)"),
    Command("models", models.HELP, models.add_arguments, models.run),
    Command("cache", cache.HELP, cache.add_arguments, cache.run),
    Command("undo", undo.HELP, undo.add_arguments, undo.run),
)}


def build_parser(only: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, the other sub-commands get their name and help but not
    their options (building those may import the core modules their defaults come from)."""
    p = Parser(
        prog="cnndesk",
        description="Classify images with a convolutional neural network, on your machine, offline. "
        "With no command (or with image files/folders) the desktop app opens.",
        epilog="Exit codes: 0 ok, 1 some inputs failed or the job failed, 2 usage error, 3 model unavailable. "
        "Unexpected errors print one line; --debug prints the details (also kept in the log file).",
    )
    p.add_argument("--debug", action="store_true", help="print full error details (tracebacks) and debug logs")
    p.add_argument("--version", action="version", version=f"cnndesk {__version__}")
    p.add_argument("--selftest", action="store_true", help="check this installation end to end (offscreen) and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for c in COMMANDS.values():
        sp = sub.add_parser(c.name, help=c.help)
        if only is None or c.name in only:
            c.add_arguments(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("CNNDESK_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="cnndesk: %(message)s")
    try:
        return _main(argv)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        return fail("cnndesk: interrupted", EXIT_INTERRUPTED)
    except BaseException as exc:  # the top-level handler: one line, never a traceback
        return _report_unexpected(exc, debug)


def _report_unexpected(exc: BaseException, debug: bool) -> int:
    from cnndesk import crash
    from cnndesk.core.common.errors import ModelError
    from cnndesk.core.common.safeio import OutputError

    where = crash.log_exception(exc)
    if debug:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    hint = "" if debug else " (run with --debug for details" + (f"; logged to {where})" if where else ")")
    if isinstance(exc, OutputError):
        hint = ""
    try:
        say(f"cnndesk: error: {crash.plain_reason(exc)}{hint}", sys.stderr)
    except Exception:
        pass
    if isinstance(exc, OutputError):
        return EXIT_USAGE
    if isinstance(exc, ModelError):
        return EXIT_MODEL
    return EXIT_SOME_FAILED


def _finish_exports(args) -> None:
    """A command that answered with PyTorch while the model's export was being built (a few
    images, no export yet) finishes that export before returning, while the interpreter is whole
    (at exit the export's imports fail), so that the next call answers with ONNX Runtime."""
    if args.command == "gui" or "cnndesk.core.runtime.backends" not in sys.modules:
        return
    from cnndesk.core.runtime.backends import background_exports_running, finish_background_exports

    if background_exports_running():
        sys.stdout.flush()  # the answers first, then why the process is still running
        if not getattr(args, "quiet", False):
            say("cnndesk: optimising the model for this CPU (once; about 10-20 s) so later runs answer faster…",
                sys.stderr)
    try:
        finish_background_exports()
    except KeyboardInterrupt:  # the answers are out; the export cannot be stopped midway: exit waits for it
        say("cnndesk: finishing the optimisation before exiting…", sys.stderr)


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--selftest"]:
        from cnndesk.selftest import run

        return run()
    qt_args: list[str] = []
    if not argv or argv[0] == "gui" or argv[0] not in COMMANDS:  # Qt's own options go to Qt
        from cnndesk.qtargs import split_qt_args

        argv, qt_args = split_qt_args(argv)
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        argv = ["gui", *argv]
    args = build_parser(only=argv[:1]).parse_args(argv)
    if args.command is None:
        args = build_parser(only=["gui"]).parse_args(["gui"])
    args.qt_args = qt_args
    command = COMMANDS[args.command]
    try:
        code = command.run(args)
        _finish_exports(args)
        return code
    except KeyboardInterrupt:
        return fail("cnndesk: interrupted", EXIT_INTERRUPTED)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("torch", "torchvision", "timm", "onnxscript"):
            raise
        from cnndesk.core.common.system import FULL_ONLY

        return fail(f"cnndesk: {command.needs_torch_for or 'this'} {FULL_ONLY}{command.without_torch}", EXIT_MODEL)
    except BrokenPipeError:  # `cnndesk classify ... | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return EXIT_OK
