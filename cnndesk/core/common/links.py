"""Where a path really is: the one check that a file or folder reached through links stays inside
a dataset folder (a dataset may hold ``ln -s / one/everything``; nothing may walk, read for
training, or move what such a link leads to). Qt-free, torch-free."""

from __future__ import annotations

import os
import stat


def inside(path: str | os.PathLike, root_real: str) -> bool:
    """Whether ``path``, with every link resolved, lies in the folder whose real path is ``root_real``."""
    real = os.path.realpath(path)
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def is_link(entry: os.DirEntry) -> bool:
    """Whether the scandir ``entry`` is a symbolic link or, on Windows, a junction or other reparse
    point (``is_symlink()`` is False for a junction, ``mklink /J`` needs no admin rights, and
    ``realpath`` resolves it: a junction back to a parent made the walks loop)."""
    if entry.is_symlink():
        return True
    if os.name != "nt":
        return False
    try:
        return bool(getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
                    & getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400))
    except OSError:
        return False


def leaves(entry: os.DirEntry, root_real: str | None) -> bool:
    """Whether the scandir ``entry`` is a link that leads out of ``root_real`` (None: no limit)."""
    return root_real is not None and is_link(entry) and not inside(entry.path, root_real)
