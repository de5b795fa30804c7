"""The user's actions on a labelling session and their undo (a mixin of
:class:`cnndesk.core.labelling.session.LabelSession`), and the small records it hands out.

Every action is one :class:`Action` on the undo stack: the images whose state changed (old and
new), the classes it added, and for file writes the way back (the journal entry of a dataset
written by copy/move/link, or the labels file's previous bytes). :meth:`SessionActions.undo`
reverts the newest one. Qt-free and torch-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cnndesk.core.labelling import folder as fo


@dataclass
class Question:
    """An image worth answering: ``kind`` "typical" (cold start / unexplored group) or
    "uncertain" (the model hesitates); ``reason`` says why in words."""

    index: int
    path: str
    kind: str
    reason: str


@dataclass
class Suggestion:
    index: int
    path: str
    label: str | None  # None while fewer than one class is known
    score: float  # the shown confidence, 0-1 (conservative while not calibrated)
    unknown: bool  # looks like none of the classes


@dataclass
class SuggestionReport:
    rows: list[Suggestion]
    calibrated: bool
    estimated_accuracy: float | None  # out-of-fold accuracy on the answers so far
    version: int  # the session's label version it reflects


@dataclass
class Action:
    description: str
    changes: list[tuple[int, str | None, str | None]]  # (image, old state, new state)
    added_classes: list[str] = field(default_factory=list)
    undo_files: object | None = None  # callable() -> str (what was undone), for file writes


class SessionActions:
    """Actions of a labelling session (needs the attributes LabelSession sets)."""

    # -- labelling ---------------------------------------------------------------------------
    def answer(self, image, label: str) -> Action | None:
        """Give ``image`` the class ``label`` (a new valid class name adds the class). Also
        corrects a wrong answer or an accepted suggestion. LabelError for an invalid name."""
        if label == fo.NONE:
            return self.none_of_these(image)
        label = fo.check_label(label)
        i = self.index(image)
        return self._set_states(f"Label {os.path.basename(self.paths[i])} as {fo.quoted(label)}", [(i, label)], [label])

    correct = answer

    def skip(self, image) -> Action | None:
        """Do not ask about ``image`` again (it stays unlabelled and gets suggestions)."""
        i = self.index(image)
        return self._set_states(f"Skip {os.path.basename(self.paths[i])}", [(i, fo.SKIPPED)])

    def none_of_these(self, image) -> Action | None:
        """``image`` belongs to none of the classes: it is learnt as such (images like it get
        the unknown flag) and is not written to the dataset."""
        i = self.index(image)
        return self._set_states(f"Mark {os.path.basename(self.paths[i])} as none of these", [(i, fo.NONE)])

    def clear(self, image) -> Action | None:
        """Forget the answer for ``image``."""
        i = self.index(image)
        return self._set_states(f"Clear the answer for {os.path.basename(self.paths[i])}", [(i, None)])

    def add_class(self, name: str) -> Action | None:
        """Add an (empty) class; LabelError for an invalid name, None if it exists."""
        name = fo.check_label(name)
        return self._set_states(f"Add the class {fo.quoted(name)}", [], [name])

    def name_group(self, group: int, label: str) -> Action | None:
        """Give every not yet answered image of visual group ``group`` the class ``label``."""
        label = fo.check_label(label)
        g = self.groups()[group]
        todo = [(i, label) for i in g.members if self._state[i] is None]
        return self._set_states(f"Label {len(todo)} images of group {group + 1} as {fo.quoted(label)}", todo, [label])

    def accept(self, images, description: str | None = None) -> Action | None:
        """Accept the current suggestion for each of ``images`` (unlabelled ones; the unknown
        ones too when named explicitly)."""
        rows = {r.index: r for r in self.suggestions().rows}
        todo = []
        for image in images:
            r = rows.get(self.index(image))
            if r is not None and r.label is not None and self._state[r.index] is None:
                todo.append((r.index, r.label))
        return self._set_states(description or f"Accept {len(todo)} suggestions", todo)

    def accept_above(self, threshold: float) -> Action | None:
        """Accept every suggestion scored at least ``threshold`` (0-1) that is not flagged
        unknown, for images not answered yet."""
        rows = [r for r in self.suggestions().rows if r.score >= threshold and not r.unknown]
        return self.accept([r.index for r in rows], f"Accept {len(rows)} suggestions above {threshold:.0%}")

    def accept_group(self, group: int) -> Action | None:
        """Accept the suggestions for the unanswered images of visual group ``group``."""
        return self.accept(self.groups()[group].members, f"Accept the suggestions for group {group + 1}")

    # -- undo ----------------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def history(self) -> list[str]:
        """The undoable actions' descriptions, oldest first."""
        return [a.description for a in self._undo]

    def undo(self) -> str | None:
        """Revert the newest action; returns its description (with what a file undo did), or
        None when there is nothing to undo."""
        if not self._undo:
            return None
        action = self._undo.pop()
        text = action.description
        if action.undo_files is not None:
            text = action.undo_files() or text
        for i, old, _new in reversed(action.changes):
            self._state[i] = old
        for c in action.added_classes:
            if c in self.classes:
                self.classes.remove(c)
        self._changed()
        return text

    # -- kept between runs (the app) -------------------------------------------------------------
    def _kept(self, keep: bool):
        """Restore the answers kept from an earlier run (one undoable action) and keep the
        following ones (:mod:`.kept`); returns the session."""
        from cnndesk.core.labelling import kept

        if not keep:
            return self
        self.answers_file = kept.answers_file(self.root)
        self._given = list(self._state)  # what the subfolder names say: not the user's answers, not kept
        self._kept_sizes: dict[str, int] = {}  # each answered file's size, statted once
        other: list[str] = []
        old = kept.load(self.answers_file, self.root, set(self._index), other)
        states = {self._index[p]: (fo.SKIPPED if label is None else label) for p, label in old.items()}
        changes = [(i, st) for i, st in sorted(states.items()) if self._state[i] != st]  # the user's answers win over subfolder names
        if changes:
            what = f"{len(changes)} answer{'s' if len(changes) != 1 else ''} from last time"
            self._set_states(f"Restore {what}", changes, sorted({st for _, st in changes}))
            self.notes.append(f"{what} restored (Undo forgets them)")
        if other:
            n = len(other)
            self.notes.append(f"{n} answer{'s' if n != 1 else ''} from last time {'were' if n != 1 else 'was'} for "
                              f"{'other files' if n != 1 else 'another file'} of the same name (changed since, or another "
                              "card in the same place): not restored")
        self._kept_version = self._version
        return self

    def keep_answers(self) -> bool:
        """Write the answers to :attr:`answers_file` when they changed since the last write (only
        the user's: not what the subfolder names said, so the folder opened again without
        "Subfolders are classes" does not take them for answers); True when written. LabelError
        when they cannot be (the session goes on)."""
        from cnndesk.core.labelling import kept

        if self.answers_file is None or self._kept_version == self._version:
            return False
        given = self._given or [None] * len(self.paths)
        rows = [(p, None if s == fo.SKIPPED else s)
                for p, s, g in zip(self.paths, self._state, given, strict=True) if s is not None and s != g]
        kept.save(self.answers_file, kept.text(rows, self.root, self._kept_sizes))
        self._kept_version = self._version
        return True

    # -- writing -------------------------------------------------------------------------------
    def labels_text(self) -> str:
        """The labels file (CSV ``path,label``) for every answered image."""
        rows = [(p, None if s == fo.SKIPPED else s) for p, s in zip(self.paths, self._state, strict=True) if s is not None]
        return fo.labels_csv(rows, self.root)

    def save_labels(self, path: str | os.PathLike, undoable: bool = True) -> Action | None:
        """Write the labels file (atomically); undo puts the previous file back. An autosave
        passes ``undoable=False`` (nothing is put on the undo stack)."""
        from cnndesk.core.labelling.writing import restore_labels_file, write_labels_file

        text = self.labels_text()
        before = write_labels_file(path, text)
        if not undoable:
            return None
        action = Action(f"Save the labels to {os.path.basename(os.fspath(path))}", [],
                        undo_files=lambda: restore_labels_file(path, before, text))
        self._undo.append(action)
        return action

    def write_dataset(self, out: str | os.PathLike, mode: str = "copy", force: bool = False, journal=None,
                      progress=None, cancel=None):
        """Write the labelled images as class folders under ``out`` ("copy", "move" or "link"),
        recorded in the undo journal; undo removes the copies/links or moves the files back.
        Raises LabelError for a refused output folder. Returns a WriteResult."""
        from cnndesk.core.labelling.writing import write_dataset
        from cnndesk.core.organize.journal import Journal

        items = [(self.paths[i], self._state[i]) for i in self.labelled]
        journal = journal or Journal()
        res = write_dataset(items, out, self.root, mode, force, journal, progress, cancel)
        moved = {a: b for a, b in res.done} if mode == "move" else {}
        self._repath(moved)

        def undo_files() -> str:
            if res.entry is None:
                return f"Nothing was written to {res.destination.name}"
            entry, still = res.entry, journal.entries()
            if all(e.id != entry.id for e in still):
                # undone already (Edit ▸ Undo, `cnndesk undo`): follow the files that are back in place
                back = {new: orig for orig, new in entry.pairs
                        if os.path.lexists(orig) and not os.path.lexists(new)} if mode == "move" else {}
                self._repath(back)
                # ... and undo what a stopped undo left (its rest: an entry of the same time and words)
                rest = [e for e in still if (e.time, e.description) == (entry.time, entry.description)]
                if not rest:
                    return f"Already undone: “{entry.description}” (Edit ▸ Undo or cnndesk undo)"
                entry = rest[-1]
            rep = journal.undo(entry)
            self.follow_undone(rep)
            return rep.describe()

        self._undo.append(Action(res.describe(), [], undo_files=undo_files))
        return res

    def follow_undone(self, report) -> None:
        """Follow the files a journal undo (``UndoReport``) put back: this session's own undo of a
        write, or one done elsewhere (Edit ▸ Undo, ``cnndesk undo``) at once. A copy's undo moves
        nothing; files not of this session are passed over by :meth:`_repath`."""
        if report.entry.mode == "move":
            self._repath({new: orig for new, orig in report.restored})

    def _repath(self, moves: dict[str, str]) -> None:
        """Follow files that were moved (old path -> new path)."""
        if not moves:
            return
        for old, new in moves.items():
            i = self._index.pop(os.path.abspath(old), None)
            if i is not None:
                self.paths[i] = os.path.abspath(new)
                self._index[self.paths[i]] = i
