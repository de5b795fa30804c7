"""Write what was labelled: a class-folder dataset (copy, move or symbolic links) through the undo
journal (:mod:`cnndesk.core.organize.journal`), or only the labels file (through the safe writer).

The dataset folder gets one subfolder per class (names from :func:`cnndesk.core.organize.sorting.folder_names`),
never overwrites a file (a clash gets " (1)"), and is marked as a cnndesk destination so that the
labelled folder, opened again, does not count the copies twice. An existing non-empty output
folder is refused unless ``force``. Qt-free and torch-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cnndesk.core.common.errors import Cancelled
from cnndesk.core.common.progress import CancelToken, ProgressCallback, check, report
from cnndesk.core.common.safeio import describe_oserror, display, make_folder, path_text, safe_write
from cnndesk.core.labelling.folder import LabelError, read_capped
from cnndesk.core.organize.journal import SORT_MARKER, Journal, mark_destination
from cnndesk.core.organize.sorting import (
    Move,
    SortPlan,
    SortReport,
    execute,
    folder_names,
    unique_path,
)

MODES = ("copy", "move", "link")


@dataclass
class WriteResult:
    destination: Path
    mode: str
    counts: dict[str, int]  # class -> files written
    done: list[tuple[str, str]] = field(default_factory=list)  # (source, written path)
    failed: list[str] = field(default_factory=list)  # one message per file that failed
    entry: object | None = None  # the journal entry (undo), None when nothing was written
    already: int = 0  # images whose copy (link) was already in their class folder: not written twice
    stopped_of: int = 0  # stopped before the end: how many there were to write (0: not stopped)
    # copies (links) an earlier write left in another class folder of the destination ("folder/name"):
    # the image was relabelled since, and is now in two classes of the dataset
    elsewhere: list[str] = field(default_factory=list)

    def describe(self) -> str:
        verb = {"copy": "Copied", "move": "Moved", "link": "Linked"}[self.mode]
        n = len(self.done)
        text = f"{verb} {n} image{'s' if n != 1 else ''} into {len(self.counts)} class folders in {path_text(self.destination)}"
        if self.stopped_of:
            text = f"Stopped: {text[0].lower()}{text[1:]} (of {self.stopped_of})"
        if self.already:
            text += f" ({self.already} already there, not written twice)"
        if self.failed:
            text += f"; {len(self.failed)} failed: " + "; ".join(self.failed[:3])
        if self.elsewhere:
            text += (f"; {len(self.elsewhere)} labelled image{'s' if len(self.elsewhere) != 1 else ''} also in "
                     "another class folder, under an earlier label (remove those copies): " + ", ".join(path_text(e) for e in self.elsewhere[:3])
                     + (", …" if len(self.elsewhere) > 3 else ""))
        return text + "."


def check_destination(out: str | os.PathLike, root: str, force: bool = False) -> Path:
    """Refuse an output folder that cannot work, before any file is touched: the labelled folder
    itself (or a folder above it), a file, a missing parent folder, or a non-empty folder
    without ``force``. Returns the absolute path."""
    dest = Path(os.path.abspath(os.fspath(out)))
    shown = display(path_text(out), 120)
    # compared as real paths: OUT given through a link to the folder (or the folder opened
    # through a link) is still the folder, and would be marked as a sort destination
    for d, r in {(str(dest), os.path.abspath(root)), (os.path.realpath(dest), os.path.realpath(root))}:
        if d == r or r.startswith(d.rstrip(os.sep) + os.sep):
            raise LabelError(f"{shown} is the labelled folder or holds it; choose another output folder")
    if holds_by_identity(dest, root):  # the same folder under another letter case (macOS, Windows)
        raise LabelError(f"{shown} is the labelled folder or holds it; choose another output folder")
    if os.path.lexists(dest):
        if not dest.is_dir():
            raise LabelError(f"{shown} exists and is not a folder")
        try:
            busy = any(True for _ in dest.iterdir())
        except OSError as exc:
            raise LabelError(f"cannot read {shown} ({describe_oserror(exc)})") from None
        if busy and not force:
            raise LabelError(f"{shown} already exists and is not empty (use --force to write into it)")
    elif not dest.parent.is_dir():
        raise LabelError(f"the folder {display(path_text(dest.parent), 120)} does not exist (create it first)")
    if not os.access(dest if dest.exists() else dest.parent, os.W_OK | os.X_OK):
        raise LabelError(f"cannot write into {shown} (permission denied or read-only)")
    return dest


def holds_by_identity(dest: Path, root: str) -> bool:
    """Whether ``dest`` is, as a file-system object, ``root`` or a folder above it: path strings
    differ on a case-insensitive disk (``~/photos`` vs ``~/Photos``) where the folder is the same."""
    try:
        want = os.stat(dest)
    except OSError:
        return False  # not there yet: it cannot be the folder
    here = os.path.realpath(root)
    while True:
        try:
            st = os.stat(here)
            if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
                return True
        except OSError:
            pass
        up = os.path.dirname(here)
        if up == here:
            return False
        here = up


def write_dataset(items: list[tuple[str, str]], out: str | os.PathLike, root: str, mode: str = "copy",
                  force: bool = False, journal: Journal | None = None, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> WriteResult:
    """Write (path, class) ``items`` as class folders under ``out`` and record the operation in
    ``journal`` (default: the app's journal) so that it can be undone. ``mode``: "copy" (default),
    "move" or "link" (symbolic links to the originals)."""
    if mode not in MODES:
        raise LabelError(f"unknown mode {display(mode)!r} (choose copy, move or link)")
    if not items:
        raise LabelError("nothing is labelled yet; label some images first")
    dest = check_destination(out, root, force)
    names = folder_names(label for _, label in items)
    journal = journal or Journal()
    try:  # before any file is touched: moved files with no journal entry could not be put back
        journal.check_writable()
    except OSError as exc:
        raise LabelError(f"cannot write the undo journal {display(path_text(journal.path), 120)} "
                         f"({describe_oserror(exc)}); nothing was written") from None
    marker_made = not os.path.lexists(dest / SORT_MARKER)
    dest.mkdir(exist_ok=True)
    elsewhere = _elsewhere(items, dest, names, mode)
    kept = len(items)
    items = [(p, label) for p, label in items if not already_there(Path(p), dest / names[label] / Path(p).name, mode)]
    kept -= len(items)
    counts: dict[str, int] = {}
    stays = [p for p, _ in items if mode == "move" and _relative_link(p)]
    items = [(p, label) for p, label in items if p not in stays]
    rep = SortReport()
    # moved elsewhere, a relative link ("a.jpg -> ../photos/a.jpg") would point at nothing
    rep.failed += [(Path(p), f"{path_text(os.path.basename(p))}: a relative symbolic link; moving it would "
                    "break it (copy it, or write links)") for p in stays]
    stopped = False
    try:
        if mode in ("copy", "move"):  # into=rep: what was done before a Cancel is kept
            execute(SortPlan(dest, [Move(Path(p), names[label]) for p, label in items]), mode, progress, cancel, into=rep)
        else:
            _link_all([(Path(p), names[label]) for p, label in items], dest, rep, progress, cancel)
    except Cancelled:
        stopped = True
    finally:
        # stopped (Stop, the app quitting, Ctrl+C) after some files: those are journaled (undo puts them
        # back) and reported, instead of moved with no record and a session that lost them
        if rep.done:  # nothing written (every file failed): no marker left in the user's folder, no entry to undo it
            mark_destination(dest)
        entry = _record(journal, rep, mode, dest, root, marker_made)
    by_source = {os.fspath(p): label for p, label in items}
    for src, _ in rep.done:
        label = by_source[os.fspath(src)]
        counts[label] = counts.get(label, 0) + 1
    return WriteResult(dest, mode, counts, [(os.fspath(a), os.fspath(b)) for a, b in rep.done],
                       [m for _, m in rep.failed], entry, kept, len(items) + len(stays) if stopped else 0, elsewhere)


def _elsewhere(items: list[tuple[str, str]], dest: Path, names: dict[str, str], mode: str) -> list[str]:
    """"folder/name" of the copies (links) of ``items`` that an earlier write left in a class folder
    of ``dest`` other than their class's now (a moved file is moved on, nothing is left)."""
    if mode == "move":
        return []
    try:
        there = {d.name: set(os.listdir(d)) for d in dest.iterdir() if d.is_dir() and not d.is_symlink()}
    except OSError:
        return []
    out = []
    for p, label in items:
        name = os.path.basename(p)
        out += [f"{folder}/{name}" for folder, files in sorted(there.items())
                if folder != names[label] and name in files and already_there(Path(p), dest / folder / name, mode)]
    return out


def _record(journal: Journal, rep: SortReport, mode: str, dest: Path, root: str, marker_made: bool):
    """The journal entry for what was written (None when nothing was)."""
    if not rep.done:
        return None
    if mode == "link":
        n = len(rep.done)
        created = sorted({os.fspath(Path(new).parent) for _, new in rep.done})
        if marker_made:  # undo removes it with the last of its links
            created.append(os.fspath(dest / SORT_MARKER))
        # links are removed on undo like copies are (only while unchanged)
        return journal.record("sort", "copy", f"Link {n} file{'s' if n != 1 else ''} into {dest.name}", rep.done, created)
    return journal.record_sort(rep, mode, dest, roots=[root], marker_made=marker_made)


def already_there(src: Path, target: Path, mode: str) -> bool:
    """Whether ``target`` (the image's place in its class folder) already holds this image: the
    file itself (moved there before), a link to it, or a copy with the same bytes. Writing the
    dataset again into the same folder (after labelling more) then adds only what is new, instead
    of a " (1)" duplicate of every image (duplicates leak between a training and a validation split)."""
    import filecmp

    try:
        if not os.path.lexists(target):
            return False
        if os.path.abspath(src) == os.path.abspath(target):
            return True
        if os.path.islink(target):
            return mode == "link" and os.readlink(target) == os.path.abspath(src)
        if mode != "copy" or not target.is_file():
            return False
        return os.path.samefile(src, target) or (
            target.stat().st_size == src.stat().st_size and filecmp.cmp(src, target, shallow=False))
    except OSError:
        return False


def _relative_link(path: str) -> bool:
    try:
        return os.path.islink(path) and not os.path.isabs(os.readlink(path))
    except OSError:
        return False


def _link_all(items: list[tuple[Path, str]], dest: Path, rep: SortReport, progress, cancel) -> None:
    for i, (src, folder) in enumerate(items):
        check(cancel)
        try:
            os.stat(src)  # gone since the folder was read: failed, not a dangling link counted as written
            make_folder(dest / folder)  # a planted "cat -> /elsewhere" is refused, as by the mover
            for _attempt in range(100):
                target, renamed = unique_path(dest / folder / src.name)
                try:
                    os.symlink(os.path.abspath(src), target)
                    break
                except FileExistsError:
                    continue
            else:
                raise FileExistsError(17, "no free name", str(target))
            rep.done.append((src, target))
            rep.renamed += renamed
        except OSError as exc:
            rep.failed.append((src, f"{path_text(src.name)}: {describe_oserror(exc)}"))
        report(progress, i + 1, len(items), "Linking files")


def write_labels_file(path: str | os.PathLike, text: str) -> bytes | None:
    """Write the labels file atomically; returns its previous bytes (None when it was new) so
    that the write can be undone."""
    try:  # kept for undo: a planted FIFO (or a link to /dev/zero) is refused, never read for ever
        before: bytes | None = read_capped(path, 256 << 20)
    except FileNotFoundError:
        before = None
    except OSError as exc:
        raise LabelError(f"cannot write {display(path_text(path))} ({describe_oserror(exc)})") from None
    except ValueError as exc:
        raise LabelError(f"{display(path_text(path))} {exc}; refusing to replace it") from None
    try:
        with safe_write(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except OSError as exc:
        raise LabelError(f"cannot write {display(path_text(path))} ({describe_oserror(exc)})") from None
    return before


def restore_labels_file(path: str | os.PathLike, before: bytes | None, written: str | None = None) -> str | None:
    """Undo :func:`write_labels_file`: the previous content back, or the file removed -- only
    while the file still holds ``written`` (what that write put there): a labels file edited
    since (in a spreadsheet, by another save) is left as it is. Returns a sentence then, else None."""
    if written is not None:
        try:
            now: bytes | None = read_capped(path, 256 << 20)
        except FileNotFoundError:
            now = None
        except (OSError, ValueError):
            now = b""
        if now != written.encode("utf-8"):
            name = path_text(os.path.basename(os.fspath(path)))
            return f"Not undone: {name} was changed or removed since it was saved; it is left as it is"
    try:
        if before is None:
            os.unlink(path)
        else:
            with safe_write(path, "wb") as fh:
                fh.write(before)
    except FileNotFoundError:
        pass
    except OSError as exc:
        return f"Not undone: cannot restore {display(path_text(path))} ({describe_oserror(exc)})"
    return None
