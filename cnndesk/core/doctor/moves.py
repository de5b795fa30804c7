"""Moving a file the dataset check flagged into another class folder, and undoing that move,
through the one safe mover (never overwriting; nothing moved through a link out of the dataset)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cnndesk.core.common.safeio import move_into
from cnndesk.core.doctor.walk import inside
from cnndesk.core.training.datasets import DatasetError


@dataclass(frozen=True)
class Moved:
    source: str
    target: str


def move_to_class(path: str, cls: str, label: str | None = None) -> Moved:
    """Move ``path`` into the sibling class folder ``cls`` (same split), never overwriting.
    ``label``: the file's current class, to find its class folder when the file sits in a
    subfolder of it (class folders are searched recursively)."""
    from cnndesk.core.organize.sorting import folder_name

    src = Path(path)
    if not src.is_file():
        raise DatasetError(f"{src.name}: the file is no longer there (moved or deleted?)")
    class_dir = next((a for a in src.parents if label and a.name == label), src.parent)
    target_dir = class_dir.parent / folder_name(cls)
    for p in (src, target_dir):  # reached through a link: it lives elsewhere
        if os.path.lexists(p) and not inside(p, os.path.realpath(class_dir.parent)):
            raise DatasetError(f"{p.name}: it lives outside the dataset (through a link); nothing moved")
    target, _ = move_into(src, target_dir)  # the safe mover
    return Moved(str(src), str(target))


def undo_move(m: Moved) -> str:
    """Put a moved file back where it was (beside it under a new name if that name is taken)."""
    if not Path(m.target).is_file():
        raise DatasetError(f"{Path(m.target).name}: the moved file is no longer there; nothing to undo")
    back, _ = move_into(m.target, Path(m.source).parent, name=Path(m.source).name)
    return str(back)
