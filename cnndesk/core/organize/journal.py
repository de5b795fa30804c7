"""An undo journal for the file operations cnndesk does for the user: "Sort into folders" (move or
copy) and relabels on the evaluation page (a file moved to another class folder).

Each operation is one line of JSON appended to ``<data dir>/journal.jsonl`` (flushed and synced),
so Undo survives a restart. Undo puts moved files back where they were (never over a file that
appeared there since: those are reported) and removes copies only while they are unchanged
(same size and modification time as when cnndesk made them). Folders the operation created and
left empty are removed; source folders it emptied are made again. Qt-free.

Sort destinations get a marker file (``.cnndesk-sorted``) so opening the source folder again does
not classify the sorted copies a second time (:func:`exclude_sorted`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cnndesk.core.common.paths import user_data_dir
from cnndesk.core.common.safeio import move_file, safe_write

JOURNAL_NAME = "journal.jsonl"
SORT_MARKER = ".cnndesk-sorted"
KEEP = 200  # entries kept when the journal is compacted


@dataclass
class Entry:
    id: str
    kind: str  # "sort" | "relabel"
    mode: str  # "move" | "copy"
    description: str
    pairs: list[tuple[str, str]]  # (original path, new path)
    stamps: list[tuple[int, int]] = field(default_factory=list)  # (size, mtime_ns) of each new path
    created_dirs: list[str] = field(default_factory=list)
    removed_dirs: list[str] = field(default_factory=list)
    time: float = 0.0

    def to_json(self) -> str:
        return json.dumps({"op": "do", **self.__dict__}, ensure_ascii=False)


@dataclass
class UndoReport:
    entry: Entry
    restored: list[tuple[str, str]] = field(default_factory=list)  # (new path, original path)
    skipped: list[str] = field(default_factory=list)  # human messages
    left: int = 0  # files not reached before a Cancel: still in the journal, Undo again does them

    def describe(self) -> str:
        verb = "removed" if self.entry.mode == "copy" else "put back"
        head = "Stopped undoing" if self.left else "Undid"
        text = f"{head} “{self.entry.description}”: {len(self.restored)} file{'s' if len(self.restored) != 1 else ''} {verb}"
        if self.skipped:
            text += f"; {len(self.skipped)} left as they are: " + "; ".join(self.skipped[:3])
        if self.left:
            text += f"; {self.left} still to undo (Undo again for the rest)"
        return text + "."


def _stamp(path: str) -> tuple[int, int]:
    """(size, mtime) of ``path`` itself: a symbolic link's own, not its target's (a link that
    ``label --write --mode link`` made stays removable after the original image is edited)."""
    st = os.lstat(path)
    return st.st_size, st.st_mtime_ns


def _unchanged(path: str, stamp: tuple[int, int]) -> bool:
    """Whether ``path`` still has the ``stamp`` recorded when cnndesk made it (a link recorded
    before links were stamped themselves: its target's stamp)."""
    return tuple(stamp) == _stamp(path) or (os.path.islink(path) and tuple(stamp) == _followed_stamp(path))


def _followed_stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class Journal:
    """The journal file. Cheap to create; reads the file on each query (it stays small)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else user_data_dir() / JOURNAL_NAME

    # -- recording ----------------------------------------------------------------------------
    def record(self, kind: str, mode: str, description: str, pairs: Iterable[tuple[str | os.PathLike, str | os.PathLike]],
               created_dirs: Iterable[str | os.PathLike] = (), removed_dirs: Iterable[str | os.PathLike] = ()) -> Entry | None:
        pairs = [(os.fspath(a), os.fspath(b)) for a, b in pairs]
        if not pairs:
            return None
        stamps = []
        for _, new in pairs:
            try:
                stamps.append(_stamp(new))
            except OSError:
                stamps.append((-1, -1))
        entry = Entry(uuid.uuid4().hex[:12], kind, mode, description, pairs, stamps,
                      [os.fspath(d) for d in created_dirs], [os.fspath(d) for d in removed_dirs], time.time())
        self._append(entry.to_json())
        return entry

    def record_sort(self, report, mode: str, destination: str | os.PathLike, roots: Iterable[str] = (),
                    marker_made: bool | None = None) -> Entry | None:
        """Record a finished :func:`cnndesk.core.organize.sorting.execute` (its ``report.done`` pairs);
        after a move, source subfolders it emptied (below ``roots``, never a root) are removed.
        ``marker_made``: whether this operation put the destination's marker there (default: it
        was not there before this call)."""
        destination = Path(destination)
        if marker_made is None:
            marker_made = not os.path.lexists(destination / SORT_MARKER)
        mark_destination(destination)
        created = sorted({os.fspath(Path(new).parent) for _, new in report.done})
        if marker_made:
            created.append(os.fspath(destination / SORT_MARKER))  # undo removes it with the last of its files
        removed: list[str] = []
        if mode == "move":
            removed = remove_emptied_dirs((Path(src).parent for src, _ in report.done), roots)
        n = len(report.done)
        desc = f"{'Move' if mode == 'move' else 'Copy'} {n} file{'s' if n != 1 else ''} into {destination.name}"
        return self.record("sort", mode, desc, report.done, created, removed)

    def record_relabel(self, source: str | os.PathLike, target: str | os.PathLike, label: str) -> Entry | None:
        return self.record("relabel", "move", f"Move {Path(source).name} to “{label}”", [(source, target)],
                           [os.fspath(Path(target).parent)])

    def check_writable(self) -> None:
        """OSError unless an entry could be appended now (its folder made, the file opened)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8"):
            pass

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    # -- reading -----------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        """Operations that can still be undone, oldest first."""
        done: dict[str, Entry] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        for line in lines:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash: skip it, keep the rest
            if rec.get("op") == "undo":
                done.pop(rec.get("id"), None)
            elif rec.get("op") == "do":
                rec.pop("op")
                try:
                    e = Entry(**rec)
                except TypeError:
                    continue
                e.pairs = [tuple(p) for p in e.pairs]
                e.stamps = [tuple(s) for s in e.stamps]
                done[e.id] = e
        return list(done.values())

    def moved_away(self) -> Callable[[str], bool]:
        """Whether a path is one an operation still open here moved away and is not back (a
        labels file kept after ``label --write --mode move``); the journal is read on the first
        question, not before."""
        sources: set[str] | None = None

        def moved(path: str) -> bool:
            nonlocal sources
            if sources is None:
                try:
                    entries = self.entries()
                except OSError:
                    entries = []
                sources = {os.path.normpath(a) for e in entries if e.mode == "move" for a, _ in e.pairs}
            return os.path.normpath(path) in sources and not os.path.lexists(path)

        return moved

    def last(self) -> Entry | None:
        entries = self.entries()
        return entries[-1] if entries else None

    # -- undoing -----------------------------------------------------------------------------
    def undo(self, entry: Entry | None = None, progress=None, cancel=None) -> UndoReport | None:
        """Undo ``entry`` (default: the newest one). Returns None when there is nothing to undo.
        A Cancel stops between files: the files not reached stay in the journal as an entry of
        their own (same description), so the next Undo does the rest (``report.left``)."""
        entry = entry or self.last()
        if entry is None:
            return None
        rep = UndoReport(entry)
        for d in entry.removed_dirs:
            Path(d).mkdir(parents=True, exist_ok=True)
        total = len(entry.pairs)
        stamps = entry.stamps or [(-1, -1)] * total
        for i, ((orig, new), stamp) in enumerate(zip(entry.pairs, stamps, strict=False)):
            if cancel is not None and cancel.cancelled:
                rep.left = total - i
                break
            name = Path(new).name
            try:
                if not os.path.lexists(new):  # a link whose original was moved away is still there
                    rep.skipped.append(f"{name} is no longer there")
                elif entry.mode == "copy":
                    if not _unchanged(new, stamp):
                        rep.skipped.append(f"{name} was changed since it was copied")
                    else:
                        os.unlink(new)
                        rep.restored.append((new, orig))
                elif os.path.exists(orig):
                    rep.skipped.append(f"{Path(orig).name} exists again in its old folder")
                else:
                    Path(orig).parent.mkdir(parents=True, exist_ok=True)
                    move_file(new, orig)  # the safe mover; never overwrites
                    rep.restored.append((new, orig))
            except OSError as exc:
                rep.skipped.append(f"{name}: {exc.strerror or exc}")
            if progress is not None:
                progress(i + 1, total, "Undoing")
        for d in sorted(entry.created_dirs, key=len, reverse=True):
            _rmdir_if_empty(Path(d))
        if entry.kind == "sort" and entry.created_dirs:
            dest = Path(entry.created_dirs[0]).parent
            marker = dest / SORT_MARKER
            # a marker this operation put into a folder that was already there (written with --force)
            # goes too once none of its files is left there, nor another operation's: else that
            # folder's own images were left out of every later run on the folder above it
            made = (os.fspath(marker) in entry.created_dirs and not rep.left and not rep.skipped
                    and not self._written_into(dest, entry))
            if marker.exists() and (made or not any(p.name != SORT_MARKER for p in dest.iterdir())):
                marker.unlink()
                _rmdir_if_empty(dest)
        self._append(json.dumps({"op": "undo", "id": entry.id, "time": time.time()}))
        if rep.left:
            rest = Entry(uuid.uuid4().hex[:12], entry.kind, entry.mode, entry.description, entry.pairs[total - rep.left:],
                         list(stamps[total - rep.left:]), entry.created_dirs, [], entry.time)
            self._append(rest.to_json())
        self._compact()
        return rep

    def _written_into(self, dest: Path, entry: Entry) -> bool:
        """Whether an open operation other than ``entry`` put files below ``dest``."""
        inside = os.fspath(dest).rstrip(os.sep) + os.sep
        return any(e.id != entry.id and any(new.startswith(inside) for _, new in e.pairs) for e in self.entries())

    def _compact(self) -> None:
        """Keep the file small: rewrite it with the last KEEP open entries once it grows."""
        try:
            if self.path.stat().st_size < 1 << 20:
                return
        except FileNotFoundError:
            return
        from cnndesk.core.common.paths import atomic_write

        keep = self.entries()[-KEEP:]
        with atomic_write(self.path, "w") as fh:
            for e in keep:
                fh.write(e.to_json() + "\n")


def _rmdir_if_empty(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:
        pass


def remove_emptied_dirs(dirs: Iterable[Path], roots: Iterable[str]) -> list[str]:
    """Remove folders (and their emptied parents) that are now empty, below but never equal to
    one of ``roots``. Returns the removed folders, outermost last."""
    roots_r = [os.path.realpath(r) for r in roots]
    removed: list[str] = []
    for d in sorted({os.path.realpath(x) for x in dirs}, key=len, reverse=True):
        cur = d
        while any(cur != r and cur.startswith(r + os.sep) for r in roots_r):
            try:
                os.rmdir(cur)
            except OSError:
                break
            removed.append(cur)
            cur = os.path.dirname(cur)
    return removed


def mark_destination(dest: str | os.PathLike) -> None:
    """Mark a sort destination so that re-opening its parent folder skips it."""
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with safe_write(dest / SORT_MARKER, "w") as fh:  # never through a planted symlink
            fh.write("Files sorted by cnndesk. cnndesk skips this folder when classifying the folder above it.\n")
    except OSError:
        pass


def exclude_sorted(files: list[str], roots: Iterable[str]) -> tuple[list[str], list[str]]:
    """Drop files inside sort destinations (folders holding :data:`SORT_MARKER`) below the opened
    ``roots`` (a destination opened itself is read normally). Returns (kept, skipped folders)."""
    roots_r = {os.path.realpath(r) for r in roots}
    marked: dict[str, bool] = {}

    def is_marked(folder: str) -> bool:
        if folder not in marked:
            marked[folder] = folder not in roots_r and os.path.exists(os.path.join(folder, SORT_MARKER))
        return marked[folder]

    kept, skipped = [], set()
    for f in files:
        folder = os.path.dirname(os.path.realpath(f))
        hit = None
        cur = folder
        while True:
            if cur in roots_r:
                break
            if is_marked(cur):
                hit = cur
                break
            parent = os.path.dirname(cur)
            if parent == cur:
                break
            cur = parent
        if hit is None:
            kept.append(f)
        else:
            skipped.add(hit)
    return kept, sorted(skipped)
