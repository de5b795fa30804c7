"""``cnndesk label DIR``: label a folder from the command line (scripts and benchmarks).

One call = one step of a labelling session whose answers live in the labels file (CSV
``path,label``): ``--ask N`` lists the images worth labelling next, ``--suggest`` the suggested
label of every other image, ``--write OUT`` the class-folder dataset.
"""

from __future__ import annotations

import sys

from cnndesk.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    StatusLine,
    fail,
    positive_int,
    progress_line,
    say,
    say_json,
)

HELP = "label a folder of unsorted images: what to label next, suggestions, write a dataset"


def add_arguments(p) -> None:
    p.description = (
        "Label a folder of unsorted images (subfolders included) with the CNN doing most of the sorting. "
        "Answers so far come from --labels FILE (CSV with the header path,label; a path relative to DIR "
        "or absolute; an empty label = skipped; _none = none of these classes) and, with "
        "--subfolders-are-labels, from the subfolder names. Embeddings are cached, so a second call on "
        "the same folder starts at once.")
    p.epilog = (
        "JSON: --ask N gives {\"ask\": [{\"path\", \"reason\"}], \"labelled\": n, \"classes\": [...]}; "
        "--suggest gives {\"suggestions\": [{\"path\", \"label\", \"score\", \"unknown\"}], \"calibrated\": bool, "
        "\"estimated_accuracy\": float or null}; --write gives {\"out\", \"mode\", \"written\", \"counts\", \"failed\"}. "
        "Paths are relative to DIR. Exit codes: 0 ok, 1 some files could not be written, 2 bad input "
        "(missing/empty folder, no readable image, a bad labels file, an invalid class name, an output "
        "folder that exists and is not empty without --force), 3 model unavailable, 130 interrupted. "
        "--write records the operation in the app's undo journal.")
    p.add_argument("folder", metavar="DIR", help="the folder of images to label")
    p.add_argument("--labels", metavar="FILE", help="the answers so far: CSV path,label")
    p.add_argument("--subfolders-are-labels", action="store_true",
                   help="an image's subfolder name is its class (otherwise subfolders are just part of the pile)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--ask", type=positive_int, metavar="N", help="the N images worth labelling next, best first")
    what.add_argument("--suggest", action="store_true", help="a suggested label for every unlabelled image")
    what.add_argument("--write", metavar="OUT", help="write the labelled images as class folders under OUT")
    p.add_argument("--mode", choices=("copy", "move", "link"), help="with --write: copy (default), move or symlink")
    p.add_argument("--force", action="store_true", help="with --write: write into an existing non-empty OUT")
    p.add_argument("--format", "-f", choices=("table", "json"), default="table", help="output format (default table)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def run(args) -> int:
    from cnndesk.core.common.errors import Cancelled, CnndeskError, ModelError
    from cnndesk.core.labelling import LabelError, LabelSession

    if args.write is None and (args.mode is not None or args.force):
        return fail("cnndesk label: error: --mode and --force go with --write", EXIT_USAGE)
    status = StatusLine() if not args.quiet and sys.stderr.isatty() else None
    try:
        session = LabelSession.open(args.folder, labels_file=args.labels,
                                    subfolders_are_labels=args.subfolders_are_labels,
                                    progress=progress_line(status))
        if args.ask is not None:
            out = _ask(session, args.ask)
        elif args.suggest:
            out = _suggest(session)
        else:
            res = session.write_dataset(args.write, mode=args.mode or "copy", force=args.force,
                                        progress=progress_line(status))
            out = {"out": str(res.destination), "mode": res.mode, "written": len(res.done),
                   "counts": res.counts, "failed": res.failed}
    except LabelError as exc:
        return fail(f"cnndesk label: error: {exc}", EXIT_USAGE)
    except Cancelled as exc:
        return fail(f"cnndesk: {exc}", EXIT_INTERRUPTED)
    except ModelError as exc:
        return fail(f"cnndesk label: {exc}", EXIT_MODEL)
    except CnndeskError as exc:
        return fail(f"cnndesk label: failed: {exc}", EXIT_SOME_FAILED)
    finally:
        if status:
            status.clear()
    for note in session.notes:
        if not args.quiet:
            say(f"cnndesk label: note: {note}", file=sys.stderr)
    if args.format == "json":
        say_json(out, indent=1)
    else:
        say(format_table(out))
    return EXIT_SOME_FAILED if out.get("failed") else EXIT_OK


def _ask(session, n: int) -> dict:
    rows = [{"path": session.relative(q.index), "reason": q.reason} for q in session.ask(n)]
    return {"ask": rows, "labelled": len(session.labelled), "classes": list(session.classes)}


def _suggest(session) -> dict:
    rep = session.suggestions()
    rows = [{"path": session.relative(r.index), "label": r.label, "score": r.score, "unknown": r.unknown}
            for r in rep.rows]
    return {"suggestions": rows, "calibrated": rep.calibrated, "estimated_accuracy": rep.estimated_accuracy}


def format_table(out: dict) -> str:
    from cnndesk.core.common.safeio import display

    lines: list[str] = []
    if "ask" in out:
        classes = ", ".join(display(c, 40) for c in out["classes"]) or "none yet"
        lines.append(f"{out['labelled']} labelled; classes: {classes}")
        lines.append("Label these next:")
        lines += [f"  {display(r['path'])}  ({display(r['reason'])})" for r in out["ask"]]
    elif "suggestions" in out:
        acc = out["estimated_accuracy"]
        lines.append(("calibrated" if out["calibrated"] else "not calibrated yet (too few labels): scores are kept low")
                     + (f"; estimated accuracy {acc:.0%}" if acc is not None else ""))
        for r in out["suggestions"]:
            label = display(r["label"], 40) if r["label"] is not None else "-"
            flag = "  unknown?" if r["unknown"] else ""
            lines.append(f"  {r['score']:5.0%}  {label:<20}  {display(r['path'])}{flag}")
    else:
        lines.append(f"{out['written']} images written to {display(out['out'])} ({out['mode']})")
        lines += [f"  {display(c, 60)}: {n}" for c, n in sorted(out["counts"].items())]
        lines += [f"  failed: {display(m)}" for m in out["failed"]]
    return "\n".join(lines)
