"""Datasets for fine-tuning: a folder with one subfolder per class (or ``train/`` and ``val/``
folders that each hold class subfolders). Scanning is fast (headers only); files that turn out to
be unreadable are reported and skipped, never fatal. Qt-free, torch-free."""

from __future__ import annotations

import os
import random
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from cnndesk.core.common.errors import CnndeskError
from cnndesk.core.common.links import inside
from cnndesk.core.common.safeio import display, path_text
from cnndesk.core.images.load import bomb_reason, open_image, pixel_limit
from cnndesk.core.predict.stream import walk_images

MIN_PER_CLASS = 5
IMBALANCE_RATIO = 4.0


class DatasetError(CnndeskError):
    pass


@dataclass
class Dataset:
    root: Path
    classes: list[str]
    train: list[tuple[str, int]]  # (path, class index)
    val: list[tuple[str, int]]
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    explicit_split: bool = False

    def counts(self) -> dict[str, int]:
        c = Counter(y for _, y in self.train + self.val)
        return {name: c.get(i, 0) for i, name in enumerate(self.classes)}

    def summary(self) -> dict:
        return {
            "root": str(self.root),
            "classes": self.classes,
            "counts": self.counts(),
            "train": len(self.train),
            "val": len(self.val),
            "unreadable": len(self.unreadable),
            "warnings": self.warnings,
        }


def _image_files(folder: Path, skipped: list[tuple[str, str]] | None = None, within: str | None = None) -> list[Path]:
    return [Path(p) for p in walk_images(folder, recursive=True, skipped=skipped, within=within)]


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except OSError:
        return False


def _class_dirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and _is_dir(p))
    except OSError as exc:
        raise DatasetError(f"{path_text(folder)}: cannot read the folder ({exc.strerror or exc})") from None


def quick_check(path: Path) -> str | None:
    """Header-only check; returns a reason when the file is clearly not a readable image."""
    name = path_text(path.name)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            return f"{name}: not a regular file"
        if st.st_size == 0:
            return f"{name}: the file is empty (0 bytes)"
        with open_image(path) as im:  # it ignores Pillow's bomb warning (pixel_limit decides)
            w, h = im.size
        if w * h > pixel_limit():
            return f"{name}: {bomb_reason((w, h))}"
    except Image.DecompressionBombError:
        return f"{name}: {bomb_reason(None)}"
    except UnidentifiedImageError:
        return f"{name}: not an image Pillow can read"
    except OSError as exc:
        return f"{name}: cannot be read ({exc.strerror or exc})"
    except Exception as exc:  # a damaged header may raise anything: skip the file, say why
        return f"{name}: the file is damaged ({type(exc).__name__})"
    return None


def scan(
    root: str | os.PathLike,
    val_split: float = 0.2,
    seed: int = 0,
    check_files: bool = True,
) -> Dataset:
    """Scan a dataset folder and split it (stratified, seeded) unless it has train/ and val/."""
    root = Path(root)
    if not _is_dir(root):
        raise DatasetError(f"{root}: not a folder. Choose a folder with one subfolder per class.")
    subs = {p.name.lower(): p for p in _class_dirs(root)}
    explicit = "train" in subs and ("val" in subs or "validation" in subs)
    unreadable: list[tuple[str, str]] = []
    root_real = os.path.realpath(root)
    skipped: list[tuple[str, str]] = []
    notes: list[str] = []

    def collect(folder: Path) -> dict[str, list[str]]:
        per: dict[str, list[str]] = {}
        real: dict[str, str] = {}
        for d in _class_dirs(folder):
            key = os.path.realpath(d)
            if key in real:  # a class folder linked to another: its images would count twice
                notes.append(f"{display(d.name)} is a link to {display(real[key])}; skipped")
                continue
            if not inside(d, root_real):  # `ln -s / everything`: never walk the whole filesystem
                notes.append(f"{display(d.name)} is a link to a folder outside the dataset; skipped")
                continue
            real[key] = d.name
            files = []
            for f in _image_files(d, skipped, root_real):
                reason = quick_check(f) if check_files else None
                if reason:
                    unreadable.append((str(f), reason))
                else:
                    files.append(str(f))
            per[d.name] = files
        return per

    if explicit:
        train_per = collect(subs["train"])
        val_per = collect(subs.get("val") or subs["validation"])
        classes = sorted(c for c in set(train_per) | set(val_per) if train_per.get(c) or val_per.get(c))
    else:
        per = collect(root)
        classes = sorted(c for c in per if per[c])
    if len(classes) < 2:
        raise DatasetError(
            f"{root}: found {len(classes)} class folder(s) with images; training needs at least two "
            "(one subfolder per class, each holding its images)."
        )
    index = {c: i for i, c in enumerate(classes)}
    if explicit:
        train = [(f, index[c]) for c in classes for f in train_per.get(c, [])]
        val = [(f, index[c]) for c in classes for f in val_per.get(c, [])]
    else:
        rng = random.Random(seed)
        train, val = [], []
        for c in classes:
            files = list(per[c])
            rng.shuffle(files)
            n_val = int(round(len(files) * val_split)) if len(files) >= 2 else 0
            n_val = min(max(n_val, 1 if val_split > 0 and len(files) >= 3 else 0), len(files) - 1)
            val += [(f, index[c]) for f in files[:n_val]]
            train += [(f, index[c]) for f in files[n_val:]]
    ds = Dataset(root, classes, train, val, unreadable, [], explicit)
    counts = ds.counts()
    small = [c for c, n in counts.items() if n < MIN_PER_CLASS]
    if small:
        ds.warnings.append(
            f"{len(small)} class(es) have fewer than {MIN_PER_CLASS} images ({', '.join(small[:5])}): "
            "results will be unreliable; add more pictures."
        )
    most, least = max(counts.values()), max(1, min(counts.values()))
    if most / least >= IMBALANCE_RATIO:
        big = max(counts, key=counts.get)
        tiny = min(counts, key=counts.get)
        ds.warnings.append(
            f"The classes are imbalanced ({big}: {counts[big]} images, {tiny}: {counts[tiny]}); "
            "training weights the rare classes up, but more images of them would help more."
        )
    if unreadable:
        ds.warnings.append(f"{len(unreadable)} file(s) cannot be read and are skipped.")
    for folder, reason in skipped:
        unreadable_folder = "link" not in reason  # a link out of the dataset is skipped, not unreadable
        ds.warnings.append(f"the folder {display(folder)} {'cannot be read and ' if unreadable_folder else ''}"
                           f"is skipped ({reason}).")
    ds.warnings.extend(notes)
    return ds


def class_weights(labels: list[int], n_classes: int) -> list[float]:
    """Inverse-frequency weights (mean 1) for an imbalanced training set."""
    c = Counter(labels)
    raw = [len(labels) / (n_classes * max(1, c.get(i, 0))) for i in range(n_classes)]
    mean = sum(raw) / n_classes
    return [w / mean for w in raw]
