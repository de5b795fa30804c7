"""``cnndesk undo``: put back what cnndesk did to the user's files — the app's Edit ▸ Undo, headless.

``cnndesk undo`` undoes the newest operation in the undo journal (``cnndesk label --write``, "Sort
into folders", a relabel in the app); ``cnndesk undo --list`` shows what can be undone, newest
first; ``cnndesk undo ID`` undoes that one. The journal is the app's, so either side undoes what
the other did. Exit codes: 0 done (or nothing to undo); 1 some files were left as they are (a file
appeared where one would go back, a copy was changed since); 2 an unknown or ambiguous ID;
130 interrupted (Ctrl+C stops between files; the rest stays in the journal for the next undo).
"""

from __future__ import annotations

from cnndesk.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    fail,
    say,
    say_json,
    utf8_text,
)

HELP = "undo the newest file operation (label --write, sort, relabel), or list them"


def add_arguments(p) -> None:
    p.description = ("Put back what cnndesk did to your files: moved files go back where they were (never "
                     "over a file that appeared there since), copies and links it made are removed while "
                     "unchanged, folders it made and left empty are removed. The app's Edit ▸ Undo uses "
                     "the same journal.")
    p.epilog = ("JSON: --list gives {\"operations\": [{\"id\", \"description\", \"kind\", \"mode\", \"files\", \"time\"}]} "
                "(newest first); an undo gives {\"id\", \"description\", \"restored\", \"skipped\", \"left\"} "
                "(skipped: why each file was left as it is; left: files not reached before Ctrl+C). "
                "Exit codes: 0 done or nothing to undo, 1 some files left as they are, 2 unknown or "
                "ambiguous ID, 130 interrupted.")
    p.add_argument("id", nargs="?", metavar="ID", help="the operation to undo (from --list; a unique prefix is "
                   "enough); default: the newest")
    p.add_argument("--list", action="store_true", help="list the operations that can be undone, newest first")
    p.add_argument("--format", "-f", choices=("table", "json"), default="table", help="output format (default table)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def run(args) -> int:
    from cnndesk.core.common.safeio import display
    from cnndesk.core.organize.journal import Journal

    journal = Journal()
    entries = journal.entries()
    if args.list:
        if args.id is not None:
            return fail("cnndesk undo: error: --list takes no ID", EXIT_USAGE)
        return _list(entries, args.format)
    if args.id is None:
        entry = entries[-1] if entries else None
    else:
        found = [e for e in entries if e.id.startswith(args.id.strip().lower())] if args.id.strip() else []
        if len(found) != 1:
            why = "matches several operations" if found else "is not an operation that can be undone"
            return fail(f"cnndesk undo: error: {args.id!r} {why} (see cnndesk undo --list)", EXIT_USAGE)
        entry = found[0]
    if entry is None:
        if args.format == "json":
            say_json({"id": None, "description": None, "restored": 0, "skipped": [], "left": 0})
        else:
            say("Nothing to undo.")
        return EXIT_OK
    rep = _undo(journal, entry, args.quiet)
    if args.format == "json":
        say_json(utf8_text({"id": entry.id, "description": entry.description, "restored": len(rep.restored),
                            "skipped": rep.skipped, "left": rep.left}), indent=1)
    else:
        # one line each: a folder or file name with a line break must not print a line of its own
        say(display(rep.describe().replace("(Undo again for the rest)", "(run cnndesk undo again for the rest)"), 1 << 20))
        for why in rep.skipped[3:]:
            say(f"  left as it is: {display(why)}")
    if rep.left:
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if rep.skipped else EXIT_OK


def _undo(journal, entry, quiet: bool):
    """Undo ``entry`` with Ctrl+C turned into a Cancel between files (a KeyboardInterrupt in the
    middle of a move would leave the journal saying nothing about the files already put back)."""
    import sys

    from cnndesk.cli.common import CtrlC, StatusLine, progress_line

    status = StatusLine() if not quiet and sys.stderr.isatty() else None
    try:
        with CtrlC() as cancel:
            return journal.undo(entry, progress_line(status), cancel)
    finally:
        if status:
            status.clear()


def _list(entries, fmt: str) -> int:
    import time

    from cnndesk.core.common.safeio import display

    newest = list(reversed(entries))
    if fmt == "json":
        say_json(utf8_text({"operations": [{"id": e.id, "description": e.description, "kind": e.kind, "mode": e.mode,
                                            "files": len(e.pairs),
                                            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(e.time))}
                                           for e in newest]}), indent=1)
        return EXIT_OK
    if not newest:
        say("Nothing to undo.")
        return EXIT_OK
    rows = [("ID", "WHEN", "FILES", "WHAT")]
    rows += [(e.id, time.strftime("%Y-%m-%d %H:%M", time.localtime(e.time)), str(len(e.pairs)), display(e.description))
             for e in newest]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    say("\n".join("  ".join([*(x.ljust(widths[i]) for i, x in enumerate(r[:3])), r[3]]) for r in rows))
    return EXIT_OK
