"""The undo journal: sorts and relabels put back, across a restart (a new Journal on the same
file), never over a file that appeared since, copies removed only while unchanged."""

from __future__ import annotations

import os

from cnndesk.core.organize import sorting
from cnndesk.core.organize.journal import SORT_MARKER, Journal, exclude_sorted
from cnndesk.core.predict.stream import expand_paths


def _folder(tmp_path, n=6):
    root = tmp_path / "photos"
    (root / "trip").mkdir(parents=True)
    files = []
    for i in range(n):
        p = (root / "trip" if i % 2 else root) / f"img_{i}.jpg"
        p.write_bytes(os.urandom(100 + i))
        files.append(p)
    return root, files


def _sort(root, files, mode, journal, dest=None):
    dest = dest or root / "sorted"
    rows = [(str(p), "cat" if i % 3 else "dog", 0.9, None) for i, p in enumerate(files)]
    plan = sorting.plan_sort(rows, dest)
    report = sorting.execute(plan, mode)
    journal.record_sort(report, mode, dest, [str(root)])
    return report


def test_undo_a_move_sort_after_a_restart(tmp_path):
    root, files = _folder(tmp_path)
    before = {p: p.read_bytes() for p in files}
    report = _sort(root, files, "move", Journal(tmp_path / "j.jsonl"))
    assert len(report.done) == 6 and not any(p.exists() for p in files)
    assert not (root / "trip").exists()  # the emptied subfolder went too
    assert (root / "sorted" / SORT_MARKER).exists()

    again = Journal(tmp_path / "j.jsonl")  # a new app run
    last = again.last()
    assert last is not None and last.description == "Move 6 files into sorted"
    rep = again.undo()
    assert len(rep.restored) == 6 and not rep.skipped
    assert all(p.read_bytes() == data for p, data in before.items())
    assert not (root / "sorted").exists()  # the folders it made are gone, marker included
    assert again.last() is None and Journal(tmp_path / "j.jsonl").undo() is None


def test_undo_never_overwrites_and_keeps_changed_copies(tmp_path):
    root, files = _folder(tmp_path, 4)
    j = Journal(tmp_path / "j.jsonl")
    report = _sort(root, files, "move", j)
    files[0].write_bytes(b"a new file of that name")  # appeared since
    rep = j.undo()
    assert len(rep.restored) == 3 and "exists again" in rep.skipped[0]
    assert files[0].read_bytes() == b"a new file of that name"
    assert report.done[0][1].exists()  # the sorted one stays, nothing lost

    copy = _sort(root, files[1:], "copy", j, tmp_path / "copies")
    changed = copy.done[0][1]
    changed.write_bytes(b"edited by the user")
    rep = j.undo()
    assert len(rep.restored) == 2 and "changed" in rep.skipped[0] and changed.exists()
    assert all(p.exists() for p in files[1:])  # originals untouched by undoing a copy


def test_relabel_undo_and_a_damaged_line(tmp_path):
    j = Journal(tmp_path / "j.jsonl")
    src = tmp_path / "data" / "cat" / "x.jpg"
    src.parent.mkdir(parents=True)
    src.write_bytes(b"1")
    dst = tmp_path / "data" / "dog" / "x.jpg"
    dst.parent.mkdir()
    os.replace(src, dst)
    j.record_relabel(src, dst, "dog")
    with open(j.path, "a") as fh:
        fh.write('{"op": "do", "id": "cut sh')  # a crash mid-write
    assert Journal(j.path).last().kind == "relabel"
    assert Journal(j.path).undo().restored == [(str(dst), str(src))]
    assert src.exists() and not dst.exists()


def test_sorted_destination_is_not_read_again(tmp_path):
    root, files = _folder(tmp_path)
    j = Journal(tmp_path / "j.jsonl")
    _sort(root, files, "copy", j)
    everything = expand_paths([root], recursive=True)
    assert len(everything) == 12  # the copies are there…
    kept, skipped = exclude_sorted(everything, [str(root)])
    assert len(kept) == 6 and skipped == [os.path.realpath(root / "sorted")]  # …and left out
    inside, _ = exclude_sorted(expand_paths([root / "sorted"], recursive=True), [str(root / "sorted")])
    assert len(inside) == 6  # opening the destination itself reads it
