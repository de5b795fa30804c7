"""``cnndesk label DIR``: label a folder from the command line (scripts and benchmarks).

One call = one step of a labelling session whose answers live in the labels file (CSV
``path,label``): ``--ask N`` lists the images worth labelling next, ``--suggest`` the suggested
label of every other image, ``--write OUT`` the class-folder dataset, ``--train MODEL_FILE`` a
model straight from the labels (no dataset folder; the same model ``cnndesk train`` makes).
"""

from __future__ import annotations

import sys
import unicodedata

from cnndesk.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    CtrlC,
    StatusLine,
    fail,
    positive_int,
    progress_line,
    say,
    say_json,
    utf8_text,
)

HELP = "label a folder of unsorted images: what to label next, suggestions, write a dataset, train"


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
        "\"estimated_accuracy\": float or null}; --write gives {\"out\", \"mode\", \"written\", \"counts\", \"failed\", \"already\", \"undo\", \"elsewhere\"} (already: images whose copy "
        "or link was already in their class folder, not written twice; undo: the ID for `cnndesk undo ID`, null "
        "when nothing was written; elsewhere: copies or links an earlier write left in another class folder of OUT, "
        "as FOLDER/NAME: images relabelled since, now in two classes); "
        "--train gives {\"model\", \"mode\", \"classes\", \"counts\", \"val_accuracy\", \"seconds\", \"warnings\"}. "
        "Paths are relative to DIR. Exit codes: 0 ok, 1 some files could not be written, 2 bad input "
        "(missing/empty folder, no readable image, a bad labels file, an invalid class name, an output "
        "folder that exists and is not empty without --force, fewer than two classes or a class with fewer "
        "than 2 labelled images for --train), 3 model unavailable, 130 interrupted. "
        "--write records the operation in the app's undo journal: `cnndesk undo` (or the app's Edit > Undo) puts it back. Either --train MODEL_FILE, or "
        "--write OUT then `cnndesk train OUT --out MODEL_FILE`, gives a model for `cnndesk classify --model`.")
    p.add_argument("folder", metavar="DIR", help="the folder of images to label")
    p.add_argument("--labels", metavar="FILE", help="the answers so far: CSV path,label (rows an earlier --write --mode move took out of DIR are left out, with a note)")
    p.add_argument("--subfolders-are-labels", action="store_true",
                   help="an image's subfolder name is its class (otherwise subfolders are just part of the pile)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--ask", type=positive_int, metavar="N", help="the N images worth labelling next, best first")
    what.add_argument("--suggest", action="store_true", help="a suggested label for every unlabelled image")
    what.add_argument("--write", metavar="OUT", help="write the labelled images as class folders under OUT")
    what.add_argument("--train", metavar="MODEL_FILE",
                      help="train a model on the labelled images (no dataset folder needed) and save it as MODEL_FILE")
    p.add_argument("--train-mode", choices=("quick", "full"),
                   help="with --train: quick (default, seconds: a new head on the cached features) or full (minutes)")
    p.add_argument("--mode", choices=("copy", "move", "link"), help="with --write: copy (default), move or symlink")
    p.add_argument("--force", action="store_true", help="with --write: write into an existing non-empty OUT; with --train: replace MODEL_FILE")
    p.add_argument("--format", "-f", choices=("table", "json"), default="table", help="output format (default table)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def run(args) -> int:
    from cnndesk.core.common.errors import Cancelled, CnndeskError, ModelError
    from cnndesk.core.labelling import LabelError, LabelSession

    if args.write is None and args.mode is not None:
        return fail("cnndesk label: error: --mode goes with --write", EXIT_USAGE)
    if args.train_mode is not None and args.train is None:
        return fail("cnndesk label: error: --train-mode goes with --train", EXIT_USAGE)
    if args.force and args.write is None and args.train is None:
        return fail("cnndesk label: error: --force goes with --write or --train", EXIT_USAGE)
    if args.train is not None:
        from cnndesk.core.common.safeio import OutputError

        try:
            args.train = _model_file(args.train, args.force)
        except OutputError as exc:
            return fail(f"cnndesk label: error: {exc}", EXIT_USAGE)
    status = StatusLine() if not args.quiet and sys.stderr.isatty() else None
    stopped = 0
    try:
        session = LabelSession.open(args.folder, labels_file=args.labels,
                                    subfolders_are_labels=args.subfolders_are_labels,
                                    progress=progress_line(status))
        if args.ask is not None:
            out = _ask(session, args.ask)
        elif args.suggest:
            out = _suggest(session)
        elif args.train is not None:
            out = _train(session, args.train, args.train_mode or "quick", args.force, status)
        else:
            with CtrlC() as cancel:  # Ctrl+C stops between files; what was written stays undoable
                res = session.write_dataset(args.write, mode=args.mode or "copy", force=args.force,
                                            progress=progress_line(status), cancel=cancel)
            stopped = res.stopped_of
            out = {"out": str(res.destination), "mode": res.mode, "written": len(res.done),
                   "counts": res.counts, "failed": res.failed, "already": res.already,
                   "undo": getattr(res.entry, "id", None), "elsewhere": res.elsewhere}
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
    for note in session.notes + _unreadable_note(session):
        if not args.quiet:
            say(f"cnndesk label: note: {note}", file=sys.stderr)
    if args.format == "json":
        say_json(utf8_text(out), indent=1)  # a name that is not UTF-8 as the \\xNN text --labels reads
    else:
        say(format_table(out))
    if stopped:
        undo = f"; `cnndesk undo {out['undo']}` puts them back" if out["undo"] else ""
        return fail(f"cnndesk label: interrupted after {out['written']} of {stopped} images{undo}", EXIT_INTERRUPTED)
    return EXIT_SOME_FAILED if out.get("failed") else EXIT_OK


def _model_file(path: str, force: bool) -> str:
    """The --train output like `cnndesk train --out`'s: .safetensors added, refused before any work
    when it is a folder, exists (without --force) or its folder is missing (OutputError)."""
    import os

    from cnndesk.core.common.safeio import check_output

    out = path if path.endswith(".safetensors") else path + ".safetensors"
    if os.path.isdir(path):
        check_output(path, force=force)
    check_output(out, force=force)
    return out


def _train(session, path: str, mode: str, force: bool, status) -> dict:
    from pathlib import Path

    from cnndesk.core.labelling import training

    ds = training.dataset_from_labels(session.root, training.labels_of(session))
    model = training.train_from_labels(ds, mode, progress=progress_line(status))
    if model.cancelled:
        from cnndesk.core.common.errors import Cancelled

        raise Cancelled("training stopped; nothing was saved")
    target = Path(path)
    saved = model.save(target, name=target.stem, overwrite=force)
    acc = model.evaluation.accuracy if model.evaluation is not None else None
    return {"model": str(saved), "mode": mode, "classes": list(ds.classes), "counts": ds.counts(),
            "val_accuracy": None if acc is None else round(float(acc), 4), "seconds": round(model.seconds, 1),
            "warnings": list(ds.warnings)}


def _unreadable_note(session) -> list[str]:
    """One line naming the files of the folder that cannot be read (left out of every answer)."""
    from cnndesk.core.labelling.folder import unreadable_line

    bad = session.unreadable
    if not bad:
        return []
    named = "; ".join(unreadable_line(p, r, session.root) for p, r in bad[:5])
    more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
    return [f"{len(bad)} file{'s' if len(bad) != 1 else ''} cannot be read and {'are' if len(bad) != 1 else 'is'} left out: {named}{more}"]


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
        lines += [f"  {display(r['path'])}  ({display(r['reason'])})" for r in out["ask"]] or [
            "  nothing: every readable image is answered or a near-copy of an answered one"]
    elif "suggestions" in out:
        acc = out["estimated_accuracy"]
        lines.append(("calibrated" if out["calibrated"] else "not calibrated yet (too few labels): scores are kept low")
                     + (f"; estimated accuracy {acc:.0%}" if acc is not None else ""))
        for r in out["suggestions"]:
            label = display(r["label"], 40) if r["label"] is not None else "-"
            flag = "  unknown?" if r["unknown"] else ""
            lines.append(f"  {r['score']:5.0%}  {label}{' ' * max(0, 20 - cells(label))}  {display(r['path'])}{flag}")
    elif "model" in out:
        acc = out["val_accuracy"]
        lines.append(f"Saved {display(out['model'])} ({out['mode']}, {len(out['classes'])} classes"
                     + (f", validation accuracy {acc:.1%}" if acc is not None else "") + f", {out['seconds']} s)")
        lines += [f"  {display(c, 60)}: {n}" for c, n in sorted(out["counts"].items())]
        lines += [f"  note: {display(w)}" for w in out["warnings"]]
        lines.append(f"Classify with it: cnndesk classify FILES --model {display(out['model'])}")
    else:
        lines.append(f"{out['written']} images written to {display(out['out'])} ({out['mode']})"
                     + (f"; {out['already']} already there, not written twice" if out.get("already") else ""))
        lines += [f"  {display(c, 60)}: {n}" for c, n in sorted(out["counts"].items())]
        lines += [f"  failed: {display(m)}" for m in out["failed"]]
        if out.get("elsewhere"):
            shown = out["elsewhere"]
            lines.append(f"  note: {len(shown)} labelled image{'s are' if len(shown) != 1 else ' is'} also in another class "
                         "folder, under an earlier label (remove those copies): "
                         + ", ".join(display(e, 80) for e in shown[:5]) + (", …" if len(shown) > 5 else ""))
        if out.get("undo"):
            lines.append(f"Undo it with: cnndesk undo {out['undo']}")
    return "\n".join(lines)


def cells(text: str) -> int:
    """About how many terminal columns ``text`` takes: CJK and most emoji take two, combining
    marks none, an emoji joined to the one before by a zero-width joiner none, and an emoji made
    wide by the emoji variation selector two (a class named 圆形 pushed its row's file name two
    columns right). Terminals differ on the rest."""
    n, prev, last = 0, "", 0
    for c in text:
        if c == "\ufe0f":
            w = 1 if last == 1 else 0
        elif prev == "\u200d" or unicodedata.category(c) in ("Mn", "Me", "Cf"):
            w = 0
        else:
            w = 2 if unicodedata.east_asian_width(c) in "WF" else 1
        n, prev, last = n + w, c, w
    return n
