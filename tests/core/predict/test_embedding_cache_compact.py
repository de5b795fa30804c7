"""The embedding cache's compact read (issue 25: the dataset doctor at 50,000 images within 1 GB):
rows come over as float16, read a block at a time; the file keeps float32, so a save after a
compact read writes the rows it read exactly as they were (from the file), plus the new ones; a
file that does not fit float16, a damaged file or one replaced since it was read are handled."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from cnndesk.core.predict import embeddings
from cnndesk.core.predict.embeddings import EmbeddingCache


@pytest.fixture
def files(tmp_path, monkeypatch):
    """40 files (the cache keys them by path, size and time) and small read/write blocks, so the
    block-wise code crosses several blocks."""
    monkeypatch.setattr(embeddings, "_READ_BYTES", 5 * 4 * 7)
    out = []
    for i in range(40):
        f = tmp_path / "img" / f"{i:02d}.png"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(b"x" * (i + 1))
        out.append(str(f))
    return out


@pytest.fixture
def values():
    return np.random.default_rng(0).normal(0, 3, (40, 7)).astype(np.float32)


def _write(folder, files, values, key="m"):
    cache = EmbeddingCache(key, folder=folder)
    for f, v in zip(files, values, strict=True):
        cache.put(f, v)
    cache.save()
    return cache.path


def test_compact_rows_are_float16_of_the_file(tmp_path, files, values):
    _write(tmp_path, files[:30], values[:30])
    plain = EmbeddingCache("m", folder=tmp_path)
    compact = EmbeddingCache("m", folder=tmp_path, compact=True)
    assert compact.compact and len(compact) == len(plain) == 30
    for f, v in zip(files[:30], values[:30], strict=True):
        assert plain.get(f).dtype == np.float32 and np.array_equal(plain.get(f), v)
        assert compact.get(f).dtype == np.float16
        np.testing.assert_array_equal(compact.get(f), v.astype(np.float16))
    assert compact.get(files[35]) is None and compact.hits == 60


def test_save_after_a_compact_read_keeps_the_float32_values(tmp_path, files, values):
    _write(tmp_path, files[:30], values[:30])
    compact = EmbeddingCache("m", folder=tmp_path, compact=True)
    for f, v in zip(files[30:], values[30:], strict=True):
        compact.put(f, v)
    compact.put(files[3], values[0])  # a row read from the file, replaced
    compact.save()
    want = values.copy()
    want[3] = values[0]
    again = EmbeddingCache("m", folder=tmp_path)
    assert len(again) == 40
    for f, v in zip(files, want, strict=True):
        assert np.array_equal(again.get(f), v)
    # a second save from the same compact cache (its file is now the one it wrote) is exact too
    compact.save()
    assert all(np.array_equal(EmbeddingCache("m", folder=tmp_path).get(f), v) for f, v in zip(files, want, strict=True))


def test_file_replaced_since_the_compact_read(tmp_path, files, values):
    """Another process rewrote the cache: the rows are saved from the float16 values (no wrong
    rows copied from a file that changed under it)."""
    _write(tmp_path, files[:30], values[:30])
    compact = EmbeddingCache("m", folder=tmp_path, compact=True)
    _write(tmp_path, files[:30], values[:30][::-1])  # replaced: other values, same keys
    compact.put(files[39], values[39])
    compact.save()
    again = EmbeddingCache("m", folder=tmp_path)
    for f, v in zip(files[:30], values[:30], strict=True):
        np.testing.assert_array_equal(again.get(f), v.astype(np.float16).astype(np.float32))
    assert np.array_equal(again.get(files[39]), values[39])


def test_values_beyond_float16_are_read_as_float32(tmp_path, files, values):
    big = values.copy()
    big[17, 2] = 1e6
    _write(tmp_path, files, big)
    compact = EmbeddingCache("m", folder=tmp_path, compact=True)
    assert not compact.compact
    assert compact.get(files[17]).dtype == np.float32 and compact.get(files[17])[2] == 1e6


@pytest.mark.parametrize("damage", ["cut", "garbage", "no_vectors", "lengths"])
def test_a_damaged_file_is_an_empty_cache(tmp_path, files, values, damage):
    path = _write(tmp_path, files[:30], values[:30])
    if damage == "cut":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(4000))
    else:
        with zipfile.ZipFile(path, "w") as zf:
            with zf.open("keys.npy", "w") as fh:
                np.lib.format.write_array(fh, np.array(files[:30]))
            if damage == "lengths":
                with zf.open("vectors.npy", "w") as fh:
                    np.lib.format.write_array(fh, values[:20])
    for compact in (False, True):
        cache = EmbeddingCache("m", folder=tmp_path, compact=compact)
        assert len(cache) == 0 and cache.get(files[0]) is None
    # and it can be written again
    cache = EmbeddingCache("m", folder=tmp_path, compact=True)
    cache.put(files[0], values[0])
    cache.save()
    assert np.array_equal(EmbeddingCache("m", folder=tmp_path).get(files[0]), values[0])


def test_saved_file_reads_with_numpy(tmp_path, files, values):
    """The streamed save is an ordinary .npz (what older versions read)."""
    path = _write(tmp_path, files, values)
    with np.load(path, allow_pickle=False) as z:
        assert z["vectors"].dtype == np.float32 and np.array_equal(z["vectors"], values)
        assert list(z["keys"]) == [embeddings.file_key(f) for f in files]
