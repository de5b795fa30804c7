"""The pile of images a labelling session works on, and its labels file.

* :func:`list_images`: every image file below a folder (subfolders included, hidden entries and
  cnndesk's own sort destinations skipped), as absolute paths in a stable order.
* :func:`read_labels`: the labels file, a CSV with the header ``path,label``. A path is relative
  to the folder or absolute; an empty label means "skipped"; the label :data:`NONE_LABEL` means
  "none of these classes". Every problem is one :class:`LabelError` naming the line.
* :func:`subfolder_labels`: the labels that subfolder names give, only when the user says the
  subfolders are classes (photo folders are often sorted by date or trip instead).
* :func:`check_label`: a class name must be usable as a folder name as it is.

Qt-free and torch-free.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
import unicodedata
from collections.abc import Callable
from pathlib import Path

from cnndesk.core.common.errors import CnndeskError
from cnndesk.core.common.safeio import display, kind_of, path_text
from cnndesk.core.predict.results import neutralise, unneutralise

NONE_LABEL = "_none"  # in the labels file: "none of these classes"
NONE = NONE_LABEL  # an answer: none of these classes
SKIPPED = "\x00skipped"  # an answer: skipped (asked again later only if nothing else is left)
RESERVED = frozenset({NONE_LABEL, "_unsure", "_unknown", ".", ".."})
MAX_LABEL_CHARS = 100
# more classes than this is a label column that names each image (an ID, a file name): the
# suggestion model is (images x classes); 4,000 images with 4,000 labels took 82 s and 0.7 GB
# for --suggest (10 classes: 6 s, 0.2 GB), growing with the square
MAX_CLASSES = 500
MAX_LABELS_BYTES = 64 << 20  # a labels file larger than this is refused, never cut short
# characters that change how text around them is shown, or show nothing: "cat" and "\ufeffcat"
# would be two classes that look the same, and a right-to-left override spoofs a folder name
INVISIBLE = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
                      "\u200b\u2060\ufeff")
# ... and every other format or line/paragraph separator character (soft hyphen, invisible
# operators, Mongolian vowel separator, tag characters, U+2028), except the joiners some scripts need
JOINERS = frozenset("\u200c\u200d")


# ... but a flag of a region (Scotland, Wales, England) is the black flag, tag letters/digits and a
# cancel tag: an emoji a user types, shown as one flag
FLAG_TAGS = re.compile("\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{2,7}\U000e007f")


def invisible(name: str) -> bool:
    """Whether ``name`` holds a character that shows nothing or changes the text around it."""
    name = FLAG_TAGS.sub("\U0001f3f4", name)
    return any(c in INVISIBLE or (unicodedata.category(c) in ("Cf", "Zl", "Zp") and c not in JOINERS) for c in name)


def quoted(name: str) -> str:
    """A class name in quotes for a message: as the user typed it (repr() would show the joiner
    of an emoji like woman-technologist or of Devanagari/Persian text as ``\\u200d``), control and
    text-direction characters still escaped by :func:`display`."""
    return f"'{display(name)}'"


class LabelError(CnndeskError):
    """Bad input to a labelling session (folder, labels file, class name, output folder); the
    message is one line in plain words."""


def check_label(name: object) -> str:
    """``name`` as a class name, or LabelError: it must be non-empty text that is a valid folder
    name on Linux, macOS and Windows as it is (no ``/ \\ : * ? " < > |``, no control characters,
    no leading/trailing spaces or trailing dot, not a Windows device name), at most
    MAX_LABEL_CHARS characters, and not one of the names cnndesk uses itself (``_none``,
    ``_unsure``, ``_unknown``). The name is returned in Unicode's composed form (NFC)."""
    from cnndesk.core.organize.sorting import folder_name

    if not isinstance(name, str) or not name.strip():
        raise LabelError("a class name cannot be empty")
    # one spelling of "é": typed it is one character (NFC), a folder name from a Mac is "e" and a
    # combining accent (NFD): two classes that look the same, two folders on Linux, one on macOS
    name = unicodedata.normalize("NFC", name)
    shown = display(name, 60)
    if len(name) > MAX_LABEL_CHARS:
        raise LabelError(f"the class name {shown!r} is too long (at most {MAX_LABEL_CHARS} characters)")
    if name in RESERVED or name.casefold() in RESERVED:
        raise LabelError(f"the class name {shown!r} is reserved by cnndesk; choose another")
    if invisible(name):
        raise LabelError(f"the class name {shown!r} holds an invisible or text-direction character; type it again")
    if len(name.encode("utf-8", "surrogateescape")) > 200:
        raise LabelError(f"the class name {shown!r} is too long for a folder name (at most 200 bytes of UTF-8)")
    if folder_name(name) != name:
        raise LabelError(f"the class name {shown!r} is not a valid folder name (no / \\ : * ? \" < > |, "
                         "control characters, leading or trailing spaces or dots, or device names like CON)")
    return name


def list_images(root: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(image paths below ``root``, notes): absolute, normalised paths, sorted as
    :func:`cnndesk.core.predict.stream.walk_images` sorts them; folders cnndesk sorted into (marked
    with ``.cnndesk-sorted``) are left out. Raises LabelError when ``root`` is not a folder."""
    from cnndesk.core.organize.journal import exclude_sorted
    from cnndesk.core.predict.stream import walk_images

    root_p = Path(os.path.abspath(os.fspath(root)))
    try:
        is_dir = root_p.is_dir()
    except OSError:
        is_dir = False
    if not is_dir:
        what = "does not exist" if not os.path.lexists(root_p) else "is not a folder"
        raise LabelError(f"{display(path_text(root))} {what}")
    skipped: list[tuple[str, str]] = []
    # a link to a folder outside root is not followed: its images are not the user's pile to
    # label, and --write --mode move would take them away from where they are
    files = [os.path.abspath(p) for p in walk_images(root_p, recursive=True, skipped=skipped,
                                                     within=os.path.realpath(root_p))]
    # cnndesk's sort destinations: decided once per folder (a stand-in file each), not per file
    folders = sorted({os.path.dirname(f) for f in files})
    kept, sorted_dirs = exclude_sorted([os.path.join(d, "_") for d in folders], [str(root_p)])
    keep = {os.path.dirname(k) for k in kept}
    files = [f for f in files if os.path.dirname(f) in keep]
    notes = [f"{display(f)} is a link to a folder outside {display(root_p)}; not followed" if r.startswith("a link")
             else f"the folder {display(f)} cannot be read ({r})" for f, r in skipped]
    notes += [f"{display(d)} holds images cnndesk sorted; left out" for d in sorted_dirs]
    return files, notes


def relative(path: str, root: str) -> str:
    """``path`` relative to ``root`` with / separators when it lies below it, else absolute."""
    rel = os.path.relpath(path, root)
    if rel.startswith(".." + os.sep) or rel == ".." or os.path.isabs(rel):
        return path
    return rel.replace(os.sep, "/")


def unreadable_line(path: str, reason: str, root: str, limit: int = 80) -> str:
    """``relative/path (why)`` for a file of the folder that cannot be read (the loader's reason
    starts with the file's name; it is not said twice)."""
    name = os.path.basename(path)
    why = reason[len(name) + 2:] if reason.startswith(name + ": ") else reason
    return f"{display(path_text(relative(path, root)), limit)} ({display(why, 60)})"


def subfolder_labels(files: list[str], root: str) -> dict[str, str]:
    """path -> the name of its top subfolder below ``root`` (files directly in ``root`` get
    none). A subfolder whose name is not a valid class name raises LabelError."""
    out: dict[str, str] = {}
    checked: dict[str, str] = {}
    for f in files:
        rel = os.path.relpath(f, root)
        parts = rel.split(os.sep)
        if len(parts) < 2 or parts[0] == "..":
            continue
        top = parts[0]
        if top not in checked:
            try:
                checked[top] = check_label(top)
            except LabelError as exc:
                raise LabelError(f"subfolder {display(top)!r} cannot be a class: {exc}") from None
        out[f] = checked[top]
    if id_like(len(checked), len(out)):
        raise LabelError(f"{len(checked)} subfolders hold only {len(out)} images: too many to be classes "
                         "(label without --subfolders-are-labels)")
    return out


def id_like(classes: int, labelled: int) -> bool:
    """Whether so many classes for so few labelled images look like an image ID, not a class: more
    than MAX_CLASSES, with fewer than two images each (4,000 images with 4,000 labels took 82 s and
    0.7 GB for --suggest; a 1,000-class dataset with many images per class is fine)."""
    return classes > MAX_CLASSES and classes * 2 > labelled


def read_labels(path: str | os.PathLike, root: str, known: set[str] | dict,
                moved: Callable[[str], bool] | None = None, left_out: list[str] | None = None) -> dict[str, str | None]:
    """The labels file ``path`` as {image path: label}, label None for "skipped" (an empty
    label) and :data:`NONE_LABEL` for "none of these". ``known``: the images of the folder
    (absolute paths); any other path is an error, as is a missing or wrong header, a row with the
    wrong number of fields, an invalid class name, or the same image given two different labels --
    except a path ``moved`` says cnndesk itself moved out of the folder (``label --write --mode
    move``: the same file then carries on labelling the rest), which goes to ``left_out``.
    Raises LabelError with the file name and line number."""
    shown = display(path_text(path), 120)
    try:
        raw = read_capped(path, MAX_LABELS_BYTES)
    except FileNotFoundError:
        raise LabelError(f"the labels file {shown} does not exist") from None
    except IsADirectoryError:
        raise LabelError(f"the labels file {shown} is a folder") from None
    except OSError as exc:
        raise LabelError(f"cannot read the labels file {shown} ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise LabelError(f"the labels file {shown} {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LabelError(f"{shown} is not UTF-8 text; save it as UTF-8 CSV") from None
    # Excel saves "CSV" with semicolons where the comma is the decimal mark (German, French...),
    # and a copy from a spreadsheet is tab-separated: the header says which
    head = text.split("\n", 1)[0].strip().lower().replace(" ", "")
    sep = next((c for c in ";\t" if head == f"path{c}label"), ",")
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    find = image_finder(root, known)
    try:
        header = next(rows, None)
        if header is None or [h.strip().lower() for h in header] != ["path", "label"]:
            raise LabelError(f"{shown}: the first line must be the header 'path,label'")
        out: dict[str, str | None] = {}
        classes: set[str] = set()
        for row in rows:
            line = rows.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != 2:
                raise LabelError(f"{shown}, line {line}: expected 2 fields (path,label), found {len(row)}")
            p, label = row[0], label_cell(row[1])
            if not p.strip():
                raise LabelError(f"{shown}, line {line}: the path is empty")
            full = find(p)
            if full is None and moved is not None:
                gone = cell_path(unneutralise(p.strip()), root)
                if moved(gone):
                    if left_out is not None:
                        left_out.append(gone)
                    continue
            if full is None:
                raise LabelError(f"{shown}, line {line}: {display(p.strip(), 120)} is not an image in {display(root, 120)}")
            value: str | None
            if not label:
                value = None
            elif label == NONE_LABEL:
                value = NONE_LABEL
            else:
                try:
                    value = check_label(label)
                except LabelError as exc:
                    raise LabelError(f"{shown}, line {line}: {exc}") from None
            if full in out and out[full] != value:
                raise LabelError(f"{shown}, line {line}: {display(p.strip(), 120)} is listed twice with different labels")
            out[full] = value
            if value not in (None, NONE_LABEL):
                classes.add(value)
    except csv.Error as exc:
        raise LabelError(f"{shown}: not a valid CSV file ({exc})") from None
    labelled = sum(v not in (None, NONE_LABEL) for v in out.values())
    if id_like(len(classes), labelled):
        raise LabelError(f"{shown}: {len(classes)} different classes for {labelled} images; is the label column "
                         "an image ID or a file name?")
    return out


def read_labels_kept_on(path: str | os.PathLike, root: str, known: set[str] | dict, notes: list[str]) -> dict[str, str | None]:
    """:func:`read_labels` for a labels file kept after ``label --write --mode move``: the images
    that write moved out of the folder (still on the undo journal) are left out with a note in
    ``notes`` instead of stopping the next run ("is not an image in DIR"), so the same file
    carries on labelling the rest."""
    from cnndesk.core.organize.journal import Journal

    gone: list[str] = []
    out = read_labels(path, root, known, moved=Journal().moved_away(), left_out=gone)
    if gone:
        notes.append(f"{len(gone)} labelled image{'s' if len(gone) != 1 else ''} moved out by an earlier write; "
                     "left out (cnndesk undo puts them back)")
    return out


def read_capped(path: str | os.PathLike, limit: int, cut: bool = False) -> bytes:
    """The bytes of the regular file ``path``. ValueError (its text says why, after "the file")
    for something that is not a regular file (a FIFO would block for ever, ``/dev/zero`` never
    ends) or is larger than ``limit`` bytes: refused, never cut short mid-row (that turned the
    last label ``cats`` into ``ca``) -- with ``cut``, its complete lines up to ``limit`` instead.
    OSError passes through."""
    # a FIFO opens without a writer; binary on Windows (text mode turns CRLF into LF, stops at Ctrl-Z)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "is a folder", os.fspath(path))
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"is {kind_of(st)}, not a file")
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        if cut:
            return raw[: raw.rfind(b"\n", 0, limit) + 1]
        raise ValueError(f"is larger than {limit >> 20} MB; cnndesk reads at most that much")
    return raw


def label_cell(cell: str) -> str:
    """A label as a labels file holds it (:func:`labels_csv` quotes formula-like labels)."""
    return unneutralise(cell.strip())


def cell_path(cell: str, root: str) -> str:
    """The path a labels file's path cell names: absolute as it is, else under ``root``, normalised."""
    return os.path.normpath(cell if os.path.isabs(cell) else os.path.join(root, cell))


def image_finder(root: str, known: set[str] | dict) -> Callable[[str], str | None]:
    """A function: a labels file's path cell -> the image of ``known`` it names, or None. The
    cell as written by :func:`labels_csv` (a formula-like name quoted, a name that is not UTF-8
    written with ``\\xNN`` escapes, leading or trailing spaces kept) or by hand (relative or
    absolute, spaces around it)."""
    by_text: dict[str, str | None] | None = None

    def find(cell: str) -> str | None:
        nonlocal by_text
        # as labels_csv wrote it first: a file named "=x.png" beside one named "'=x.png" is told apart
        first = unneutralise(cell)
        full = cell_path(first, root)
        if full in known:
            return full
        tries = list(dict.fromkeys(c for c in (cell, unneutralise(cell.strip()), cell.strip()) if c))
        for p in tries:
            full = cell_path(p, root)
            if full in known:
                return full
        if by_text is None:  # names that are not UTF-8, as path_text wrote them
            by_text = {}
            for f in known:
                for t in {path_text(relative(f, root)), path_text(f)}:
                    by_text[t] = f if by_text.get(t, f) == f else None  # two files, one text: neither
        for p in [first, *tries]:
            if by_text.get(p) is not None:
                return by_text[p]
        return None

    return find


def labels_csv(rows: list[tuple[str, str | None]], root: str, size: Callable[[str], int] | None = None) -> str:
    """The labels file's text for (absolute path, label or None for skipped) rows; with ``size``
    (path -> bytes, negative when unknown) a third column ``size`` (the app's kept answers)."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "label"] + (["size"] if size else []))
    for p, label in rows:
        # a cell a spreadsheet would run as a formula (a file or class named "=cmd()") gets a
        # leading quote; read_labels and kept.load read it back exactly
        row = [neutralise(path_text(relative(p, root))), neutralise(label or "")]
        if size:
            n = size(p)
            row.append(str(n) if n >= 0 else "")
        w.writerow(row)
    return buf.getvalue()
