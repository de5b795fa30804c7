"""``cnndesk doctor DATA_DIR``: the dataset check on the command line."""

from __future__ import annotations

import os
import sys

from cnndesk.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    StatusLine,
    add_device,
    default_model,
    fail,
    progress_line,
    say,
    say_json,
    utf8_text,
)

HELP = "check a training folder for wrong labels, duplicates, leaks, outliers…"


def add_arguments(d) -> None:
    d.description = ("Check a dataset folder (one subfolder per class, or train/ and val/ (+ test/) "
                     "folders holding them) before training: suspected wrong labels (confident learning over "
                     "cross-validated predictions), near-duplicates, train/val leaks, outliers, unreadable and "
                     "tiny images, class imbalance and classes with too few images.")
    d.epilog = ("Exit codes: 0 no issues, 1 issues found, 2 usage error or not a dataset folder, "
                "3 model unavailable, 130 interrupted. Nothing in DATA_DIR is changed; ignores recorded "
                "by the app (.cnndesk-doctor.json in DATA_DIR) are honoured unless --all.")
    d.add_argument("data", metavar="DATA_DIR")
    d.add_argument("--format", "-f", choices=("table", "json"), default="table", help="output format (default table)")
    d.add_argument("--base", default=default_model(), metavar="MODEL", help="the network whose features are compared (default %(default)s)")
    add_device(d)
    d.add_argument("--all", action="store_true", help="also show issues that were marked as ignored, and label "
                   "suspicions without strong evidence (reported with their score)")
    d.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def run(args) -> int:
    from cnndesk.core.common.errors import Cancelled, CnndeskError, ModelError
    from cnndesk.core.doctor.check import check_dataset
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.training.datasets import DatasetError

    try:
        get_spec(args.base)
    except ModelError as exc:
        return fail(f"cnndesk doctor: error: {exc}", EXIT_USAGE)
    status = StatusLine() if not args.quiet and sys.stderr.isatty() else None
    try:
        rep = check_dataset(args.data, base=args.base, progress=progress_line(status), device=args.device, apply_ignores=not args.all,
                           less_likely=args.all)
    except DatasetError as exc:
        return fail(f"cnndesk doctor: error: {exc}", EXIT_USAGE)
    except Cancelled as exc:
        return fail(f"cnndesk: {exc}", EXIT_INTERRUPTED)
    except ModelError as exc:
        return fail(f"cnndesk doctor: {exc}", EXIT_MODEL)
    except CnndeskError as exc:
        return fail(f"cnndesk doctor: failed: {exc}", EXIT_SOME_FAILED)
    finally:
        if status:
            status.clear()
    if args.format == "json":  # names that are not UTF-8 as \xNN escapes: valid UTF-8 JSON
        say_json(utf8_text(rep.to_json()), indent=1)
    else:
        say(format_table(rep))
    return EXIT_SOME_FAILED if rep.issues else EXIT_OK


TITLES = {
    "label": "Probably in the wrong class folder", "leak": "The same picture in train and in val/test",
    "duplicate": "The same picture twice", "overlap": "Two pictures that share a part",
    "outlier": "Looks like none of the classes",
    "unreadable": "Cannot be used", "tiny": "Much smaller than the model's input",
    "imbalance": "Class imbalance", "too_few": "Too few images",
}


def format_table(rep) -> str:
    from cnndesk.core.common.safeio import display

    s = rep.summary
    when = " (unchanged since the last check)" if s.get("reused") else ""
    lines = [f"{s.get('images', 0)} images in {len(s.get('classes', []))} classes checked in {s.get('seconds', 0):.1f} s{when}"
             + (f" ({s['ignored']} ignored issues hidden)" if s.get("ignored") else "")]
    if not rep.issues:
        lines.append("No issues found.")
        return "\n".join(lines)

    def rel(p):
        if p is None:
            return ""
        r = os.path.relpath(p, rep.root)
        return p if r.startswith("..") else r

    for kind, items in rep.by_kind().items():
        lines.append("")
        lines.append(f"{TITLES.get(kind, kind)} ({kind}): {len(items)}")
        for i in items:  # names and labels through the one escaper: no control characters reach the terminal
            what = display(rel(i.path), 1000)
            if i.other:
                what += f"  ~  {display(rel(i.other), 1000)}"
            if i.suggested:
                what += f"  → {display(i.suggested)}"
            lines.append(f"  {i.score:4.2f}  {what}")
            lines.append(f"        {display(i.reason, 2000)}")
    return "\n".join(lines)
