"""A labelling session over one folder: the object the CLI and the Label workspace drive.

    s = LabelSession.open("photos/", labels_file="labels.csv", progress=..., cancel=...)
    for q in s.ask(10):                 # the images worth labelling next, best first
        s.answer(q.path, "cat")         # or s.skip(q.path), s.none_of_these(q.path)
    report = s.suggestions()            # a label, a score and the unknown flag for the rest
    s.accept_above(0.95)                # bulk accept (also accept(paths), accept_group(g))
    s.undo()                            # every action, writing files included
    s.write_dataset("dataset/", mode="copy")   # class folders, recorded in the undo journal

Images are named by their absolute path (or their index in :attr:`paths`). An image's state is a
class name, :data:`SKIPPED`, :data:`NONE` ("none of these classes") or None (not answered).
Skipped images are still unlabelled (they get suggestions) but are never asked again.

Threads: a session is not thread-safe. To retrain in the background, take :meth:`snapshot` on the
owning thread, run :func:`cnndesk.core.labelling.suggest.fit_suggester` on it in a worker and hand
the result to :meth:`install`; :meth:`suggestions` and :meth:`ask` otherwise fit on demand.
Qt-free and torch-free (embeddings: ONNX Runtime through :mod:`cnndesk.core.predict.embeddings`' cache).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from cnndesk.core.common.progress import CancelToken, ProgressCallback, check, report
from cnndesk.core.labelling import explore, grouping, oddities, picking, space_cache
from cnndesk.core.labelling import folder as fo
from cnndesk.core.labelling.actions import (
    Action,
    Question,
    SessionActions,
    Suggestion,
    SuggestionReport,
)
from cnndesk.core.labelling.suggest import UNCALIBRATED_CAP, FitInput, Suggester, fit_suggester
from cnndesk.core.trust.scores import one_blas_thread

SKIPPED = fo.SKIPPED
NONE = fo.NONE

# embed(paths, progress, cancel, errors) -> (N, D) array, a row of NaN for a file that failed
Embedder = Callable[..., np.ndarray]


def default_embedder(paths, progress=None, cancel=None, errors=None) -> np.ndarray:
    """Multi-stage features of the default network from the on-disk cache; the missing ones are
    computed (ONNX Runtime). When every file is cached the network is not even opened (that took
    1-2 s of each CLI call)."""
    from cnndesk.core.predict.embeddings import EmbeddingCache, embed_paths

    cache: bool | EmbeddingCache = True
    try:
        cache = EmbeddingCache(_default_cache_key())
        rows = [cache.get(p) for p in paths]
        if rows and all(r is not None for r in rows):
            report(progress, len(paths), len(paths), f"{len(paths)} of {len(paths)} images from the cache")
            return np.stack(rows).astype(np.float32, copy=False)
    except Exception:  # e.g. weights not there yet: the full path below says why
        cache = True
    return embed_paths(paths, stages="multi", cache=cache, progress=progress, cancel=cancel, errors=errors)


def _default_cache_key() -> str:
    """The key FeatureExtractor uses for the default network: its name and its weights' export-cache key."""
    from cnndesk.core.models.registry import default_model
    from cnndesk.core.runtime.resolve import resolve

    spec = default_model()
    return f"{spec.name}-{resolve(spec, 'multi', lookup=False).cache_key()}"


def _space_key(embed: Embedder, seed: int, duplicates: bool) -> str | None:
    """What the folder's cached labelling space depends on besides the files (None: do not cache)."""
    try:
        network = _default_cache_key()
    except Exception:  # weights not there yet: embedding will say why
        return None
    name = f"{getattr(embed, '__module__', '?')}.{getattr(embed, '__qualname__', repr(embed))}"
    return f"{name}|{network}|seed={seed}|dim={picking.DIM}|pixels={bool(duplicates)}"


def _odd_images(space: picking.Space, total: int, progress, cancel) -> np.ndarray:
    """The images unlike the whole folder, made while opening (a worker job: cancellable; 8 s at
    50,000 images) rather than on the first suggestion."""
    report(progress, total, total, "Looking for images unlike the rest")
    odd = oddities.odd_images(space.z, cancel=cancel)
    check(cancel)
    return odd


@dataclass
class Group:
    """A visually coherent group of images (k-means on the labelling space)."""

    id: int
    members: list[int]  # indices into the session's paths, most typical first
    answered: dict[str, int] = field(default_factory=dict)  # class -> answered members

    @property
    def typical(self) -> int:
        return self.members[0]


class LabelSession(SessionActions):
    """See the module docstring. Build with :meth:`open` (or directly from embeddings)."""

    def __init__(self, root: str | os.PathLike, paths: list[str], embeddings: np.ndarray | None,
                 unreadable: list[tuple[str, str]] | None = None, labels: dict[str, str | None] | None = None,
                 notes: list[str] | None = None, seed: int = 0, thumbnails: np.ndarray | None = None,
                 space: picking.Space | None = None, odd: np.ndarray | None = None):
        """``paths``: the readable images (absolute), ``embeddings`` one row each; ``labels``:
        path -> class, None (skipped) or NONE; ``thumbnails``: the doctor's thumbnail search
        vectors, one row each (near-duplicates by pixels too), or None; ``space``: the labelling
        space already made (then ``embeddings`` and ``thumbnails`` are not used); ``odd``: its
        :func:`.oddities.odd_images` when already made (else made on first use)."""
        self.root = os.path.abspath(os.fspath(root))
        self.paths: list[str] = list(paths)
        self.unreadable: list[tuple[str, str]] = list(unreadable or [])
        self.notes: list[str] = list(notes or [])
        self.seed = seed
        self._index = {p: i for i, p in enumerate(self.paths)}
        self.space = space if space is not None else picking.make_space(embeddings, seed=seed, pixels=thumbnails)
        self._state: list[str | None] = [None] * len(self.paths)
        self.classes: list[str] = []
        self._undo: list[Action] = []
        self._version = 0
        self._suggester: Suggester | None = None
        self._fitted_version = -1
        self._group_count: int | None = None
        self._groups: list[Group] | None = None
        self._odd = odd if odd is not None and len(odd) == len(self.paths) else None  # made once
        self._group_of: np.ndarray | None = None
        self._auto_group_of: np.ndarray | None = None  # the automatic groups (_automatic_groups)
        self._cover_radius: float | None = None
        self.answers_file = None  # where keep_answers() keeps them (the app), else None
        self._kept_version = 0
        self._given: list[str | None] = []  # per image, what the subfolder names said (kept answers leave it out)
        for p, label in (labels or {}).items():
            i = self._index.get(os.path.abspath(p))
            if i is None:
                continue
            state = SKIPPED if label is None else label
            self._state[i] = state
            if state not in (SKIPPED, NONE) and state not in self.classes:
                self.classes.append(state)
        self.classes.sort()

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | os.PathLike, labels_file: str | os.PathLike | None = None,
             subfolders_are_labels: bool = False, progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None, embed: Embedder | None = None, seed: int = 0,
             duplicates: bool = True, cache_space: bool = True, keep_answers: bool = False) -> LabelSession:
        """Read ``folder`` (subfolders included), its labels (from ``labels_file``, and from the
        subfolder names only when ``subfolders_are_labels``; the file wins) and the embeddings
        (from the cache; the rest computed, with ``progress`` and ``cancel`` — Cancelled is
        raised). With ``cache_space`` the folder's labelling space is read from / written to
        :mod:`.space_cache` (valid while no file changed): a big folder then opens without its
        embeddings. With ``keep_answers`` (the app) the answers given in an earlier run are
        restored (:mod:`.kept`; one undoable action) and :meth:`keep_answers` keeps the new ones.
        Raises LabelError for a folder that is missing, empty or holds no readable image, and for a
        bad labels file."""
        root = os.path.abspath(os.fspath(folder))
        files, notes = fo.list_images(root)
        if not files:
            raise fo.LabelError(f"{fo.display(root, 120)} holds no images")
        known = set(files)
        labels: dict[str, str | None] = {}
        if subfolders_are_labels:
            labels.update(fo.subfolder_labels(files, root))
        if labels_file is not None:
            labels.update(fo.read_labels_kept_on(labels_file, root, known, notes))
        check(cancel)
        embedder = embed or default_embedder
        key = _space_key(embedder, seed, duplicates) if cache_space else None
        sig = space_cache.signature(files) if key else ""
        hit = space_cache.load(root, key, sig) if key else None
        hit = hit if hit is None or known.issuperset(hit.paths) else None  # a hand-edited entry names only these files
        if hit is not None:
            report(progress, len(files), len(files), f"{len(files)} of {len(files)} images from the cache")
            space = picking.space_from_z(hit.z, hit.pixels)
            if hit.odd is None:  # an entry from before oddities were kept: add them once
                hit.odd = _odd_images(space, len(files), progress, cancel)
                space_cache.save(root, key, sig, hit)
            return cls(root, hit.paths, None, hit.unreadable, labels, notes, seed, space=space,
                       odd=hit.odd)._kept(keep_answers)
        errors: list[tuple[str, str]] = []
        x = embedder(files, progress=progress, cancel=cancel, errors=errors)
        check(cancel)
        x = np.asarray(x, np.float32)
        ok = np.isfinite(x).all(1) if x.size else np.zeros(len(files), bool)
        reasons = dict(errors)
        unreadable = [(f, reasons.get(f, "cannot be read")) for f, good in zip(files, ok, strict=True) if not good]
        if not ok.any():
            first = "; ".join(fo.unreadable_line(p, r, root) for p, r in unreadable[:2])
            raise fo.LabelError(f"none of the {len(files)} image files in {fo.display(root, 120)} can be read"
                                + (f": {first}" + ("; ..." if len(unreadable) > 2 else "") if first else ""))
        paths = [f for f, good in zip(files, ok, strict=True) if good]
        pixels = _thumbnail_vectors(paths, progress, cancel) if duplicates else None
        report(progress, len(files), len(files), "Preparing the folder")
        space = picking.make_space(x[ok] if not ok.all() else x, seed=seed, pixels=pixels)
        del x
        odd = None
        try:
            odd = _odd_images(space, len(files), progress, cancel)
        finally:  # a Cancel while looking for odd images still keeps the space made (without them)
            if key:
                space_cache.save(root, key, sig, space_cache.Cached(paths, unreadable, space.z, space.pixels, odd))
        return cls(root, paths, None, unreadable, labels, notes, seed, space=space, odd=odd)._kept(keep_answers)

    # -- reading the state -----------------------------------------------------------------
    def index(self, image: str | os.PathLike | int) -> int:
        """The index of an image given by index or path (KeyError for an unknown image)."""
        if isinstance(image, (int, np.integer)):
            if not 0 <= int(image) < len(self.paths):
                raise KeyError(image)
            return int(image)
        i = self._index.get(os.path.abspath(os.fspath(image)))
        if i is None:
            raise KeyError(os.fspath(image))
        return i

    @property
    def version(self) -> int:
        """Grows with every change of the answers (a view built at an older version is stale)."""
        return self._version

    def state(self, image) -> str | None:
        """The image's class, SKIPPED, NONE, or None when not answered."""
        return self._state[self.index(image)]

    def label_of(self, image) -> str | None:
        """The image's class, or None (not labelled, skipped or none of these)."""
        s = self.state(image)
        return None if s in (None, SKIPPED, NONE) else s

    def relative(self, image) -> str:
        """The image's path relative to the folder (``/`` separators)."""
        return fo.relative(self.paths[self.index(image)], self.root)

    @property
    def labelled(self) -> list[int]:
        """Indices of the images with a class."""
        return [i for i, s in enumerate(self._state) if s not in (None, SKIPPED, NONE)]

    def counts(self) -> dict[str, int]:
        """Labelled images per class (every class listed, in class order)."""
        c = Counter(s for s in self._state if s not in (None, SKIPPED, NONE))
        return {name: c.get(name, 0) for name in self.classes}

    def answered(self) -> np.ndarray:
        return np.array([i for i, s in enumerate(self._state) if s is not None], int)

    # -- groups ----------------------------------------------------------------------------
    def groups(self, count: int | None = None) -> list[Group]:
        """The folder's visual groups (the cold start's graph-merged groups), biggest first; the
        count is chosen automatically (:func:`.grouping.choose_group_count`) unless given here or
        by :meth:`set_group_count`."""
        if count is not None and count != self._group_count:
            self.set_group_count(count)
        if self._groups is None:
            labels = (grouping.visual_groups(self.space, self._group_count, self.seed) if self._group_count
                      else self._automatic_groups())
            k = int(labels.max()) + 1
            sizes = np.bincount(labels, minlength=k)
            groups = []
            for new_id, c in enumerate(sorted(range(k), key=lambda c: -sizes[c])):
                members = np.nonzero(labels == c)[0]
                big = len(members) > picking.TYPICAL_REF  # big folders: density against fewer members
                with one_blas_thread():
                    typ = picking.typicality(self.space.unit, members,
                                             ref_limit=picking.TYPICAL_REF_BIG if big else picking.TYPICAL_REF)
                groups.append(Group(new_id, [int(i) for i in members[np.argsort(-typ, kind="stable")]]))
            self._group_of = np.empty(len(self.paths), int)
            for g in groups:
                self._group_of[g.members] = g.id
            self._groups = groups
        for g in self._groups:
            g.answered = dict(Counter(self._state[i] for i in g.members if self._state[i] not in (None, SKIPPED, NONE)))
        return self._groups

    def in_labelled_group(self) -> np.ndarray:
        """Bool per image: its visual group (at the automatic count, whatever the user chose for the
        grid) holds a labelled image. The out-of-fold evidence behind a calibrated score says nothing
        about a group no answer came from (random-order labelling: 20 labels naming 4 of 10 classes
        showed 816 images at >= 90 %, 71 % right), so :meth:`suggestions` keeps the others' scores
        at :data:`.suggest.UNCALIBRATED_CAP` at most."""
        of = self._automatic_groups()
        hit = np.zeros(int(of.max()) + 1, bool)
        hit[of[self.labelled]] = True
        return hit[of]

    def _automatic_groups(self) -> np.ndarray:
        """The group of every image at the automatic count, made once per session (the grid's
        automatic groups and :meth:`in_labelled_group` share it; the app asks both per refit)."""
        if self._auto_group_of is None:
            k = grouping.choose_group_count(self.space, self.seed)
            self._auto_group_of = grouping.visual_groups(self.space, k, self.seed)
        return self._auto_group_of

    def set_group_count(self, count: int | None) -> None:
        """Regroup into ``count`` groups (None: automatic)."""
        self._group_count = None if count is None else max(1, min(int(count), len(self.paths)))
        self._groups = None
        self._group_of = None

    def group_of(self, image) -> int:
        if self._group_of is None:
            self.groups()
        return int(self._group_of[self.index(image)])

    # -- the model ---------------------------------------------------------------------------
    def snapshot(self) -> FitInput:
        """What a fit needs, copied: labelled rows (and "none of these" as the last class)."""
        idx = [i for i, s in enumerate(self._state) if s not in (None, SKIPPED)]
        has_none = any(self._state[i] == NONE for i in idx)
        classes = list(self.classes) + ([NONE] if has_none else [])
        pos = {c: j for j, c in enumerate(classes)}
        y = np.array([pos[self._state[i]] for i in idx], int)
        return FitInput(self.space.z[idx].copy(), y, classes, self._version)

    def install(self, suggester: Suggester | None, version: int | None = None) -> None:
        """Use a model fitted (maybe in a worker) on :meth:`snapshot`'s data."""
        self._suggester = suggester
        self._fitted_version = suggester.version if suggester is not None else (self._version if version is None else version)

    @property
    def model_is_current(self) -> bool:
        return self._fitted_version == self._version

    def fit(self, cancel: CancelToken | None = None) -> Suggester | None:
        """Fit the suggestion model on the answers so far (None with fewer than two classes)."""
        self.install(fit_suggester(self.snapshot(), cancel, self.seed), self._version)
        return self._suggester

    def model(self) -> Suggester | None:
        """The current model, refitted first when answers changed since."""
        if not self.model_is_current:
            self.fit()
        return self._suggester

    def _probs(self, m: Suggester) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities over the session's classes (the "none" column dropped, if any)."""
        p = m.probs(self.space.z)
        pos = {c: j for j, c in enumerate(m.classes)}
        out = np.zeros((len(self.paths), len(self.classes)), np.float32)
        for j, c in enumerate(self.classes):
            if c in pos:
                out[:, j] = p[:, pos[c]]
        none = p[:, pos[NONE]] if NONE in pos else None
        return out, none

    def suggestions(self, include_answered: bool = False) -> SuggestionReport:
        """A suggestion for every readable image not labelled yet (skipped ones included; with
        ``include_answered`` for labelled ones too, for the "by suggested label" view)."""
        m = self.model()
        rows: list[Suggestion] = []
        want = [i for i, s in enumerate(self._state) if include_answered or s in (None, SKIPPED)]
        odd = self.odd_images()
        if m is None:
            only = self.classes[0] if len(self.classes) == 1 else None
            rows = [Suggestion(i, self.paths[i], only, 0.0, bool(odd[i])) for i in want]
            return SuggestionReport(rows, False, None, self._version)
        probs, none = self._probs(m)
        unknown = m.unknown(self.space.z) | odd  # unlike the answered images, or unlike the whole folder
        best = probs.argmax(1)
        top = probs[np.arange(len(probs)), best]
        if m.calibrated:  # no calibrated claim on a visual group no answer came from
            top = np.where(self.in_labelled_group(), top, np.minimum(top, UNCALIBRATED_CAP))
        for i in want:
            j = int(best[i])
            is_none = none is not None and none[i] > probs[i, j]
            rows.append(Suggestion(i, self.paths[i], self.classes[j], round(float(top[i]), 4),
                                   bool(unknown[i] or is_none)))
        return SuggestionReport(rows, m.claims, m.estimated_accuracy, self._version)

    def odd_images(self) -> np.ndarray:
        """Bool per image: unlike the rest of the folder (:mod:`.oddities`; label-free, made once)."""
        if self._odd is None:
            self._odd = oddities.odd_images(self.space.z)
        return self._odd

    # -- asking ------------------------------------------------------------------------------
    def ask(self, n: int = 10) -> list[Question]:
        """The ``n`` images worth answering next, best first: with no classes yet the most
        typical image of each of ``n`` groups (TypiClust on k-means pieces merged along the
        neighbour graph, :func:`.picking.merged_groups`); later the typical ones among the
        images the model is least sure about, spread over the folder (see :mod:`.picking`).
        Never an answered image, a near-duplicate of one, or an unreadable file."""
        with one_blas_thread():  # small matrix work on a shared machine: threads only fight (10x slower)
            return self._ask(n)

    def _ask(self, n: int) -> list[Question]:
        n = max(0, int(n))
        answered = self.answered()
        allowed = np.array([s is None for s in self._state], bool)
        allowed &= ~picking.near_duplicates(self.space, answered)
        if n == 0 or not allowed.any():
            return []
        cold = len(self.labelled) < picking.TYPICAL_PER_CLASS * max(1, len(self.classes))
        m = self.model() if len(self.classes) >= 2 and not cold else None
        if m is None:
            picks = picking.typical_picks(self.space, answered, allowed, n, self.seed)
        else:
            n_typ = self._explore_count(n, answered)
            if picking.EXPLORE == "cover" and n_typ:
                typ = explore.cover_picks(self.space, answered, allowed, n_typ, self._radius(), self.seed)
            elif picking.EXPLORE == "random" and n_typ:  # a control for the bench
                free = np.nonzero(allowed)[0]
                rng = np.random.default_rng([self.seed, len(answered)])
                typ = [picking.Pick(int(i), "explore", 0) for i in rng.choice(free, min(n_typ, len(free)), replace=False)]
            elif picking.EXPLORE == "far" and n_typ:
                typ = explore.far_picks(self.space, answered, allowed, n_typ)
            else:
                typ = picking.typical_picks(self.space, answered, allowed, n_typ, self.seed) if n_typ else []
            taken = np.array([p.index for p in typ], int)
            excl = picking.near_duplicates(self.space, taken)
            probs, _ = self._probs(m)
            unc = picking.uncertain_picks(self.space, probs, allowed, n - len(typ), self.seed, exclude=excl,
                                          answered=answered)
            picks = _interleave(unc, typ)
        return [self._question(p) for p in picks[:n]]

    def _radius(self) -> float:
        if self._cover_radius is None:
            self._cover_radius = explore.cover_radius(self.space, self.seed)
        return self._cover_radius

    def _explore_count(self, n: int, answered: np.ndarray) -> int:
        """How many of ``n`` asks explore: EXPLORE_SHARE of them, times the share of the folder
        that no answered image covers (it fades as the answers spread over the folder)."""
        if picking.EXPLORE_SHARE <= 0 or n <= 0:
            return 0
        open_share = 1.0 - float(explore.covered(self.space, answered, self._radius()).mean())
        return int(round(picking.EXPLORE_SHARE * n * open_share))

    def _question(self, p: picking.Pick) -> Question:
        if p.reason == "uncertain" and p.between is not None:
            a, b = (self.classes[j] for j in p.between)
            text = f"the model is unsure between {fo.quoted(a)} and {fo.quoted(b)}"
        elif p.reason == "explore":
            text = f"a typical image of a part of the folder no answer is near yet ({p.group_size} images)"
        elif p.group_size == 1:
            text = "an image like no other in the folder, with no answer yet"
        elif p.group_size:
            text = f"the most typical of {p.group_size} similar images with no answers yet"  # not a grid group: sized otherwise
        else:
            text = "a typical image not answered yet"
        kind = "typical" if p.reason == "explore" else p.reason  # an unexplored part: shown as the cold start's
        return Question(p.index, self.paths[p.index], kind, text)

    # -- actions (undoable) ------------------------------------------------------------------
    def _changed(self) -> None:
        self._version += 1

    def _set_states(self, description: str, changes: Iterable[tuple[int, str | None]],
                    new_classes: Iterable[str] = ()) -> Action | None:
        added = []
        for c in new_classes:
            if c not in (SKIPPED, NONE) and c not in self.classes:
                fo.check_label(c)
                added.append(c)
        diff = [(i, self._state[i], new) for i, new in changes if self._state[i] != new]
        if not diff and not added:
            return None
        self.classes.extend(added)
        for i, _, new in diff:
            self._state[i] = new
        action = Action(description, diff, added)
        self._undo.append(action)
        self._changed()
        return action


def _thumbnail_vectors(paths: list[str], progress, cancel) -> np.ndarray | None:
    from cnndesk.core.doctor import duplicates as doctor_dupes

    try:
        thumbs, _, _ = doctor_dupes.thumbnails(paths, doctor_dupes.ThumbCache(), progress, cancel)
    except OSError:
        return None
    return doctor_dupes.search_vectors(thumbs)


def _interleave(a: list, b: list) -> list:
    """a's and b's items alternating in proportion, a first."""
    out, ia, ib = [], 0, 0
    while ia < len(a) or ib < len(b):
        if ib >= len(b) or (ia < len(a) and ia * (len(b) + 1) <= ib * (len(a) + 1) + len(a)):
            out.append(a[ia])
            ia += 1
        else:
            out.append(b[ib])
            ib += 1
    return out
