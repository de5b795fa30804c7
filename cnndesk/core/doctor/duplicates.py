"""Near-duplicate search for the dataset doctor: small pixel thumbnails (cached) find candidate
pairs, the pixels' colours and the CNN embeddings confirm them.

Why pixels first: resized / re-encoded / slightly cropped copies of small, simple images are not
close in ImageNet-feature space, while a normalised 16×16 grey thumbnail puts them at ≥ 0.99.
Why not all pairs at once: the search runs in row chunks of a matrix product and keeps only the
pairs above a threshold, so memory grows with ``chunk × N``, never ``N × N`` (50,000 images:
about 50 MB per chunk). Qt-free, torch-free.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from cnndesk.core.common import cache_budget
from cnndesk.core.common.paths import atomic_write, user_cache_dir
from cnndesk.core.common.progress import CancelToken, ProgressCallback, check, report

SIDE = 32  # thumbnails are SIDE × SIDE RGB, uint8
CHUNK = 256


def file_key(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"


def make_thumb(path: str) -> tuple[np.ndarray, tuple[int, int]]:
    """(SIDE×SIDE×3 uint8 thumbnail, original (width, height)); decodes JPEGs at reduced scale."""
    from cnndesk.core.images.load import load_image

    img = load_image(path, min_side=SIDE * 2)
    size = img.info.get("original_size") or img.size
    t = img.resize((SIDE, SIDE), Image.Resampling.BOX if min(img.size) >= SIDE else Image.Resampling.BILINEAR)
    return np.asarray(t.convert("RGB"), np.uint8).reshape(-1), tuple(size)


class ThumbCache:
    """path+size+mtime -> (thumbnail, width, height), one .npz, written atomically."""

    def __init__(self, folder: Path | None = None):
        self.path = (folder or user_cache_dir() / "doctor") / f"thumbs{SIDE}.npz"
        self._data: dict[str, tuple[np.ndarray, tuple[int, int]]] = {}
        self.dirty = False
        try:
            with np.load(self.path, allow_pickle=False) as z:
                for k, v, s in zip(z["keys"], z["thumbs"], z["sizes"], strict=True):
                    self._data[str(k)] = (v, (int(s[0]), int(s[1])))
            cache_budget.touch(self.path)  # used now: last in the LRU eviction order
        except (OSError, KeyError, ValueError):
            pass

    def get(self, path: str):
        key = file_key(path)
        return self._data.get(key) if key else None

    def put(self, path: str, thumb: np.ndarray, size: tuple[int, int]) -> None:
        key = file_key(path)
        if key:
            self._data[key] = (thumb, size)
            self.dirty = True

    def save(self) -> None:
        if not self.dirty or not self._data:
            return
        keys = np.array(list(self._data), dtype=str)
        thumbs = np.stack([v[0] for v in self._data.values()])
        sizes = np.array([v[1] for v in self._data.values()], np.int32)
        buf = io.BytesIO()
        np.savez(buf, keys=keys, thumbs=thumbs, sizes=sizes)
        with cache_budget.adding(self.path), atomic_write(self.path, "wb") as fh:  # under the size cap
            fh.write(buf.getvalue())
        self.dirty = False


def thumbnails(paths: list[str], cache: ThumbCache | None = None, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None, threads: int = 2):
    """Thumbnails and sizes for ``paths``: returns (thumbs[N, SIDE*SIDE*3] uint8, sizes[N, 2],
    errors {index: reason}). Unreadable files get a zero thumbnail and an entry in errors."""
    from concurrent.futures import ThreadPoolExecutor

    from cnndesk.core.common.errors import CnndeskError

    n = len(paths)
    thumbs = np.zeros((n, SIDE * SIDE * 3), np.uint8)
    sizes = np.zeros((n, 2), np.int32)
    errors: dict[int, str] = {}
    todo = []
    for i, p in enumerate(paths):
        hit = cache.get(p) if cache is not None else None
        if hit is None:
            todo.append(i)
        else:
            thumbs[i], sizes[i] = hit
    done = n - len(todo)

    def one(i):
        try:
            return i, make_thumb(paths[i]), None
        except CnndeskError as exc:
            return i, None, str(exc)
        except (OSError, ValueError) as exc:  # pragma: no cover - load_image wraps these
            return i, None, f"{os.path.basename(paths[i])}: {exc}"

    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="cnndesk-doctor") as pool:
        for start in range(0, len(todo), 64):
            check(cancel)
            for i, res, err in pool.map(one, todo[start:start + 64]):
                if err is not None:
                    errors[i] = err
                    continue
                thumbs[i], sizes[i] = res
                if cache is not None:
                    cache.put(paths[i], *res)
            done += len(todo[start:start + 64])
            report(progress, done, n, "Comparing pictures")
    if cache is not None:
        cache.save()
    return thumbs, sizes, errors


def _grey(thumbs: np.ndarray, side: int) -> np.ndarray:
    g = thumbs.reshape(len(thumbs), SIDE, SIDE, 3).astype(np.float32).mean(3)
    f = SIDE // side
    return g.reshape(len(thumbs), side, f, side, f).mean((2, 4)).reshape(len(thumbs), -1)


def _unit(v: np.ndarray) -> np.ndarray:
    v = v - v.mean(1, keepdims=True)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    flat = norm[:, 0] < 1e-3 * v.shape[1]
    v = v / np.maximum(norm, 1e-6)
    v[flat] = 0  # flat pictures have no structure to compare
    return v.astype(np.float32)


def search_vectors(thumbs: np.ndarray, block: int = 1024) -> np.ndarray:
    """Unit vectors for the candidate search: 16×16 grey structure (weight 0.8) and a 4×4 map of
    the colours (0.6), so same-pattern pictures in other colours rank below true copies. Made
    ``block`` rows at a time into one array (float copies of 50,000 thumbnails would be 0.6 GB)."""
    if len(thumbs) > block:
        out = np.empty((len(thumbs), 16 * 16 + 4 * 4 * 3), np.float32)
        for s in range(0, len(thumbs), block):
            out[s:s + block] = search_vectors(thumbs[s:s + block], block)
        return out
    n = len(thumbs)
    grey = _unit(_grey(thumbs, 16))
    rgb = thumbs.reshape(n, 4, SIDE // 4, 4, SIDE // 4, 3).astype(np.float32).mean((2, 4)).reshape(n, -1)
    col = rgb - 128.0
    col /= np.maximum(np.linalg.norm(col, axis=1, keepdims=True), 1e-6)
    v = np.concatenate([0.8 * grey, 0.6 * col], 1)
    return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)).astype(np.float32)


def top_pairs(vectors: np.ndarray, k: int, threshold: float, chunk: int = CHUNK,
              cancel: CancelToken | None = None, threads: int = 1) -> np.ndarray:
    """Pairs (i < j, unique) where j is among the k most similar rows to i (or i to j) with a
    similarity >= threshold (:func:`cnndesk.core.common.neighbours.close_pairs`: exact on small
    sets, approximate and recall-checked on big ones; memory linear in N, never N × N).
    ``chunk``: unused (kept for callers of the old chunked search)."""
    from cnndesk.core.common import neighbours

    pairs, _ = neighbours.close_pairs(vectors, 1.0 - threshold, max(1, k), threads=threads, cancel=cancel)
    return pairs


_SCALES = (0.88, 0.94, 1.0, 1.06, 1.12)
_WIN = 22  # the central window of A searched for in B
BLUR = 1.0


def aligned_match(ta: np.ndarray, tb: np.ndarray) -> tuple[float, float, float]:
    """How well the centre of thumbnail A matches B at the best small shift and scale (copies
    cropped by a few pixels and resized are shifted and scaled versions of each other).
    Returns, at the best alignment: grey correlation, mean colour difference (0-255) and the
    largest mean difference in any 4×4-pixel patch (a copy differs a little everywhere; two
    pictures that differ in one detail, e.g. a circle and a square on the same background,
    differ a lot in one place)."""
    from numpy.lib.stride_tricks import sliding_window_view
    from PIL import ImageFilter

    blur = ImageFilter.GaussianBlur(BLUR)  # fine lines and dots tolerate sub-pixel shifts
    a = np.asarray(Image.fromarray(ta.reshape(SIDE, SIDE, 3)).filter(blur), np.float32)
    m = (SIDE - _WIN) // 2
    wa = a[m:m + _WIN, m:m + _WIN]
    ga = wa.mean(2).ravel()
    ga = ga - ga.mean()
    na = np.linalg.norm(ga) + 1e-6
    best = (-1.0, 255.0, 255.0)
    img_b = Image.fromarray(tb.reshape(SIDE, SIDE, 3)).filter(blur)
    for s in _SCALES:
        size = int(round(SIDE * s))
        b = np.asarray(img_b.resize((size, size), Image.Resampling.BILINEAR), np.float32)
        c = (size - _WIN) // 2
        lo, hi = max(0, c - 3), min(size - _WIN, c + 3)
        region = b[lo:hi + _WIN, lo:hi + _WIN]
        # grey first, then the windows (the same numbers as the windows' grey, 3x less work)
        wins = sliding_window_view(region.mean(2), (_WIN, _WIN))  # (y, x, WIN, WIN)
        gb = wins.reshape(wins.shape[0], wins.shape[1], -1)
        gb = gb - gb.mean(-1, keepdims=True)
        corr = (gb @ ga) / (np.linalg.norm(gb, axis=-1) * na + 1e-6)
        y, x = np.unravel_index(int(np.argmax(corr)), corr.shape)
        if corr[y, x] > best[0]:
            diff = np.abs(region[y:y + _WIN, x:x + _WIN] - wa).mean(-1)
            patches = sliding_window_view(diff, (4, 4))[::2, ::2].mean((-1, -2))
            best = (float(corr[y, x]), float(diff.mean()), float(patches.max()))
    return best


def colour_distance(thumbs: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Mean absolute difference (0-255) of the two thumbnails' 8×8 colour maps, per pair."""
    if not len(pairs):
        return np.zeros(0, np.float32)
    n = len(thumbs)
    small = thumbs.reshape(n, 8, SIDE // 8, 8, SIDE // 8, 3).mean((2, 4), dtype=np.float32)
    return np.abs(small[pairs[:, 0]] - small[pairs[:, 1]]).reshape(len(pairs), -1).mean(1)


def identical_groups(thumbs: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(one row per distinct picture, [(row, its first twin)] for the others): rows whose
    thumbnail and original size are identical are the same picture. Linear time (hashing), so
    50,000 copies of one image are 49,999 twins found at once, not pairs searched and aligned."""
    import hashlib

    first: dict[bytes, int] = {}
    reps, twins = [], []
    for i in range(len(thumbs)):  # 128-bit digests as keys: not 3 KB per picture (150 MB at 50,000)
        key = hashlib.blake2b(thumbs[i].tobytes() + np.asarray(sizes[i], np.int64).tobytes(), digest_size=16).digest()
        j = first.setdefault(key, i)
        if j == i:
            reps.append(i)
        else:
            twins.append((i, j))
    return np.asarray(reps, np.int64), twins
# Same picture or a shared part: a confirmed pair is "the same picture" only when its aligned
# pixels nearly all agree — grey structure at least SAME_STRUCTURE, or (pictures with little
# structure, e.g. flat blobs, where correlation means little) colours within SAME_COLOUR/255
# (such copies: 1.6-3.0; overlapping crops of sky shifted by 20-30 %: 3.6-4.4).
# Planted copies (bench/doctor_data.py: resized, cropped by 1-3 px, re-encoded) meet it but for
# about one in thirty; overlapping random crops of one photo mostly share only a part (issue 23:
# 114 of 143 such "same picture" pairs were under 90 % alike) and are reported as "overlap".
SAME_STRUCTURE, SAME_COLOUR = 0.9, 3.2


def pair_kind(corr: float, colour: float, split_a: str, split_b: str) -> tuple[str, str]:
    """(kind, what to say) for a confirmed pair: "leak" / "duplicate" (the same picture, across
    train and val/test or within one split) or "overlap" (two pictures that share a part)."""
    same = corr >= SAME_STRUCTURE or colour <= SAME_COLOUR
    across = split_a != split_b and "train" in (split_a, split_b)
    if not same:
        where = (f"; one is in {split_a}, the other in {split_b}: the {split_b} score may be too optimistic"
                 if across else "")
        return "overlap", "the two pictures share a part (e.g. overlapping crops of one photo)" + where
    if across:
        return "leak", f"the same picture is in {split_a} and in {split_b}: the {split_b} score will be too optimistic"
    return "duplicate", "the same picture twice" + (f" in {split_a}" if split_a != "all" else "")
