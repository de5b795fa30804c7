"""The dataset doctor's file walk and its small ignore file, kept to the dataset folder.

* :func:`walk` lists the image files under a class folder. A link that leaves the dataset folder
  (``ln -s / one/everything``) is not followed: it becomes an "unreadable" issue, so the check never
  walks the whole filesystem and never offers to move a file that lives elsewhere. Links that loop
  back, or point nowhere, are issues too.
* :func:`read_ignore_file` reads ``.cnndesk-doctor.json`` with a size cap and the model files' depth
  check before parsing (a 284 MB or 200,000-deep file is ignored with a warning, never fatal).

Qt-free, torch-free.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cnndesk.core.common.links import inside, is_link, leaves  # noqa: F401  (inside: re-exported for the doctor)
from cnndesk.core.images.load import is_image_path

MAX_IGNORE_BYTES = 4 << 20  # thousands of ignored issues fit in well under 1 MB


def walk(folder: Path, ancestors: set[str], problems: list, issue, root_real: str | None = None) -> list[str]:
    """Image files under ``folder``; links that loop back, point nowhere or leave ``root_real``
    (the dataset's real path) become issues (``issue(kind, path, reason=...)``), not files."""
    out: list[str] = []
    seen = set(ancestors)

    def opened(d: Path, real: str):
        """The entries of folder ``d`` (real path ``real``) in name order, or None (an issue said why)."""
        if real in seen:
            problems.append(issue("unreadable", str(d), reason=f"{d.name}: a link that loops back to a folder "
                                  "already checked; skipped (remove the link)"))
            return None
        seen.add(real)
        try:
            return iter(sorted(os.scandir(d), key=lambda e: e.name))
        except OSError as exc:
            problems.append(issue("unreadable", str(d), reason=f"{d.name}: cannot read the folder ({exc.strerror or exc})"))
            return None

    # depth first with a stack of its own, not recursion (a class folder nested 1,100 deep -- an
    # archive made so -- stopped the check with "nested too deeply"); a subfolder is walked where it
    # comes in name order, as the recursive walk did, so the files keep their order
    first = opened(folder, os.path.realpath(folder))
    stack = [(first, os.path.realpath(folder))] if first is not None else []
    while stack:
        entries, real = stack[-1]
        e = next(entries, None)
        if e is None:
            stack.pop()
            continue
        if e.name.startswith("."):
            continue
        try:
            if e.is_dir():
                if leaves(e, root_real):
                    problems.append(issue("unreadable", e.path, reason=f"{e.name}: a link to a folder outside "
                                          "the dataset; not followed"))
                    continue
                # a real folder's real path is its parent's and its name (realpath costs an lstat per level)
                sub_real = os.path.realpath(e.path) if is_link(e) else os.path.join(real, e.name)
                sub = opened(Path(e.path), sub_real)
                if sub is not None:
                    stack.append((sub, sub_real))
            elif e.is_file():
                if is_image_path(e.name):
                    out.append(e.path)
            elif e.is_symlink() and is_image_path(e.name):
                try:
                    os.stat(e.path)
                    why = "not a regular file"
                except OSError as exc:
                    why = "a link that loops" if exc.errno == 40 else "a link to a missing file"
                problems.append(issue("unreadable", e.path, reason=f"{e.name}: {why}; skipped"))
        except OSError as exc:
            problems.append(issue("unreadable", e.path, reason=f"{e.name}: {exc.strerror or exc}"))
    return out


def read_ignore_file(path: Path) -> dict | None:
    """The parsed ignore file, or None when it is missing, too large, too deep or not JSON."""
    from cnndesk.core.models.schema import SchemaError, check_json_depth

    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_IGNORE_BYTES + 1)
        if len(raw) > MAX_IGNORE_BYTES:
            return None
        text = raw.decode("utf-8")
        check_json_depth(text, 8)  # the file cnndesk writes is 3 levels deep
        data = json.loads(text)
    except (OSError, ValueError, SchemaError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
