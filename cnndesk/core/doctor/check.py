"""The dataset doctor: find what is wrong with a training folder before training on it.

Kinds of issue: ``label`` (probably in the wrong class folder; ``suggested`` names the likely class),
``duplicate`` (the same picture twice in one split; ``other`` is the second file), ``leak`` (the same
picture in train and in val/test), ``overlap`` (two pictures that share a part, e.g. crops of one
photo), ``outlier`` (looks like none of the classes), ``unreadable``, ``tiny`` (much smaller than
the model's input), ``imbalance`` and ``too_few``.

Nothing here changes the dataset except on request: :func:`move_to_class` (undone by
:func:`undo_move`) and :func:`ignore` (which records the issue in ``.cnndesk-doctor.json`` in the
dataset folder). Qt-free; torch-free on the CPU (embeddings come from the ONNX features export and
the embedding cache shared with quick training).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from cnndesk.core.common import cache_budget, neighbours, system
from cnndesk.core.common.paths import atomic_write, user_cache_dir
from cnndesk.core.common.progress import CancelToken, ProgressCallback, check, report
from cnndesk.core.doctor import duplicates as dupes
from cnndesk.core.doctor import label_check as stats
from cnndesk.core.doctor.moves import Moved, move_to_class, undo_move  # noqa: F401 (callers use check.*)
from cnndesk.core.doctor.walk import inside, read_ignore_file, walk
from cnndesk.core.images.load import is_image_path
from cnndesk.core.models.registry import DEFAULT_MODEL
from cnndesk.core.training.datasets import IMBALANCE_RATIO, MIN_PER_CLASS, DatasetError

VERSION = 9  # of the checks: cached results of another version are not reused
KINDS = ("label", "leak", "duplicate", "overlap", "outlier", "unreadable", "tiny", "imbalance", "too_few")
IGNORE_FILE = ".cnndesk-doctor.json"
SPLITS = ("train", "val", "validation", "test")
# Near-duplicates (set on generated copies, bench/doctor_data.py seeds 0-1: resized 0.75-2×,
# cropped by 1-3 px, re-encoded; checked on seeds 2-3). Colours on 0-255. Prefilter: mean
# difference of the 8×8 colour maps ≤ COLOUR_MAP (copies ≤ 10.6; other pictures' 1st percentile
# 14.5). Then, on slightly blurred 32-px thumbnails with the centre of one placed on the other at
# the best small shift and scale: mean colour difference (copies ≤ 7.5 but for one aliasing
# stripes copy; other pictures ≥ 7.9) and grey correlation (copies mostly ≥ 0.9).
NEIGHBOURS = 4
OUTLIER_K = 5  # an image's distance to the rest: the mean over its nearest OUTLIER_K
SEARCH_THREADS = 2  # for the approximate neighbour search of big sets (the rest runs on one BLAS thread)
LABEL_DIMS = 256
COLOUR_MAP, COLOUR_MAP_STRICT = 12.0, 11.0
COLOUR, STRUCTURE_LOOSE = 6.5, 0.6
COLOUR_LOOSE, STRUCTURE = 9.0, 0.9
# the largest 4×4-patch difference of copies: mostly ≤ 23 (one 31); a circle and a square drawn on
# the same background: 22-42, with CNN features that disagree (cosine ≤ 0.35; copies ≥ 0.38)
LOCAL, FEATURES_AGREE = 24.0, 0.5


@dataclass
class Issue:
    kind: str
    path: str
    label: str | None = None
    suggested: str | None = None
    other: str | None = None
    score: float = 1.0
    reason: str = ""
    likely: bool = True  # labels: strong evidence; the rest only with less_likely (CLI --all)

    def key(self) -> tuple:
        return (self.kind, self.path, self.other)


@dataclass
class Report:
    root: str
    issues: list[Issue]
    summary: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"issues": [asdict(i) for i in self.issues], "summary": self.summary}

    def by_kind(self) -> dict[str, list[Issue]]:
        out: dict[str, list[Issue]] = {k: [] for k in KINDS}
        for i in self.issues:
            out.setdefault(i.kind, []).append(i)
        return {k: v for k, v in out.items() if v}


@dataclass
class Files:
    root: Path
    layout: str  # "classes" or "splits"
    classes: list[str]
    items: list[tuple[str, str, str]]  # (path, split, class)
    class_dirs: dict[str, list[str]]  # class -> its folders
    problems: list[Issue]


# -- finding the files --------------------------------------------------------------------------


def _walk(folder: Path, ancestors: set[str], problems: list[Issue], root_real: str | None = None) -> list[str]:
    """Image files under ``folder``; links that loop back, point nowhere or leave the dataset become issues."""
    return walk(folder, ancestors, problems, Issue, root_real)


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot read the folder ({exc.strerror or exc})") from None


def collect(root: str | os.PathLike) -> Files:
    """The dataset's files: class folders, or train/ + val/ (+ test/) folders holding them."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder. Choose a folder with one subfolder per class.")
    subs = {p.name.lower(): p for p in _subdirs(root)}
    splits = [s for s in SPLITS if s in subs]
    layout = "splits" if "train" in subs and len(splits) >= 2 else "classes"
    problems: list[Issue] = []
    items: list[tuple[str, str, str]] = []
    class_dirs: dict[str, list[str]] = {}
    root_real = os.path.realpath(root)
    top = {root_real}
    for split, folder in ([(s, subs[s]) for s in splits] if layout == "splits" else [("all", root)]):
        ancestors = top | {os.path.realpath(folder)}
        stray = [p for p in _walk_files_only(folder)]
        for p in stray:
            problems.append(Issue("unreadable", p, reason=f"{os.path.basename(p)}: not inside a class folder; "
                                  "not used for training"))
        for d in _subdirs(folder):
            if not inside(d, root_real):  # a class folder that is a link out of the dataset (to / or /etc)
                problems.append(Issue("unreadable", str(d), reason=f"{d.name}: a link to a folder outside the "
                                      "dataset; not followed"))
                continue
            class_dirs.setdefault(d.name, []).append(str(d))
            for p in _walk(d, ancestors, problems, root_real):
                items.append((p, "val" if split == "validation" else split, d.name))
    classes = sorted(class_dirs)
    if not classes:
        raise DatasetError(f"{root}: no class folders found. Put the images in one subfolder per class "
                           "(e.g. cats/, dogs/), or in train/ and val/ folders that each hold class subfolders.")
    return Files(root, layout, classes, items, class_dirs, problems)


def _walk_files_only(folder: Path) -> list[str]:
    try:
        return sorted(e.path for e in os.scandir(folder) if e.is_file() and is_image_path(e.name))
    except OSError:
        return []


# -- embeddings ---------------------------------------------------------------------------------


def embed_files(paths: list[str], spec, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
           device: str = "auto") -> tuple[dict, dict | None, dict[str, str], int, str]:
    """``doctor_embed.embed_multi`` and the input size: the one place the doctor embeds images."""
    from cnndesk.core.doctor import embed as doctor_embed

    feats, multi, errors, source = doctor_embed.embed_multi(paths, spec, progress, cancel, device)
    return feats, multi, errors, int(getattr(spec, "input_size", 224) or 224), source


# -- the check ----------------------------------------------------------------------------------


def check_dataset(root: str | os.PathLike, base: str = DEFAULT_MODEL, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None, device: str = "auto", apply_ignores: bool = True,
                  less_likely: bool = False) -> Report:
    """Run every check on the dataset folder ``root`` and return the issues, worst first per kind
    (``less_likely``: also label suspicions without strong evidence). An unchanged folder (same
    files, sizes, times) is answered from the last result."""
    from cnndesk.core.models.registry import get_spec

    t0 = time.perf_counter()
    report(progress, 0, None, "Looking at the folder")
    files = collect(root)
    spec = get_spec(base)
    memo = _memo_path(files, spec)
    issues, checked, source = load_memo(memo)
    reused = issues is not None
    if issues is None:
        issues, checked, source = run_checks(files, spec, progress, cancel, device)
        save_memo(memo, issues, checked, source)
    ignored = load_ignores(files.root) if apply_ignores else set()
    kept = [_as_given(root, files.root, i) for i in issues if _ignore_key(files.root, i) not in ignored
            and (i.likely or less_likely)]
    order = {k: n for n, k in enumerate(KINDS)}
    kept.sort(key=lambda i: (order.get(i.kind, 99), -i.score, i.path))
    counts = Counter(c for _, _, c in files.items)
    hidden = 0 if less_likely else sum(not i.likely for i in issues if _ignore_key(files.root, i) not in ignored)
    summary = {
        "root": str(root), "layout": files.layout, "classes": files.classes,
        "counts": {c: counts.get(c, 0) for c in files.classes},
        "images": len(files.items), "checked": checked,
        "splits": dict(Counter(s for _, s, _ in files.items)),
        "issues": dict(Counter(i.kind for i in kept)), "ignored": len(issues) - len(kept) - hidden, "less_likely": hidden,
        "base": spec.name, "embeddings": source, "seconds": round(time.perf_counter() - t0, 2), "reused": reused,
    }
    return Report(str(root), kept, summary)


def _as_given(given, root: Path, issue: Issue) -> Issue:
    """Paths spelled as DATA_DIR (exactly as the caller wrote it) joined with the path inside it."""
    given = os.fspath(given)

    def spell(p):
        if p is None:
            return None
        rel = os.path.relpath(p, root)
        return p if rel.startswith("..") else (given if rel == "." else os.path.join(given, rel))

    return replace(issue, path=spell(issue.path), other=spell(issue.other))


def _memo_path(files: Files, spec) -> Path:
    import hashlib

    def raw(text: str) -> bytes:  # names that are not UTF-8 (surrogates) hash as their bytes
        return text.encode("utf-8", "surrogateescape")

    h = hashlib.sha1(raw(f"{VERSION}|{spec.name}|{files.root}|{files.layout}"))
    for p, split, c in files.items:
        h.update(raw(f"{dupes.file_key(p)}|{split}|{c}\n"))
    for i in files.problems:
        h.update(raw(f"{i.kind}|{i.path}\n"))
    for c in files.classes:
        h.update(raw(f"class|{c}\n"))
    return user_cache_dir() / "doctor" / "results" / f"{h.hexdigest()}.json"


def load_memo(path: Path) -> tuple[list[Issue] | None, int, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cache_budget.touch(path)
        return [Issue(**d) for d in data["issues"]], int(data["checked"]), str(data.get("embeddings", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None, 0, ""


def save_memo(path: Path, issues: list[Issue], checked: int, source: str = "") -> None:
    try:
        with cache_budget.adding(path), atomic_write(path, "w") as fh:  # under the caches' size cap
            fh.write(json.dumps({"issues": [asdict(i) for i in issues], "checked": checked, "embeddings": source}))
    except OSError:  # a cache only
        pass


def run_checks(files: Files, spec, progress, cancel, device) -> tuple[list[Issue], int, str]:
    issues: list[Issue] = list(files.problems)
    paths = [p for p, _, _ in files.items]
    labels = {p: c for p, _, c in files.items}
    split_of = {p: s for p, s, _ in files.items}

    # counts, empty and single classes
    counts = Counter(c for _, _, c in files.items)
    for c in files.classes:
        n = counts.get(c, 0)
        if n < MIN_PER_CLASS:
            what = "is empty" if n == 0 else f"has only {n} image{'s' if n != 1 else ''}"
            issues.append(Issue("too_few", files.class_dirs[c][0], label=c, score=1.0 - n / MIN_PER_CLASS,
                                reason=f"class “{c}” {what}; training needs at least {MIN_PER_CLASS} per class "
                                "(add pictures or remove the folder)"))
    nonempty = [c for c in files.classes if counts.get(c)]
    if len(nonempty) < 2:
        issues.append(Issue("too_few", str(files.root), score=1.0,
                            reason=f"only {len(nonempty)} class folder{'s' if len(nonempty) != 1 else ''} with images: "
                            "training needs at least two classes (one subfolder per class)"))
    elif len(nonempty) >= 2:
        most = max(counts[c] for c in nonempty)
        for c in nonempty:
            if counts[c] >= MIN_PER_CLASS and most / counts[c] >= IMBALANCE_RATIO:
                issues.append(Issue("imbalance", files.class_dirs[c][0], label=c, score=min(1.0, most / counts[c] / 20),
                                    reason=f"“{c}” has {counts[c]} images, the largest class {most} "
                                    f"({most / counts[c]:.0f}×): more pictures of it would help"))

    # pixels: thumbnails (cached), sizes, unreadable files
    thumbs, sizes, thumb_errors = dupes.thumbnails(paths, dupes.ThumbCache(), progress, cancel)
    check(cancel)
    bad = {paths[i]: why for i, why in thumb_errors.items()}
    # embeddings (cached, shared with quick training)
    readable = [p for p in paths if p not in bad]
    feats, multi, emb_errors, input_size, source = embed_files(readable, spec, progress, cancel, device)
    bad.update(emb_errors)
    for p, why in bad.items():
        issues.append(Issue("unreadable", p, label=labels[p], reason=why))
    check(cancel)
    report(progress, 0, None, "Checking labels and duplicates")
    # one BLAS thread: on a busy 2-core machine two threads made the PCA and the regression 4-8×
    # slower (measured: eigh 5.2 s vs 1.3 s), and the app's UI and decoders need a core anyway
    from threadpoolctl import threadpool_limits

    checked = int(sum(p in feats for p in paths))
    vectors = [feats, multi]  # handed over, so that the analysis can let them go (50,000 images: 0.25 GB)
    del feats, multi
    with threadpool_limits(1):
        issues += analyse(paths, labels, split_of, thumbs, sizes, vectors, input_size, files.classes, nonempty, cancel)
    return issues, checked, source


def analyse(paths, labels, split_of, thumbs, sizes, feats, input_size, classes, nonempty, cancel,
             multi=None) -> list[Issue]:
    """Every check after embedding. ``feats``: path -> last-layer vector, or the list
    ``[feats, multi]``, which is emptied here so that the embeddings are freed once the label
    check has used them, before the pair search (issue 25: at 50,000 images the embeddings are
    0.25 GB even as float16)."""
    if isinstance(feats, list):
        handed = feats
        feats, multi = handed
        handed.clear()
    issues: list[Issue] = []
    ok = np.array([p in feats for p in paths], bool)
    idx_ok = np.flatnonzero(ok)
    issues += _tiny(paths, labels, sizes, idx_ok, input_size)
    # principal components: as good as all 1280 features and much faster; fewer on small sets,
    # where 256 overfit (measured: 1,500 images best at 256, 400 images at 32-64)
    dims = int(np.clip(len(idx_ok) // 6, 32, LABEL_DIMS))
    # the embedding cache's rows, projected a block at a time (no N × 1,280 copy)
    z = stats.project(stats.Rows([feats[paths[i]] for i in idx_ok]), dims) if len(idx_ok) >= 2 else np.zeros((len(idx_ok), 1))
    emb = stats.unit(z)
    if multi:
        z = None  # the label check judges quick training's features instead (50 MB at 50,000 images)
    # one neighbour search serves the outliers (OUTLIER_K nearest) and the feature candidates of
    # the pair search (its first NEIGHBOURS)
    nearest = neighbours.knn(emb, emb, max(NEIGHBOURS, OUTLIER_K), exclude_self=True, threads=SEARCH_THREADS,
                             cancel=cancel) if len(idx_ok) >= 2 and emb.shape[1] > 1 else None
    check(cancel)
    # labels before pairs (they do not depend on each other; issues are sorted afterwards): the
    # embeddings are freed before the pair search needs its own memory
    issues += _label_and_outlier_issues(paths, labels, classes, nonempty, idx_ok, multi, z, emb, nearest, cancel)
    del feats, multi
    system.trim_memory()
    issues += pair_issues(paths, labels, split_of, thumbs, emb, idx_ok, cancel, sizes, nearest=nearest)
    return issues


def _label_and_outlier_issues(paths, labels, classes, nonempty, idx_ok, multi, z, emb, nearest,
                              cancel) -> list[Issue]:
    """Outliers (from ``nearest``), then suspected wrong labels (none reported for an outlier)."""
    issues: list[Issue] = []
    strays = set()
    if len(idx_ok) >= 10:  # outliers first: a stray photo is an outlier, not a mislabelled image
        out_idx, out_score, _ = stats.outliers(emb, OUTLIER_K, cancel=cancel, nearest=nearest)
        for j, sc in zip(out_idx, out_score, strict=True):
            p = paths[idx_ok[j]]
            strays.add(p)
            issues.append(Issue("outlier", p, label=labels[p], score=round(float(sc), 4),
                                reason="looks unlike the other images of every class (far from its nearest neighbours)"))
    if len(nonempty) >= 2 and len(idx_ok) >= 10:
        cls_index = {c: k for k, c in enumerate(classes)}
        y = np.array([cls_index[labels[paths[i]]] for i in idx_ok])
        # quick training's features (the cache's rows, never stacked whole), or the PCA coordinates
        xq = stats.Rows([multi[paths[i]] for i in idx_ok]) if multi else z
        found, probs = stats.label_issues(xq, y, len(classes), cancel, quick=bool(multi))
        strong = stats.strong_evidence(probs, y, None if nearest is None else nearest[1][:, :OUTLIER_K])
        for j in found:
            p = paths[idx_ok[j]]
            sugg = classes[int(np.argmax(probs[j]))]
            given = float(probs[j, y[j]])
            if sugg == labels[p] or p in strays:
                continue
            issues.append(Issue("label", p, label=labels[p], suggested=sugg, score=round(1.0 - given, 4), likely=bool(strong[j]),
                                reason=f"looks like “{sugg}” ({probs[j].max():.0%}), not “{labels[p]}” ({given:.0%})"))
    return issues


def _tiny(paths, labels, sizes, idx_ok, input_size) -> list[Issue]:
    if not len(idx_ok):
        return []
    short = sizes[idx_ok].min(1)
    typical = float(np.median(short))
    out = []
    for j, i in enumerate(idx_ok):
        s = int(short[j])
        if s < 16 or (s < input_size / 4 and s < typical / 2):
            w, h = (int(v) for v in sizes[i])
            out.append(Issue("tiny", paths[i], label=labels[paths[i]], score=round(1 - s / max(typical, 1), 4),
                             reason=f"{w}×{h} pixels, much smaller than the model's {input_size}×{input_size} "
                             f"input and than most images here ({int(typical)} px)"))
    return out


def _same_picture(corr: float, colour: float, local: float, colour_map: float, features: float) -> bool:
    """Aligned colours that agree closely plus some structure, or strong structure with colours
    that agree a little less (re-encoding and resizing shift colours) — unless one patch differs
    a lot and the CNN features disagree too (the same background with another symbol on it)."""
    if local > LOCAL and features < FEATURES_AGREE:
        return False
    if colour <= COLOUR and corr >= STRUCTURE_LOOSE:
        return True
    return colour <= COLOUR_LOOSE and corr >= STRUCTURE and colour_map <= COLOUR_MAP_STRICT


def pair_issues(paths, labels, split_of, thumbs, emb, idx_ok, cancel, sizes, nearest=None) -> list[Issue]:
    """Duplicate and leak issues. Identical pictures (same thumbnail and size) are grouped first;
    candidates among the others: each picture's nearest neighbours by pixels (structure + colours)
    and by CNN features; kept when the colours agree and the centre of one matches the other at a
    small shift and scale (what cropping and resizing do). ``nearest``: the
    :func:`~cnndesk.core.common.neighbours.knn` answer of ``emb`` against itself (at least
    NEIGHBOURS columns), reused when no picture has an identical twin."""
    if len(idx_ok) < 2:
        return []
    everything = len(idx_ok) == len(thumbs)  # no copies of 50,000 thumbnails when every picture is in
    t = thumbs if everything else thumbs[idx_ok]
    reps, twins = dupes.identical_groups(t, sizes[idx_ok])
    pairs = np.zeros((0, 2), np.int64)
    if len(reps) >= 2:
        vectors = dupes.search_vectors(t if len(reps) == len(t) else t[reps])
        cands = [dupes.top_pairs(vectors, NEIGHBOURS, 0.5, cancel=cancel, threads=SEARCH_THREADS)]
        del vectors
        if emb.shape[1] > 1 and nearest is not None and len(reps) == len(t):
            d, i = nearest
            cands.append(neighbours.pairs_from_knn(d[:, :NEIGHBOURS], i[:, :NEIGHBOURS], 1.0 - 0.8)[0])
        elif emb.shape[1] > 1:
            cands.append(dupes.top_pairs(emb[reps], NEIGHBOURS, 0.8, cancel=cancel, threads=SEARCH_THREADS))
        pairs = reps[np.unique(np.concatenate(cands), axis=0)]
    col = dupes.colour_distance(t, pairs)
    pairs, col = pairs[col <= COLOUR_MAP], col[col <= COLOUR_MAP]
    out = []
    for (a, b), c8 in [*zip(pairs, col, strict=True), *((tw, None) for tw in twins)]:
        check(cancel)
        e = float(emb[a] @ emb[b]) if emb.shape[1] > 1 else 0.0
        corr, colour, local = dupes.aligned_match(t[a], t[b]) if c8 is not None else (1.0, 0.0, 0.0)
        if c8 is not None and not _same_picture(corr, colour, local, c8, e):
            corr2, colour2, local2 = dupes.aligned_match(t[b], t[a])
            if corr2 > corr:
                corr, colour, local = corr2, colour2, local2
            if not _same_picture(corr, colour, local, c8, e):
                continue
        pa, pb = paths[idx_ok[a]], paths[idx_ok[b]]
        sa, sb = split_of[pa], split_of[pb]
        if sa != sb and "train" in (sa, sb) and sa != "train":
            pa, pb, sa, sb = pb, pa, sb, sa
        kind, where = dupes.pair_kind(corr, colour, sa, sb)
        differ = f"; labelled “{labels[pa]}” and “{labels[pb]}”" if labels[pa] != labels[pb] else ""
        score = float(np.clip(0.5 * corr + 0.5 * (1 - colour / 64), 0, 1))
        out.append(Issue(kind, pa, label=labels[pa], other=pb, score=round(score, 4),
                         reason=f"{where} (pixels {corr:.0%} alike after alignment, colours within {colour:.0f}/255, "
                         f"features {max(e, 0):.0%}){differ}"))
    return out


# -- ignoring and fixing ------------------------------------------------------------------------


def _rel(root: Path, path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:
        return path


def _ignore_key(root: Path, issue: Issue) -> tuple:
    return (issue.kind, _rel(root, issue.path), _rel(root, issue.other))


def load_ignores(root: str | os.PathLike) -> set[tuple]:
    try:  # size-capped, depth-checked: a huge or 200k-deep file is no ignore file
        data = read_ignore_file(Path(root) / IGNORE_FILE) or {}
        return {(d["kind"], d["path"], d.get("other")) for d in data.get("ignored", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def ignore(root: str | os.PathLike, issue: Issue) -> Path:
    """Record ``issue`` as ignored in the dataset's small ignore file (written atomically)."""
    root = Path(root)
    keys = load_ignores(root) | {_ignore_key(root, issue)}
    rows = [{"kind": k, "path": p, "other": o} for k, p, o in sorted(keys, key=lambda t: tuple(map(str, t)))]
    target = root / IGNORE_FILE
    with atomic_write(target, "w") as fh:
        fh.write(json.dumps({"about": "issues the cnndesk dataset check should not show again",
                             "ignored": rows}, indent=1))
    return target
