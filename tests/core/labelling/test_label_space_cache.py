"""Big folders (issue 25): the labelling space is cached per folder, so a fresh `cnndesk label`
call does not reload and re-project the embeddings; any changed, added or removed file rebuilds
it; the answers are the same with and without the cache; a damaged entry is ignored."""

from __future__ import annotations

import os

import numpy as np
from label_data import fake_embed, make_pile


def counting():
    calls = []

    def embed(paths, progress=None, cancel=None, errors=None):
        calls.append(len(paths))
        return fake_embed(paths, progress, cancel, errors)

    return embed, calls


def test_second_open_reads_the_cached_space_and_asks_the_same(tmp_path):
    from cnndesk.core.labelling import LabelSession

    root = tmp_path / "pile"
    truth = make_pile(root, per_class=10)
    embed, calls = counting()
    a = LabelSession.open(root, embed=embed, duplicates=False)
    b = LabelSession.open(root, embed=embed, duplicates=False)
    assert calls == [40], "the second open did not embed"
    assert a.paths == b.paths and np.array_equal(a.space.z, b.space.z) and np.array_equal(a.space.unit, b.space.unit)
    c = LabelSession.open(root, embed=embed, duplicates=False, cache_space=False)
    assert calls == [40, 40] and np.array_equal(c.space.z, a.space.z)
    assert [q.path for q in a.ask(5)] == [q.path for q in b.ask(5)]
    for p in sorted(truth)[::3]:
        a.answer(p, truth[p])
        b.answer(p, truth[p])
    assert [q.path for q in a.ask(5)] == [q.path for q in b.ask(5)]


def test_a_changed_added_or_removed_file_rebuilds_it(tmp_path):
    from cnndesk.core.labelling import LabelSession

    root = tmp_path / "pile"
    truth = make_pile(root, per_class=5)
    embed, calls = counting()
    LabelSession.open(root, embed=embed, duplicates=False)
    first = sorted(truth)[0]
    st = os.stat(first)
    os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))
    LabelSession.open(root, embed=embed, duplicates=False)
    assert calls == [20, 20]
    os.remove(sorted(truth)[1])
    s = LabelSession.open(root, embed=embed, duplicates=False)
    assert calls == [20, 20, 19] and len(s.paths) == 19
    (root / "junk.png").write_bytes(b"not an image")
    s = LabelSession.open(root, embed=embed, duplicates=False)
    assert calls == [20, 20, 19, 20] and len(s.paths) == 19 and len(s.unreadable) == 1
    s = LabelSession.open(root, embed=embed, duplicates=False)
    assert calls == [20, 20, 19, 20], "unreadable files are remembered too"
    assert len(s.paths) == 19 and [os.path.basename(u[0]) for u in s.unreadable] == ["junk.png"]


def test_a_damaged_entry_is_ignored_and_replaced(tmp_path):
    from cnndesk.core.labelling import LabelSession, space_cache

    root = tmp_path / "pile"
    make_pile(root, per_class=4)
    embed, calls = counting()
    LabelSession.open(root, embed=embed, duplicates=False)
    entries = list((space_cache.entry_path(str(root), "x").parent).glob("labelling-*.npz"))
    assert entries
    for e in entries:
        e.write_bytes(b"garbage")
    s = LabelSession.open(root, embed=embed, duplicates=False)
    assert calls == [16, 16] and len(s.paths) == 16
    LabelSession.open(root, embed=embed, duplicates=False)
    assert calls == [16, 16]


def test_an_entry_with_nan_rows_is_rebuilt_not_fed_to_k_means(tmp_path):
    """A cache entry whose rows hold NaN (a damaged disk, another version's bug) parsed fine and
    then made k-means++ raise OverflowError on the first ask; it is now rebuilt."""
    import io
    import json

    from cnndesk.core.labelling import LabelSession, space_cache

    root = tmp_path / "pile"
    make_pile(root, per_class=4)
    embed, calls = counting()
    LabelSession.open(root, embed=embed, duplicates=False)
    for entry in (space_cache.entry_path(str(root), "x").parent).glob("labelling-*.npz"):
        try:  # other tests' entries share the folder, some of them damaged on purpose
            with np.load(entry, allow_pickle=False) as data:
                meta, z = str(data["meta"]), np.array(data["z"])
        except (OSError, ValueError, KeyError):
            continue
        if json.loads(meta)["paths"][0].startswith(str(root)):
            break
    z[3] = np.nan
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(meta), z=z)
    entry.write_bytes(buf.getvalue())
    s = LabelSession.open(root, embed=embed, duplicates=False)
    assert calls == [16, 16], "the entry with NaN rows was used"
    assert np.isfinite(s.space.z).all() and len(s.ask(4)) == 4


def test_k_means_treats_non_finite_rows_as_zero_instead_of_raising():
    from cnndesk.core.labelling import picking

    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(0, 0.1, (20, 8)) + 3, rng.normal(0, 0.1, (20, 8)) - 3]).astype(np.float32)
    z[5, 2] = np.nan
    z[30, :] = np.inf
    labels, centres = picking.kmeans(z, 2, seed=0)
    assert np.isfinite(centres).all()
    assert len(set(labels[:5]) | set(labels[6:20])) == 1 and len(set(labels[20:30]) | set(labels[31:])) == 1
    assert labels[0] != labels[25]


def test_odd_images_are_made_while_opening_and_kept_with_the_space(tmp_path, monkeypatch):
    """The images unlike the whole folder were made on the first suggestion: not cancellable, and
    paid again by every `cnndesk label --suggest` call (8 s at 50,000 images). They are now made
    while opening (a worker job) and kept in the space's cache entry."""
    from cnndesk.core.labelling import LabelSession, oddities

    made = []
    real = oddities.odd_images

    def counted(z, *a, **kw):
        made.append(len(z))
        return real(z, *a, **kw)

    monkeypatch.setattr(oddities, "odd_images", counted)
    root = tmp_path / "pile"
    make_pile(root, per_class=8)
    embed, calls = counting()
    a = LabelSession.open(root, embed=embed, duplicates=False)
    assert made == [32], "not made while opening"
    a.suggestions()
    b = LabelSession.open(root, embed=embed, duplicates=False)
    b.suggestions()
    assert calls == [32] and made == [32], "made again although the cache entry had them"
    assert np.array_equal(a.odd_images(), b.odd_images()) and b.odd_images().dtype == bool


def test_an_entry_from_before_gets_its_odd_images_added_once(tmp_path, monkeypatch):
    import io
    import json

    from cnndesk.core.labelling import LabelSession, oddities, space_cache

    root = tmp_path / "pile"
    make_pile(root, per_class=6)
    embed, calls = counting()
    LabelSession.open(root, embed=embed, duplicates=False)
    for entry in (space_cache.entry_path(str(root), "x").parent).glob("labelling-*.npz"):
        try:
            with np.load(entry, allow_pickle=False) as data:
                arrays = {k: np.array(data[k]) for k in data.files}
        except (OSError, ValueError, KeyError):
            continue
        if json.loads(str(arrays["meta"]))["paths"][0].startswith(str(root)):
            break
    assert "odd" in arrays
    del arrays["odd"]  # as written by the code before
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    entry.write_bytes(buf.getvalue())
    made = []
    real = oddities.odd_images
    monkeypatch.setattr(oddities, "odd_images", lambda z, *a, **kw: made.append(1) or real(z, *a, **kw))
    LabelSession.open(root, embed=embed, duplicates=False)
    LabelSession.open(root, embed=embed, duplicates=False)
    assert calls == [24] and made == [1]


def test_cancel_while_looking_for_odd_images_stops_the_open(tmp_path):
    import pytest

    from cnndesk.core.common.progress import Cancelled, CancelToken
    from cnndesk.core.labelling import LabelSession

    root = tmp_path / "pile"
    make_pile(root, per_class=8)
    token = CancelToken()
    messages = []

    def progress(done, total, message=""):
        messages.append(message)
        if "unlike" in message:
            token.cancel()

    embed, calls = counting()
    with pytest.raises(Cancelled):
        LabelSession.open(root, embed=embed, duplicates=False, progress=progress, cancel=token)
    assert any("unlike" in m for m in messages)
    s = LabelSession.open(root, embed=embed, duplicates=False)
    assert calls == [32], "the space made before the Cancel was thrown away (embedded again)"
    assert s.odd_images().shape == (32,)


def test_odd_images_made_with_other_settings_are_made_again(tmp_path, monkeypatch):
    from cnndesk.core.labelling import LabelSession, oddities

    root = tmp_path / "pile"
    make_pile(root, per_class=6)
    embed, calls = counting()
    LabelSession.open(root, embed=embed, duplicates=False)
    made = []
    real = oddities.odd_images
    monkeypatch.setattr(oddities, "odd_images", lambda z, *a, **kw: made.append(1) or real(z, *a, **kw))
    LabelSession.open(root, embed=embed, duplicates=False)
    assert made == []
    monkeypatch.setattr(oddities, "SPREAD", oddities.SPREAD + 1)
    LabelSession.open(root, embed=embed, duplicates=False)
    LabelSession.open(root, embed=embed, duplicates=False)
    assert made == [1] and calls == [24]
