"""One size cap over the on-disk caches: embeddings, the dataset check's thumbnails and the
ONNX export cache (default 2 GB in all; ``CNNDESK_CACHE_LIMIT_MB`` changes it).

An *entry* is one file, or the files sharing a stem in one folder (an export's ``.onnx`` and its
``.json`` record). Its last use is its newest modification time: readers call :func:`touch` when
they use an entry, writers call :func:`enforce` after adding one, which evicts the least recently
used entries until the caches fit.

Safe against concurrent processes:
* eviction passes (and :func:`clear`) run under one lock file (``filelock``) in the cache folder,
  so two processes never evict at once and each pass sees the other's finished writes;
* writers build entries in hidden temporary files or folders (``safeio``: ``.name.*``, the export
  cache's ``.export-*``) and rename them into place: hidden names are never counted nor evicted,
  so an entry being written is never touched; a reader holds what it loaded in memory;
* an entry in use (an ONNX Runtime session made from a cached export) is *held*
  (:func:`hold`: a shared ``flock`` on POSIX, an open handle on Windows): eviction and clear skip
  it. A file is removed only while this process holds its exclusive lock.

Writers wrap the write in :func:`adding` (write and eviction under the lock), so however many
processes write at once, the caches exceed the cap by at most the one entry being added. (The
export cache, whose entries take a minute to build, checks the cap after its rename instead:
:func:`after_write`.) No Qt and no torch here (the lite bundle uses it).
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cnndesk.core.common.paths import user_cache_dir

try:  # POSIX advisory locks; on Windows an open file cannot be removed, which protects it too
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

DEFAULT_LIMIT = 2_000_000_000  # bytes, all caches together
# cache name -> folder under the user cache folder
CACHES: dict[str, str] = {"embeddings": "embeddings", "thumbnails": "doctor", "exports": "onnx"}
TITLES: dict[str, str] = {
    "embeddings": "Embeddings (quick training, novelty, dataset check)",
    "thumbnails": "Dataset check thumbnails and results",
    "exports": "Optimised models (ONNX exports)",
}
LOCK_NAME = ".cache-budget.lock"


@dataclass(frozen=True)
class Entry:
    cache: str
    files: tuple[Path, ...]
    size: int
    last_used: float


@dataclass(frozen=True)
class CacheInfo:
    name: str
    title: str
    folder: Path
    size: int  # bytes
    entries: int

    def as_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "folder": str(self.folder),
                "bytes": self.size, "entries": self.entries}


@dataclass(frozen=True)
class ClearResult:
    freed: int  # bytes removed
    removed: int  # entries removed
    kept_in_use: int  # entries skipped because another user holds them


def limit_bytes() -> int:
    """The cap: ``CNNDESK_CACHE_LIMIT_MB`` (megabytes, 0 = no cap) or 2 GB."""
    raw = os.environ.get("CNNDESK_CACHE_LIMIT_MB", "").strip()
    if raw:
        try:
            return max(0, int(float(raw) * 1_000_000))
        except ValueError:
            pass
    return DEFAULT_LIMIT


def cache_folder(name: str, root: Path | None = None) -> Path:
    if name not in CACHES:
        raise ValueError(f"unknown cache {name!r} (choose from {', '.join(CACHES)})")
    return (root or user_cache_dir()) / CACHES[name]


def _lock(root: Path):
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / LOCK_NAME), timeout=60)


def entries(name: str, root: Path | None = None) -> list[Entry]:
    """The finished entries of cache ``name`` (hidden files and folders, i.e. writes in progress,
    left out)."""
    folder = cache_folder(name, root)
    groups: dict[tuple[str, str], list[tuple[Path, os.stat_result]]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if f.startswith("."):
                continue
            p = Path(dirpath) / f
            try:
                st = p.stat()
            except OSError:
                continue  # removed meanwhile
            stem = os.path.splitext(f)[0]  # x.onnx + x.json: one entry
            groups.setdefault((dirpath, stem), []).append((p, st))
    out = []
    for items in groups.values():
        out.append(Entry(name, tuple(p for p, _ in items), sum(st.st_size for _, st in items),
                         max(st.st_mtime for _, st in items)))
    return out


def info(root: Path | None = None) -> list[CacheInfo]:
    """Size and entry count of each cache."""
    out = []
    for name in CACHES:
        es = entries(name, root)
        out.append(CacheInfo(name, TITLES[name], cache_folder(name, root), sum(e.size for e in es), len(es)))
    return out


def touch(*paths: str | os.PathLike) -> None:
    """Mark an entry used now (its last use for the LRU order); missing files are ignored."""
    now = time.time()
    for p in paths:
        try:
            os.utime(p, (now, now))
        except OSError:
            pass


class Hold:
    """Keeps a cached file in use: eviction and clear skip it until :meth:`release` (or until
    this object is collected, or the process ends)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fh = None
        try:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - held open on purpose
            if fcntl is not None:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            self.release()  # missing or locked for removal right now: nothing to hold

    @property
    def held(self) -> bool:
        return self._fh is not None

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()  # closing drops the flock

    def __del__(self):
        self.release()


def hold(path: str | os.PathLike) -> Hold:
    return Hold(path)


def _remove_entry(entry: Entry) -> bool:
    """Remove the entry's files unless one is held by someone; True when removed."""
    handles = []
    try:
        for p in entry.files:
            try:
                fh = open(p, "rb")  # noqa: SIM115
            except FileNotFoundError:
                continue
            except OSError:
                return False
            handles.append(fh)
            if fcntl is not None:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return False  # in use
        # records (.json) first: a reader then sees a clean miss, never a record without its file
        for p in sorted(entry.files, key=lambda q: q.suffix != ".json"):
            try:
                os.remove(p)
            except FileNotFoundError:
                pass
            except OSError:
                return False  # Windows: an open (held) file cannot be removed
        return True
    finally:
        for fh in handles:
            fh.close()


def enforce(limit: int | None = None, keep: tuple[str | os.PathLike, ...] = (),
            root: Path | None = None) -> list[Entry]:
    """Evict least recently used entries of all caches until they fit ``limit`` (default
    :func:`limit_bytes`; 0 = no cap). Entries containing a ``keep`` path (the one just written) and
    entries in use are never evicted. Returns the evicted entries."""
    limit = limit_bytes() if limit is None else limit
    if limit <= 0:
        return []
    root = root or user_cache_dir()
    try:
        with _lock(root):
            return _evict(limit, keep, root)
    except OSError:
        return []  # a read-only cache folder: nothing to do
    except Exception as exc:  # filelock.Timeout: another process is busy evicting; it will finish
        if type(exc).__name__ != "Timeout":
            raise
    return []


def _evict(limit: int, keep, root: Path) -> list[Entry]:
    """The eviction pass; the caller holds the lock."""
    if limit <= 0:
        return []
    keep_set = {os.path.abspath(k) for k in keep}
    evicted: list[Entry] = []
    every = [e for name in CACHES for e in entries(name, root)]
    total = sum(e.size for e in every)
    for e in sorted(every, key=lambda e: e.last_used):
        if total <= limit:
            break
        if any(os.path.abspath(p) in keep_set for p in e.files):
            continue
        if _remove_entry(e):
            total -= e.size
            evicted.append(e)
    return evicted


@contextmanager
def adding(*paths: str | os.PathLike):
    """Wrap the write of a cache entry (``with adding(path): <atomic write of path>``): the write
    and the eviction pass after it run under the lock, so however many processes add at once, at
    most one finished entry (the one being added) is ever over the cap. A write error propagates;
    trouble with the cache's upkeep never does."""
    root = user_cache_dir()
    lock = None
    try:
        lock = _lock(root)
        lock.acquire()
    except Exception:  # read-only folder, or a lock held too long: write unlocked (still atomic)
        lock = None
    try:
        yield
        try:
            touch(*paths)
            _evict(limit_bytes(), paths, root)
        except Exception:
            logging.getLogger("cnndesk").debug("cache upkeep failed", exc_info=True)
    finally:
        if lock is not None:
            lock.release()


def after_write(*paths: str | os.PathLike) -> None:
    """Call after adding or rewriting a cache entry: it becomes the most recent and the caches
    are brought back under the cap (never evicting ``paths``). Never raises for cache trouble."""
    try:
        touch(*paths)
        enforce(keep=tuple(paths))
    except Exception:  # a cache is an optimisation: its upkeep must not fail the real work
        logging.getLogger("cnndesk").debug("cache upkeep failed", exc_info=True)


def clear(what: str = "all", root: Path | None = None) -> ClearResult:
    """Remove every entry of one cache (``embeddings``, ``thumbnails``, ``exports``) or ``all``;
    entries in use are kept and counted."""
    names = list(CACHES) if what == "all" else [what]
    for n in names:
        cache_folder(n)  # validates the name
    root = root or user_cache_dir()
    freed = removed = kept = 0
    if not root.exists():
        return ClearResult(0, 0, 0)
    with _lock(root):
        for n in names:
            for e in entries(n, root):
                if _remove_entry(e):
                    freed += e.size
                    removed += 1
                else:
                    kept += 1
    return ClearResult(freed, removed, kept)


def human_size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
