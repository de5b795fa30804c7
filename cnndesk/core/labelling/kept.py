"""The Label workspace's answers kept between runs of the app: quitting (or opening another
folder) used to lose every answer given, and reopening the folder started at "0 labelled".

One labels file per folder — the ``cnndesk label --labels`` format (CSV ``path,label``, paths
relative to the folder, an empty label = skipped, ``_none`` = none of these) — in the user data
folder (``labelling/<hash of the folder>.csv``), so nothing is written into the user's pile.
:meth:`LabelSession.open(keep_answers=True) <cnndesk.core.labelling.session.LabelSession.open>`
reads it back as one undoable action; :meth:`~.actions.SessionActions.keep_answers` writes it
(atomically, through the one safe writer) after the answers change.

Each row also keeps the file's size in bytes (a third column, ``size``): an answer comes back
only for the same file. Camera cards mount at the same path with the same names
(``DCIM/100CANON/IMG_0001.JPG``), so the second card got the first card's answers; now a name whose
size differs is not restored (and counted, so the app can say so). Files kept by an older version
(two columns) are read as before.

Reading is lenient, unlike a labels file the user gives: a row for a file that is gone (moved,
deleted, renamed) or with a label that is no longer valid is dropped, and an unreadable file is
read as no answers, so the folder always opens. Qt-free and torch-free.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path

from cnndesk.core.labelling import folder as fo

MAX_BYTES = 64 << 20


def answers_file(root: str) -> Path:
    """Where the answers given for the folder ``root`` are kept: one file per folder however it
    is reached (through a symbolic link, or a link above it, the same folder has the same file;
    the paths inside are relative to it). A file kept under the path as given before is used."""
    from cnndesk.core.common.paths import user_data_dir

    def file_for(path: str) -> Path:
        digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return user_data_dir() / "labelling" / f"{digest}.csv"

    real, given = file_for(os.path.realpath(root)), file_for(os.path.abspath(root))
    return given if given != real and given.exists() and not real.exists() else real


def text(rows: list[tuple[str, str | None]], root: str, sizes: dict[str, int]) -> str:
    """The kept answers' text for (absolute path, label or None for skipped) rows: the labels
    file's columns and each file's size (looked up in ``sizes``, which keeps the sizes statted so
    far: a file is statted once a session, not at every keep)."""

    def size(p: str) -> int:
        if p not in sizes:
            try:
                sizes[p] = os.stat(p).st_size
            except OSError:
                sizes[p] = -1
        return sizes[p]

    return fo.labels_csv(rows, root, size)


def load(path: str | os.PathLike, root: str, known: set[str], other: list[str] | None = None) -> dict[str, str | None]:
    """{image path: class, None (skipped) or NONE_LABEL} from the kept answers at ``path``, only
    for images in ``known`` whose size is the one kept (the images of the same name but another
    size go to ``other``); {} when there is no such file or it cannot be read."""
    try:  # a FIFO or a device planted there is read as no answers; a huge file up to its last whole row
        text = fo.read_capped(path, MAX_BYTES, cut=True).decode("utf-8-sig")
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return {}
    out: dict[str, str | None] = {}
    find = fo.image_finder(root, known)
    try:
        rows = csv.reader(io.StringIO(text, newline=""))
        header = [h.strip().lower() for h in next(rows, [])]
        if header not in (["path", "label"], ["path", "label", "size"]):
            return {}
        for row in rows:
            if len(row) not in (2, len(header)) or not row[0]:
                continue
            full, label = find(row[0]), fo.label_cell(row[1])
            if full is None:
                continue
            if len(row) == 3 and row[2].isdigit() and not _same_size(full, int(row[2])):
                if other is not None:
                    other.append(full)
                continue
            if not label or label == fo.NONE_LABEL:
                out[full] = None if not label else fo.NONE_LABEL
                continue
            try:
                out[full] = fo.check_label(label)
            except fo.LabelError:
                try:  # a name an older version took, with an invisible character: kept as it shows
                    out[full] = fo.check_label("".join(c for c in label if not fo.invisible(c)))
                except fo.LabelError:
                    continue
    except csv.Error:
        return out
    return out


def _same_size(path: str, size: int) -> bool:
    try:
        return os.stat(path).st_size == size
    except OSError:
        return False


def save(path: str | os.PathLike, text: str) -> None:
    """Write the answers file (its folder made when missing); LabelError when it cannot be."""
    from cnndesk.core.common.safeio import describe_oserror, display, path_text, safe_write

    try:
        with safe_write(path, "w", encoding="utf-8", newline="", make_parents=True) as fh:
            fh.write(text)
    except OSError as exc:
        raise fo.LabelError(f"cannot keep the answers in {display(path_text(path))} ({describe_oserror(exc)})") from None
