"""The Label workspace's jobs (issue 22): plain functions ``fn(job, ...)`` run by the worker
contract (:mod:`cnndesk.qt.workers`), like :mod:`cnndesk.qt.jobs` (kept apart so that module stays
small). A :class:`~cnndesk.core.labelling.LabelSession` is not thread-safe: the workspace hands
it to one of these jobs at a time and never touches it while one runs (its key presses wait in a
queue). Each job *creates* a :class:`LabelView` - plain data copied out of the session - that the
UI thread shows, so the grid and the counts never read the session itself."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cnndesk.core.common.errors import CnndeskError

# an op: (session method name, args); only these are accepted from the UI
OPS = frozenset({"answer", "skip", "none_of_these", "clear", "add_class", "name_group", "accept",
                 "accept_above", "accept_group", "undo", "set_group_count", "follow_undone"})


@dataclass(frozen=True)
class Suggested:
    label: str | None
    score: float
    unknown: bool


@dataclass(frozen=True)
class LabelView:
    """What the workspace shows, copied out of the session after a job."""

    session: Any  # the LabelSession it describes (the workspace drops views of an older one)
    version: int
    classes: list[str]
    counts: dict[str, int]
    states: list[str | None]  # per image: a class, SKIPPED, NONE or None
    can_undo: bool
    paths: list[str]  # per image (a dataset written by moving moves them)
    messages: list[str] = field(default_factory=list)  # what the ops said (refusals, undo texts)
    model_current: bool = True  # the suggestions were fitted on these answers (else a pause refits)
    refreshed: bool = False  # the fields below are filled (a refit ran)
    suggestions: list[Suggested | None] | None = None  # per image
    calibrated: bool = False
    accuracy: float | None = None
    questions: list = field(default_factory=list)  # core Questions, best first
    groups: list[list[int]] | None = None  # members per group, most typical first


@dataclass(frozen=True)
class Opened:
    view: LabelView
    root: str
    paths: list[str]
    names: list[str]  # relative to the folder, "/" separators
    unreadable: list[tuple[str, str]]
    notes: list[str]


def merge_views(old: LabelView, new: LabelView) -> LabelView:
    """A light view (no refit) keeps the last suggestions, groups and estimates."""
    from dataclasses import replace

    return replace(old, version=new.version, classes=new.classes, counts=new.counts, states=new.states,
                   can_undo=new.can_undo, paths=new.paths, messages=new.messages, model_current=new.model_current)


def by_label(view) -> dict[str, list[int]]:
    """The images of a :class:`LabelView` per suggested label (answered
    ones under their class), most confident first, the biggest section first."""
    out: dict[str, list[int]] = {}
    sugg = view.suggestions if view else None
    for i, s in enumerate(view.states if view else []):
        if s is not None:
            key = s if s in view.classes else "skipped / none of these"
        elif sugg and sugg[i] is not None and sugg[i].unknown:  # unlike the folder: even with no model yet
            key = "unknown"
        elif sugg and sugg[i] is not None and sugg[i].label is not None:
            key = sugg[i].label
        else:
            key = "no suggestion yet"
        out.setdefault(key, []).append(i)
    for rows in out.values():  # most confident first
        rows.sort(key=lambda i: -(sugg[i].score if sugg and sugg[i] is not None else 1.0))
    return dict(sorted(out.items(), key=lambda kv: -len(kv[1])))


def throttled(progress, every_s: float = 0.05):
    """A progress callback that passes at most one report per ``every_s`` (and the last one), so
    5,000 images do not queue 5,000 signals on the UI thread."""
    last = [0.0]

    def call(done, total=None, text=""):
        now = time.monotonic()
        if now - last[0] >= every_s or (total is not None and done >= total):
            last[0] = now
            progress(done, total, text)

    return call


def make_view(session, messages=(), refresh: bool = False, ask: int = 12, cancel=None) -> LabelView:
    """Copy what the UI shows out of ``session``; with ``refresh`` refit the suggestions first
    (the quick head, see :mod:`cnndesk.core.labelling.suggest`) and pick the next questions."""
    base = dict(session=session, version=session.version, classes=list(session.classes),
                counts=session.counts(), states=[session.state(i) for i in range(len(session.paths))],
                can_undo=session.can_undo, paths=list(session.paths), messages=list(messages),
                model_current=session.model_is_current)
    if not refresh:
        return LabelView(**base)
    if not session.model_is_current:
        session.fit(cancel)
    report = session.suggestions(include_answered=True)
    sugg: list[Suggested | None] = [None] * len(session.paths)
    for r in report.rows:  # no model yet (one class): no suggestion, not "<the class> 0 %" under every image
        sugg[r.index] = Suggested(r.label if r.score > 0 else None, float(r.score), bool(r.unknown))
    questions = session.ask(ask)
    groups = [list(g.members) for g in session.groups()]
    base["version"], base["model_current"] = session.version, session.model_is_current
    return LabelView(**base, refreshed=True, suggestions=sugg, calibrated=bool(report.calibrated),
                     accuracy=report.estimated_accuracy, questions=questions, groups=groups)


def open_folder(job, folder: str, subfolders_are_labels: bool, embed, duplicates: bool, ask: int) -> Opened:
    """Open a labelling session on ``folder`` (embeddings from the cache, the rest computed with
    progress and Cancel), group it and pick the first questions."""
    from cnndesk.core.labelling import LabelSession

    s = LabelSession.open(folder, subfolders_are_labels=subfolders_are_labels, progress=throttled(job.progress),
                          cancel=job.cancel, embed=embed, duplicates=duplicates, keep_answers=True)
    job.progress(0, None, "Grouping the folder")
    view = make_view(s, refresh=True, ask=ask, cancel=job.cancel)
    return Opened(view, s.root, list(s.paths), [s.relative(i) for i in range(len(s.paths))],
                  list(s.unreadable), list(s.notes))


def apply_ops(job, session, ops: list[tuple[str, tuple]], refresh: bool, ask: int) -> LabelView:
    """Apply the user's queued actions in order (a refused one says why and the rest go on),
    then copy the view out; with ``refresh`` the suggestions are refitted in the same job."""
    messages = []
    for name, args in ops:
        if name not in OPS:
            raise ValueError(f"not a labelling action: {name}")
        try:
            out = getattr(session, name)(*args)
        except (CnndeskError, KeyError, IndexError) as exc:
            messages.append(str(exc) if isinstance(exc, CnndeskError) else f"{name}: no such image or group")
            continue
        if name == "undo":
            # a file undo already says so ("Undid “Copy 5 files into out”: ..."), not "Undone: Undid ..."
            messages.append("Nothing to undo" if not out else out if out.startswith(("Undid ", "Already undone: "))
                            else f"Undone: {out}")
        elif name in ("accept", "accept_above", "accept_group", "name_group"):
            messages.append(out.description if out is not None else "Nothing to accept")
    keep(session, messages)
    return make_view(session, messages, refresh, ask, job.cancel)


QUICK_OPS = frozenset({"answer", "skip", "none_of_these", "clear", "add_class", "name_group"})  # no model, no files


def apply_at_quit(session, ops: list[tuple[str, tuple]]) -> None:
    """At quit, once no job runs: apply the answers still queued (given while a refit ran) up to
    the first that would need the model or move files, and keep them for the next run."""
    for name, args in ops:
        if name not in QUICK_OPS:
            break
        try:
            getattr(session, name)(*args)
        except (CnndeskError, KeyError, IndexError):
            continue
    keep(session, [])


def keep(session, messages: list[str]) -> None:
    """Keep the answers for the next run of the app (:mod:`cnndesk.core.labelling.kept`); a
    failure is said, labelling goes on."""
    try:
        session.keep_answers()
    except CnndeskError as exc:
        messages.append(str(exc))


@dataclass(frozen=True)
class Written:
    result: Any  # core WriteResult
    view: LabelView


LABELS_FILE = "labels.csv"


@dataclass(frozen=True)
class LabelsWritten:
    destination: str  # the folder
    file: str  # the labels file in it
    answers: int

    def describe(self) -> str:
        return (f"Wrote the answers for {self.answers} image{'s' if self.answers != 1 else ''} to {self.file} "
                "(cnndesk label FOLDER --labels FILE reads it)")


def write_dataset(job, session, out: str, mode: str, force: bool) -> Written:
    """Write the labelled images as class folders (copy/move/link, through the undo journal), or
    with ``mode`` "labels" only the labels file ``out``/labels.csv (undo puts the old one back)."""
    if mode == "labels":
        import os

        from cnndesk.core.common.safeio import describe_oserror, make_folder
        from cnndesk.core.labelling.folder import LabelError

        try:
            make_folder(out)
        except OSError as exc:
            raise LabelError(f"cannot write into {out} ({describe_oserror(exc)})") from None
        path = os.path.join(out, LABELS_FILE)
        session.save_labels(path)
        done = LabelsWritten(out, path, len(session.answered()))
        return Written(done, make_view(session, [done.describe()]))
    res = session.write_dataset(out, mode=mode, force=force, progress=throttled(job.progress), cancel=job.cancel)
    messages = [res.describe()]
    keep(session, messages)  # moved images: their new paths
    return Written(res, make_view(session, messages))


@dataclass(frozen=True)
class Trained:
    path: str  # the model file saved
    name: str
    mode: str
    accuracy: float | None  # on the validation split
    seconds: float
    val_images: int = 0  # how many images that accuracy is measured on (few: a rough figure)


def train_model(job, ds, mode: str, name: str) -> Trained:
    """Train a model on the labelled images (a core Dataset built from the view, not the session:
    labelling goes on meanwhile) and save it in the user's models folder; each epoch's statistics
    arrive as partial results. Stopped: nothing is saved (Cancelled)."""
    from cnndesk.core.common.errors import Cancelled
    from cnndesk.core.labelling import training

    model = training.train_from_labels(ds, mode, progress=job.progress, cancel=job.cancel, on_epoch=job.partial)
    if model.cancelled or job.cancel.cancelled:
        raise Cancelled("training stopped")
    path = training.save_model(model, name)
    acc = model.evaluation.accuracy if model.evaluation is not None else None
    return Trained(str(path), path.stem, mode, None if acc is None else float(acc), float(model.seconds), len(ds.val))
