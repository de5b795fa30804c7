"""The caches' shared size cap (core/common/cache_budget.py): LRU eviction under the cap, entries
in use and writes in progress survive, clear, and two processes adding at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnndesk.core.common import cache_budget as cb

KB = 1000


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNDESK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNDESK_CACHE_LIMIT_MB", raising=False)
    return tmp_path / "cache"


def _put(root: Path, cache: str, name: str, size: int, age: float = 0.0) -> Path:
    p = cb.cache_folder(cache, root) / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(os.urandom(size))
    t = time.time() - age
    os.utime(p, (t, t))
    return p


def _names(root: Path) -> set[str]:
    return {p.name for c in cb.CACHES for e in cb.entries(c, root) for p in e.files}


def test_eviction_goes_least_recently_used_first_across_caches_until_under_the_cap(root):
    _put(root, "embeddings", "a.npz", 40 * KB, age=50)
    _put(root, "thumbnails", "thumbs32.npz", 40 * KB, age=40)
    _put(root, "exports", "m-key.onnx", 30 * KB, age=30)
    _put(root, "exports", "m-key.json", 1 * KB, age=30)  # one entry with its .onnx
    b = _put(root, "embeddings", "b.npz", 40 * KB, age=20)
    cb.touch(cb.cache_folder("embeddings", root) / "a.npz")  # used just now: last to go
    evicted = cb.enforce(limit=100 * KB)
    assert [sorted(p.name for p in e.files) for e in evicted] == [["thumbs32.npz"], ["m-key.json", "m-key.onnx"]]
    assert _names(root) == {"a.npz", "b.npz"}
    assert sum(c.size for c in cb.info(root)) <= 100 * KB
    # nothing more goes while under the cap; the entry just written is kept even over it
    assert cb.enforce(limit=100 * KB) == []
    assert [e.files[0].name for e in cb.enforce(limit=10 * KB, keep=(b,))] == ["a.npz"]
    assert _names(root) == {"b.npz"}


def test_writes_in_progress_and_held_entries_are_never_evicted(root):
    folder = cb.cache_folder("exports", root)
    busy = _put(root, "exports", "busy-key.onnx", 50 * KB, age=100)
    _put(root, "exports", "busy-key.json", 1 * KB, age=100)
    _put(root, "exports", ".export-x1y2/new-key.onnx", 50 * KB, age=200)  # an export being written
    _put(root, "embeddings", ".e.npz.abc.cnndesk-tmp", 50 * KB, age=200)  # safeio's temp file
    _put(root, "embeddings", "old.npz", 50 * KB, age=10)
    held = cb.hold(busy)
    assert held.held
    evicted = cb.enforce(limit=1)
    assert [e.files[0].name for e in evicted] == ["old.npz"]
    assert busy.is_file() and (folder / "busy-key.json").is_file()
    assert (folder / ".export-x1y2" / "new-key.onnx").is_file()
    res = cb.clear("exports")
    assert (res.removed, res.kept_in_use) == (0, 1) and busy.is_file()
    held.release()
    assert cb.enforce(limit=1) and not busy.exists() and not (folder / "busy-key.json").exists()


def test_clear_one_cache_or_all(root):
    _put(root, "embeddings", "a.npz", 10 * KB)
    _put(root, "thumbnails", "thumbs32.npz", 20 * KB)
    _put(root, "thumbnails", "results/abc.json", 1 * KB)
    _put(root, "exports", "m-key.onnx", 30 * KB)
    res = cb.clear("thumbnails")
    assert (res.freed, res.removed, res.kept_in_use) == (21 * KB, 2, 0)
    sizes = {c.name: (c.size, c.entries) for c in cb.info(root)}
    assert sizes == {"embeddings": (10 * KB, 1), "thumbnails": (0, 0), "exports": (30 * KB, 1)}
    assert cb.clear("all").removed == 2
    assert all(c.size == 0 for c in cb.info(root))
    with pytest.raises(ValueError, match="unknown cache"):
        cb.clear("models")


def test_the_cap_comes_from_the_environment(root, monkeypatch):
    assert cb.limit_bytes() == 2_000_000_000
    monkeypatch.setenv("CNNDESK_CACHE_LIMIT_MB", "0.05")
    assert cb.limit_bytes() == 50 * KB
    monkeypatch.setenv("CNNDESK_CACHE_LIMIT_MB", "lots")  # nonsense: the default, no crash
    assert cb.limit_bytes() == 2_000_000_000


def test_embedding_cache_saves_under_the_cap_and_reloads(root, monkeypatch, tmp_path):
    from cnndesk.core.predict.embeddings import EmbeddingCache

    monkeypatch.setenv("CNNDESK_CACHE_LIMIT_MB", "0.2")
    old = _put(root, "embeddings", "older-model.npz", 150 * KB, age=100)
    img = tmp_path / "x.png"
    img.write_bytes(b"not really an image; only its stat matters")
    c = EmbeddingCache("m1")
    c.put(str(img), np.arange(20000, dtype=np.float32))  # 80 kB
    c.save()
    assert not old.exists()  # evicted to make room: 150 + 80 kB > 200 kB
    again = EmbeddingCache("m1")
    assert np.array_equal(again.get(str(img)), np.arange(20000, dtype=np.float32))


WRITER = """
import os, sys
from pathlib import Path
from cnndesk.core.common import cache_budget as cb
from cnndesk.core.common.paths import atomic_write, user_cache_dir
tag, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
folder = user_cache_dir() / "embeddings"
for i in range(n):
    p = folder / f"{tag}-{i:03d}.npz"
    with cb.adding(p), atomic_write(p, "wb") as fh:
        fh.write(bytes([i % 256]) * size)
"""


def test_two_processes_adding_at_once_stay_within_one_entry_of_the_cap(root, monkeypatch):
    size, cap, n = 20 * KB, 100 * KB, 60
    monkeypatch.setenv("CNNDESK_CACHE_LIMIT_MB", str(cap / 1e6))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, tag, str(n), str(size)], env=env)
             for tag in ("a", "b")]
    folder = cb.cache_folder("embeddings", root)
    worst = 0
    while any(p.poll() is None for p in procs):
        worst = max(worst, sum(e.size for e in cb.entries("embeddings", root)))
        time.sleep(0.005)
    assert [p.returncode for p in procs] == [0, 0]
    assert worst <= cap + size  # seen from outside while both wrote: at most one entry over
    final = cb.entries("embeddings", root)
    assert sum(e.size for e in final) <= cap
    for e in final:  # every surviving entry whole, never a mix of two writes
        data = e.files[0].read_bytes()
        assert len(data) == size and len(set(data)) == 1
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left
    # nothing evicted beyond need: the cap is full, and the last writer's newest entry is there
    assert len(final) == cap // size
    assert {"a-059.npz", "b-059.npz"} & {e.files[0].name for e in final}


def test_an_export_in_use_by_an_onnx_backend_survives_clear_and_eviction(root, classifier):
    import gc
    import shutil

    from cnndesk.core.runtime.backends import OnnxBackend

    folder = cb.cache_folder("exports", root)
    folder.mkdir(parents=True)
    onnx = folder / "lite0-key.onnx"
    shutil.copy(classifier.engine.onnx_path, onnx)
    (folder / "lite0-key.json").write_text("{}")
    backend = OnnxBackend(onnx, threads=1)
    assert cb.enforce(limit=1) == [] and cb.clear("all").kept_in_use == 1
    assert onnx.is_file()
    x = np.zeros((1, 3, 224, 224), np.float32)
    assert backend.run(x).shape == (1, 1000)
    del backend
    gc.collect()
    assert cb.clear("exports").removed == 1 and not onnx.exists()
