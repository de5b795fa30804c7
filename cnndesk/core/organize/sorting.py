"""Sort classified files into one folder per predicted label ("Sort into folders…").

Plan first (a summary the user confirms), then copy or move. Never overwrites: a name clash gets
" (1)", " (2)"… Files a user model flags as not one of its classes go to ``_unknown``; files below
the confidence threshold go to ``_unsure``; files that failed to load are left where they are. Qt-free.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cnndesk.core.common.progress import CancelToken, ProgressCallback, check, report
from cnndesk.core.common.safeio import (
    describe_oserror,
    move_into,
    path_text,
    unique_path,  # noqa: F401  (the sort's name-clash rule, kept importable here)
)

UNSURE = "_unsure"
UNKNOWN = "_unknown"


@dataclass(frozen=True)
class Move:
    source: Path
    folder: str  # label folder name (sanitized) or UNSURE


@dataclass
class SortPlan:
    destination: Path
    moves: list[Move]
    skipped_errors: int = 0

    def summary(self) -> Counter:
        return Counter(m.folder for m in self.moves)

    def describe(self, mode: str = "copy", limit: int = 8) -> str:
        counts = self.summary()
        verb = "Move" if mode == "move" else "Copy"
        lines = [f"{verb} {len(self.moves)} files into {len(counts)} folders in {self.destination}:"]
        for folder, n in counts.most_common(limit):
            lines.append(f"  {folder}: {n}")
        if len(counts) > limit:
            rest = sum(n for _, n in counts.most_common()[limit:])
            lines.append(f"  … and {len(counts) - limit} more folders ({rest} files)")
        if self.skipped_errors:
            lines.append(f"{self.skipped_errors} files that could not be read stay where they are.")
        return "\n".join(lines)


@dataclass
class SortReport:
    done: list[tuple[Path, Path]] = field(default_factory=list)
    renamed: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def describe(self, mode: str) -> str:
        verb = "Moved" if mode == "move" else "Copied"
        text = f"{verb} {len(self.done)} files"
        if self.renamed:
            text += f" ({self.renamed} renamed to avoid overwriting)"
        if self.failed:
            text += f"; {len(self.failed)} failed: " + "; ".join(m for _, m in self.failed[:3])
        return text + "."


_BAD = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
# Windows refuses these names, with or without an extension ("AUX.txt", "nul")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10)),
             "com¹", "com²", "com³", "lpt¹", "lpt²", "lpt³"}
MAX_NAME_BYTES = 200  # most filesystems allow 255 bytes; leave room for " (12)" and ".part" names
SPECIAL_FOLDERS = (UNSURE, "_unknown")  # folders the sort itself uses


def folder_name(label: str) -> str:
    """A label as a safe folder name on Linux, macOS and Windows: no separators or reserved
    characters, no Windows device names, at most ``MAX_NAME_BYTES`` bytes of UTF-8."""
    name = _BAD.sub("_", path_text(str(label))).strip(" .")
    if name.split(".")[0].strip(" ").lower() in _RESERVED:
        name = "_" + name
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        name = encoded[:MAX_NAME_BYTES].decode("utf-8", "ignore").rstrip(" .")
    return name or "_unnamed"


def folder_names(labels) -> dict[str, str]:
    """Folder names for distinct labels that stay distinct: labels whose safe names collide
    (``c/at``, ``c:at``, ``c?at``; ``Cat`` and ``cat`` on case-insensitive disks) or that would
    land in a folder the sort uses itself (``_unsure``) get a short hash of the label appended.
    A label that needs no change keeps its name when it is the only one claiming it."""
    import hashlib

    groups: dict[str, list[str]] = {}
    for label in sorted(set(labels)):
        groups.setdefault(folder_name(label).casefold(), []).append(label)
    out = {}
    special = {s.casefold() for s in SPECIAL_FOLDERS}
    for key, members in groups.items():
        members.sort(key=lambda lab: (folder_name(lab) != lab, lab))
        for i, label in enumerate(members):
            base = folder_name(label)
            if i == 0 and key not in special:
                out[label] = base
            else:
                tag = hashlib.sha1(label.encode("utf-8", "surrogateescape")).hexdigest()[:6]
                out[label] = folder_name(f"{base[: MAX_NAME_BYTES // 2]} ~{tag}")
    return out


def plan_sort(rows, destination: str | os.PathLike, threshold: float | None = None) -> SortPlan:
    """``rows``: (path, top_label or None, top_score or None, error or None[, unknown])."""
    rows = list(rows)
    names = folder_names(r[1] for r in rows if not r[3] and r[1] is not None)
    moves, errors = [], 0
    for row in rows:
        path, label, score, error = row[:4]
        if error or label is None:
            errors += 1
            continue
        if len(row) > 4 and row[4]:  # "not one of my classes"
            moves.append(Move(Path(path), UNKNOWN))
            continue
        below = threshold is not None and (score or 0.0) < threshold
        moves.append(Move(Path(path), UNSURE if below else names[label]))
    return SortPlan(Path(destination), moves, errors)


def execute(
    plan: SortPlan,
    mode: str = "copy",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    into: SortReport | None = None,
) -> SortReport:
    """Copy or move every file of ``plan``; the report of what was done. ``into``: a report to fill
    instead of a new one, so a caller still has what was done before a Cancel (Cancelled raised)."""
    if mode not in ("copy", "move"):
        raise ValueError(mode)
    report_ = SortReport() if into is None else into
    total = len(plan.moves)
    for i, move in enumerate(plan.moves):
        check(cancel)
        folder = plan.destination / move.folder
        try:  # a planted symlink "dog -> elsewhere" is refused; a free name is used; never overwrites
            target, renamed = move_into(move.source, folder, copy=mode == "copy")
            report_.done.append((move.source, target))
            report_.renamed += renamed
        except OSError as exc:
            report_.failed.append((move.source, f"{path_text(move.source.name)}: {describe_oserror(exc)}"))
        report(progress, i + 1, total, f"{'Moving' if mode == 'move' else 'Copying'} files")
    return report_
