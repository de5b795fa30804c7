"""Sort classified files into one folder per predicted label ("Sort into folders…").

Plan first (a summary the user confirms), then copy or move. Never overwrites: a name clash gets
" (1)", " (2)"… Files a user model flags as not one of its classes go to ``_unknown``; files below
the confidence threshold go to ``_unsure``; files that failed to load are left where they are. Qt-free.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cnndesk.core.progress import CancelToken, ProgressCallback, check, report

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


_BAD = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def folder_name(label: str) -> str:
    """A label as a safe folder name on Linux, macOS and Windows."""
    name = _BAD.sub("_", label).strip(" .")
    return name[:100] or "_unnamed"


def plan_sort(rows, destination: str | os.PathLike, threshold: float | None = None) -> SortPlan:
    """``rows``: (path, top_label or None, top_score or None, error or None[, unknown])."""
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
        moves.append(Move(Path(path), UNSURE if below else folder_name(label)))
    return SortPlan(Path(destination), moves, errors)


def unique_path(target: Path) -> tuple[Path, bool]:
    """``target`` if free, else ``name (1).ext``, ``name (2).ext``…; True when renamed."""
    if not target.exists():
        return target, False
    stem, suffix = target.stem, target.suffix
    i = 1
    while True:
        candidate = target.with_name(f"{stem} ({i}){suffix}")
        if not candidate.exists():
            return candidate, True
        i += 1


def execute(
    plan: SortPlan,
    mode: str = "copy",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> SortReport:
    if mode not in ("copy", "move"):
        raise ValueError(mode)
    report_ = SortReport()
    total = len(plan.moves)
    for i, move in enumerate(plan.moves):
        check(cancel)
        folder = plan.destination / move.folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target, renamed = unique_path(folder / move.source.name)
            if mode == "copy":
                # copy to a temporary name, then link into place: never clobbers a file that
                # appeared meanwhile
                tmp = target.with_name(f".{target.name}.cnndesk-part")
                shutil.copy2(move.source, tmp)
                try:
                    os.link(tmp, target)
                    os.unlink(tmp)
                except OSError:
                    target, renamed2 = unique_path(target)
                    os.replace(tmp, target)
                    renamed = renamed or renamed2
            else:
                if target.exists():  # pragma: no cover - raced
                    target, renamed = unique_path(target)
                shutil.move(str(move.source), str(target))
            report_.done.append((move.source, target))
            report_.renamed += renamed
        except OSError as exc:
            report_.failed.append((move.source, f"{move.source.name}: {exc.strerror or exc}"))
        report(progress, i + 1, total, f"{'Moving' if mode == 'move' else 'Copying'} files")
    return report_
