"""A folder's labelling space on disk, so a fresh ``cnndesk label`` call on a big folder does not
reload and re-project every embedding (at 50,000 images: 505 MB of features and a 2,528 x 128
projection, ~10 s) but reads N x 128 values (25 MB) — issue 25.

What is stored: the readable images' paths, the unreadable ones with their reasons, the space's
``z`` rows (float32, exactly as computed, so an answer never depends on whether the cache was
there) and the thumbnail search vectors. The key: the folder, the
embedder (its name and the network's cache key), the seed, the space's dimension and a version;
the entry is used only when every listed file still has the same size and modification time (the
signature, a hash over them), else it is rebuilt. The entry also keeps which images are unlike the
whole folder (:mod:`.oddities`, label-free: 8 s at 50,000 images, made once per entry); an entry
written before that has none and gets it added on its next use. One ``.npz`` in the embeddings cache folder
(``labelling-*.npz``), written atomically under the cache budget (evicted like any entry).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from cnndesk.core.labelling import oddities

VERSION = 2


@dataclass
class Cached:
    paths: list[str]
    unreadable: list[tuple[str, str]]
    z: np.ndarray
    pixels: np.ndarray | None
    odd: np.ndarray | None = None  # bool per row: oddities.odd_images(z), or None (not made yet)


def signature(files: list[str]) -> str:
    """A hash over every file's path, size and modification time (a missing file counts too)."""
    h = hashlib.sha256()
    for f in files:
        try:
            st = os.stat(f)
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        except OSError:
            h.update(f"{f}\0-\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def entry_path(root: str, key: str):
    from cnndesk.core.common.paths import user_cache_dir

    digest = hashlib.sha256(f"{VERSION}\0{root}\0{key}".encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return user_cache_dir() / "embeddings" / f"labelling-{digest}.npz"


def load(root: str, key: str, sig: str) -> Cached | None:
    """The cached space of ``root`` under ``key`` when its signature is ``sig``, else None."""
    from cnndesk.core.common import cache_budget

    path = entry_path(root, key)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO there would block np.load for ever
            return None
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("signature") != sig or meta.get("version") != VERSION:
                return None
            z = np.ascontiguousarray(data["z"], np.float32)
            pixels = np.ascontiguousarray(data["pixels"], np.float32) if "pixels" in data.files else None
            odd = np.asarray(data["odd"]).astype(bool) if "odd" in data.files else None
            if meta.get("odd_settings") != oddities.settings():  # made with other settings: made again
                odd = None
        paths, unreadable = meta["paths"], [tuple(u) for u in meta["unreadable"]]
        well_formed = isinstance(paths, list) and all(isinstance(p, str) for p in paths) and all(
            len(u) == 2 and all(isinstance(t, str) for t in u) for u in unreadable)
        if not well_formed:
            return None
        if z.ndim != 2 or len(paths) != len(z) or (pixels is not None and len(pixels) != len(z)):
            return None
        if odd is not None and odd.shape != (len(z),):  # damaged: made again, not trusted
            odd = None
        if not np.isfinite(z).all():  # a damaged entry: rebuilt rather than fed to k-means
            return None
        cache_budget.touch(path)
        return Cached(paths, unreadable, z, pixels, odd)
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, RecursionError,
            zipfile.BadZipFile, zlib.error):  # damage (a cut zip, JSON that is not an object, too deep): rebuilt
        return None


def save(root: str, key: str, sig: str, c: Cached) -> None:
    """Write the entry (atomic, under the cache budget); a failure only costs the next call time."""
    from cnndesk.core.common import cache_budget
    from cnndesk.core.common.paths import atomic_write

    path = entry_path(root, key)
    meta = {"version": VERSION, "signature": sig, "paths": c.paths, "unreadable": [list(u) for u in c.unreadable],
            "odd_settings": oddities.settings()}
    arrays = {"meta": np.array(json.dumps(meta)), "z": np.asarray(c.z, np.float32)}
    if c.pixels is not None:
        arrays["pixels"] = np.asarray(c.pixels, np.float32)
    if c.odd is not None:
        arrays["odd"] = np.asarray(c.odd, np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with cache_budget.adding(path), atomic_write(path, "wb") as fh:
            fh.write(buf.getvalue())
    except OSError:
        pass
