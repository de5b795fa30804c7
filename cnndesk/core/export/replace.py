"""``export --force``: replace an existing folder only when it is a cnndesk export bundle (its
model.json says so, and it holds nothing but bundle files), and even then move the old one aside
atomically (renamed onto a fresh, unpredictable empty folder) before the new one takes its name and
the old one is removed. A folder of the user's own files is never deleted. Qt-free, torch-free."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

from cnndesk.core.common.safeio import path_text
from cnndesk.core.export.formats import ExportError

# What a bundle folder holds (besides its model files, all named model.*): --force replaces a
# folder only when model.json says it is a cnndesk bundle and nothing else is in it.
BUNDLE_NAMES = frozenset({"model.json", "README.md", "predict.py", "parity.json", "_vendor", "head.npz", "novelty.npz"})


def refuse_unless_bundle(out: Path) -> None:
    """ExportError unless ``out`` is a real folder holding a cnndesk bundle and nothing else."""
    refuse = f"{path_text(out)} exists and is not a cnndesk export bundle"
    if out.is_symlink() or not out.is_dir():
        raise ExportError(f"{refuse}; refusing to replace it (choose another folder)")
    meta = out / "model.json"
    try:
        st = os.lstat(meta)
        if not stat.S_ISREG(st.st_mode) or st.st_size > 1 << 20:
            raise ValueError("not a small regular file")
        info = json.loads(meta.read_text(encoding="utf-8"))
        ok = (isinstance(info, dict) and "cnndesk_version" in info and isinstance(info.get("files"), dict)
              and isinstance(info.get("runtime"), str))
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise ExportError(f"{refuse} (no cnndesk model.json); refusing to replace it, even with --force "
                          "(choose another folder)")
    try:
        others = sorted(n for n in os.listdir(out) if n not in BUNDLE_NAMES and not n.startswith("model."))
    except OSError as exc:
        raise ExportError(f"{path_text(out)}: {exc.strerror}") from None
    if others:
        shown = ", ".join(path_text(n) for n in others[:3]) + (" …" if len(others) > 3 else "")
        raise ExportError(f"{path_text(out)} holds files that are not part of a cnndesk bundle ({shown}); "
                          "refusing to replace it, even with --force (move them out or choose another folder)")


def replace_bundle(tmp: Path, out: Path) -> None:
    """Put the new bundle ``tmp`` in place of the old bundle ``out`` (checked again here: minutes
    have passed since the export was asked for). On failure the old bundle is put back."""
    refuse_unless_bundle(out)
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))  # exclusive, unpredictable
    os.rename(out, old)  # atomic: onto the empty folder just made
    try:
        os.rename(tmp, out)
    except OSError as exc:
        os.rename(old, out)  # the old bundle back under its name
        raise ExportError(f"{path_text(out)}: {exc.strerror}") from None
    shutil.rmtree(old, ignore_errors=True)
