"""Every action of a labelling session can be undone; writing the dataset by copy, move or link
goes through the journal, refuses a non-empty output folder, and is undone file by file."""

from __future__ import annotations

import os

import pytest
from label_data import fake_embed

from cnndesk.core.labelling import NONE, SKIPPED, LabelError, LabelSession


def _states(s):
    return [s.state(i) for i in range(len(s.paths))], list(s.classes)


def test_each_action_is_undone_back_to_the_exact_state(session, pile):
    _, truth = pile
    for i in range(12):
        session.answer(i, truth[os.path.realpath(session.paths[i])])
    steps = [
        lambda s: s.answer(12, "disc"),
        lambda s: s.correct(0, "brand_new"),
        lambda s: s.skip(13),
        lambda s: s.none_of_these(14),
        lambda s: s.add_class("empty_class"),
        lambda s: s.clear(1),
        lambda s: s.name_group(0, "grouped"),
        lambda s: s.accept_group(1),
        lambda s: s.accept([20, 21]),
        lambda s: s.accept_above(0.0),
    ]
    before = []
    for step in steps:
        before.append(_states(session))
        assert step(session) is not None
    assert session.can_undo
    for expected in reversed(before):
        assert session.undo() is not None
        assert _states(session) == expected
    for _ in range(12):
        session.undo()
    assert session.undo() is None and not session.can_undo
    assert session.labelled == [] and session.classes == []


def test_noop_actions_are_not_recorded(session):
    session.answer(0, "disc")
    n = len(session.history())
    assert session.answer(0, "disc") is None and session.add_class("disc") is None
    assert len(session.history()) == n


def test_undo_restores_states_and_refits(session, pile):
    _, truth = pile
    for i in range(20):
        session.answer(i, truth[os.path.realpath(session.paths[i])])
    session.suggestions()
    v = session.model_is_current
    session.skip(25)
    assert not session.model_is_current and v
    session.undo()
    assert session.state(25) is None and not session.model_is_current
    session.suggestions()
    assert session.model_is_current


@pytest.mark.parametrize("mode", ["copy", "move", "link"])
def test_write_dataset_modes_and_undo(pile, tmp_path, journal, mode):
    root, truth = pile
    s = LabelSession.open(root, embed=fake_embed)
    chosen = s.paths[:10]
    for p in chosen:
        s.answer(p, truth[os.path.realpath(p)])
    s.skip(s.paths[10])
    s.none_of_these(s.paths[11])
    out = tmp_path / "dataset"
    res = s.write_dataset(out, mode=mode, journal=journal)
    assert len(res.done) == 10 and not res.failed and sum(res.counts.values()) == 10
    written = sorted(p for p in out.rglob("*.png"))
    assert len(written) == 10
    by_name = {os.path.basename(p): truth[os.path.realpath(p)] for p in chosen}
    for w in written:
        assert w.parent.name == by_name[w.name]  # in its class folder
        assert w.is_symlink() == (mode == "link")
    originals_there = [os.path.exists(p) for p in chosen]
    assert all(originals_there) == (mode != "move")
    if mode == "move":  # the session follows the moved files
        assert all(os.path.exists(p) and str(out) in p for p in s.paths[:10])
        assert s.label_of(s.paths[0]) == truth[os.path.realpath(chosen[0])]
    assert journal.last() is not None
    text = s.undo()
    assert "10 files" in text
    assert not list(out.rglob("*.png"))
    assert all(os.path.exists(p) for p in chosen)
    assert s.paths[:10] == chosen
    again = LabelSession.open(root, embed=fake_embed)  # nothing lost, nothing doubled
    assert len(again.paths) == len(truth)


def test_write_refuses_a_non_empty_folder_without_force(session, pile, tmp_path, journal):
    _, truth = pile
    for i in range(4):
        session.answer(i, truth[os.path.realpath(session.paths[i])])
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(LabelError, match="not empty.*--force"):
        session.write_dataset(out, journal=journal)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    res = session.write_dataset(out, force=True, journal=journal)
    assert len(res.done) == 4 and (out / "keep.txt").read_text() == "mine"
    with pytest.raises(LabelError, match="labelled folder"):
        session.write_dataset(session.root, journal=journal)
    with pytest.raises(LabelError, match="does not exist"):
        session.write_dataset(tmp_path / "no" / "such", journal=journal)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(LabelError, match="not a folder"):
        session.write_dataset(tmp_path / "afile", journal=journal)
    with pytest.raises(LabelError, match="unknown mode"):
        session.write_dataset(tmp_path / "o2", mode="teleport", journal=journal)


def test_write_with_nothing_labelled_is_refused(session, tmp_path, journal):
    session.skip(0)
    with pytest.raises(LabelError, match="nothing is labelled"):
        session.write_dataset(tmp_path / "out", journal=journal)
    assert not (tmp_path / "out").exists()


def test_written_dataset_is_skipped_when_the_folder_is_opened_again(session, pile, journal):
    _, truth = pile
    for i in range(6):
        session.answer(i, truth[os.path.realpath(session.paths[i])])
    session.write_dataset(os.path.join(session.root, "sorted"), journal=journal)
    again = LabelSession.open(session.root, embed=fake_embed)
    assert len(again.paths) == 32 and any("sort" in n for n in again.notes)


def test_save_labels_is_undone(session, tmp_path):
    f = tmp_path / "labels.csv"
    session.answer(0, "disc")
    session.save_labels(f)
    first = f.read_text()
    session.answer(1, "bar")
    session.save_labels(f)
    assert f.read_text() != first
    session.undo()
    assert f.read_text() == first
    session.undo()  # the answer for 1
    session.undo()  # the first save: the file was new
    assert not f.exists()
    assert session.state(0) == "disc"
    n = len(session.history())
    assert session.save_labels(f, undoable=False) is None and f.exists()  # an autosave
    assert len(session.history()) == n


def test_labels_file_write_failure_is_one_clear_error(session, tmp_path):
    session.answer(0, "disc")
    with pytest.raises(LabelError, match="cannot write"):
        session.save_labels(tmp_path / "no" / "such" / "labels.csv")
    assert session.history()[-1].startswith("Label")
    assert SKIPPED != NONE


@pytest.mark.parametrize("mode", ["move", "copy", "link"])
def test_an_unwritable_journal_refuses_before_any_file_is_touched(pile, tmp_path, mode):
    """Before: the files were moved, then recording the journal failed ('a part of the path is not
    a folder'): every file moved, the error said nothing of it, and nothing could undo it."""
    from cnndesk.core.organize.journal import Journal

    root, truth = pile
    s = LabelSession.open(root, embed=fake_embed)
    for p in s.paths[:6]:
        s.answer(p, truth[os.path.realpath(p)])
    (tmp_path / "data").write_text("a file where the data folder should be")
    before = sorted(os.listdir(root))
    with pytest.raises(LabelError, match="cannot write the undo journal .*; nothing was written"):
        s.write_dataset(tmp_path / "ds", mode=mode, journal=Journal(tmp_path / "data" / "journal.jsonl"))
    assert sorted(os.listdir(root)) == before and not (tmp_path / "ds").exists()


def _six_moved(pile, tmp_path, journal):
    """A session whose first six images were answered and written to ds/ by moving."""
    root, truth = pile
    s = LabelSession.open(root, embed=fake_embed)
    chosen = s.paths[:6]
    for p in chosen:
        s.answer(p, truth[os.path.realpath(p)])
    s.write_dataset(tmp_path / "ds", mode="move", journal=journal)
    return s, chosen


def test_undo_of_a_write_already_undone_elsewhere_follows_the_files_back(pile, tmp_path, journal):
    """The write was undone by Edit ▸ Undo or `cnndesk undo` first. Before: the session's own undo
    ran the journal entry again ("0 files put back; 6 left as they are: ... no longer there") and
    the session kept the moved-to paths: 6 images missing until the folder was opened again."""
    s, chosen = _six_moved(pile, tmp_path, journal)
    journal.undo()  # elsewhere
    assert s.undo() == "Already undone: “Move 6 files into ds” (Edit ▸ Undo or cnndesk undo)"
    assert s.paths[:6] == chosen and all(os.path.exists(p) for p in s.paths)
    assert journal.path.read_text(encoding="utf-8").count('"op": "undo"') == 1  # not undone twice


def test_undo_after_a_stopped_undo_elsewhere_does_the_rest(pile, tmp_path, journal):
    from cnndesk.core.common.progress import CancelToken

    class StopAfter2(CancelToken):
        seen = 0

        @property
        def cancelled(self):
            self.seen += 1
            return self.seen > 2

    s, chosen = _six_moved(pile, tmp_path, journal)
    assert journal.undo(cancel=StopAfter2()).left == 4
    assert "4 files put back" in s.undo()
    assert s.paths[:6] == chosen and all(os.path.exists(p) for p in s.paths)
    assert journal.entries() == []


@pytest.mark.parametrize("mode", ["copy", "link"])
def test_a_write_that_wrote_nothing_leaves_no_marker(pile, tmp_path, journal, mode):
    """Before: every file failed (a file named like the class folder was in the way), yet the
    folder got .cnndesk-sorted, with no journal entry to take it out: the folder's own images were
    then left out of every run on the folder above it."""
    root, truth = pile
    s = LabelSession.open(root, embed=fake_embed)
    chosen = [p for p in s.paths if truth[os.path.realpath(p)] == "disc"][:3]
    for p in chosen:
        s.answer(p, "disc")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "disc").write_text("a file where the class folder would go")
    res = s.write_dataset(out, mode=mode, force=True, journal=journal)
    assert not res.done and len(res.failed) == 3 and res.entry is None
    assert sorted(os.listdir(out)) == ["disc"]
    # the words say what is wrong (review: "disc: it already exists")
    assert all(why.endswith("disc: a file is there, not a folder") for why in res.failed), res.failed
