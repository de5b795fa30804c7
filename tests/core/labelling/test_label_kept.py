"""The app's answers are kept between runs (cnndesk.core.labelling.kept): quitting used to lose
every answer, and reopening the folder started at "0 labelled"."""

from __future__ import annotations

import os

import pytest
from label_data import fake_embed

from cnndesk.core.labelling import NONE, SKIPPED, LabelSession


@pytest.fixture(autouse=True)
def _own_data_dir(isolated_dirs):
    return isolated_dirs


def _open(root, **kw):
    return LabelSession.open(root, embed=fake_embed, keep_answers=True, **kw)


def test_answers_come_back_when_the_folder_is_opened_again(pile):
    root, truth = pile
    s = _open(root)
    assert s.labelled == [] and not s.can_undo and s.keep_answers() is False, "nothing given, nothing written"
    paths = list(s.paths)
    for p in paths[:5]:
        s.answer(p, truth[os.path.realpath(p)])
    s.skip(paths[5])
    s.none_of_these(paths[6])
    s.add_class("later")
    assert s.keep_answers() is True and s.answers_file.exists()
    assert s.keep_answers() is False, "unchanged answers are not written again"
    assert not str(s.answers_file).startswith(str(root)), "nothing is written into the user's pile"

    again = _open(root)
    assert [again.state(p) for p in paths[:7]] == [s.state(p) for p in paths[:7]]
    assert again.state(paths[5]) == SKIPPED and again.state(paths[6]) == NONE
    assert set(again.classes) == {truth[os.path.realpath(p)] for p in paths[:5]}
    assert any("7 answers from last time restored" in n for n in again.notes)
    assert again.undo().startswith("Restore 7 answers"), "one undo forgets the restored answers"
    assert again.labelled == [] and again.classes == []
    assert again.keep_answers() is True
    assert _open(root).labelled == [], "forgotten answers stay forgotten"


def test_files_gone_and_a_spoilt_answers_file_still_open(pile):
    root, truth = pile
    s = _open(root)
    paths = list(s.paths)
    for p in paths[:4]:
        s.answer(p, truth[os.path.realpath(p)])
    s.keep_answers()
    os.unlink(paths[0])  # deleted meanwhile
    with open(s.answers_file, "a", encoding="utf-8") as fh:
        fh.write("nowhere.png,disc\n" f"{os.path.relpath(paths[5], root)},a/b\n" "bad,row,here\n")
    again = _open(root)
    assert sorted(again.paths[i] for i in again.labelled) == sorted(paths[1:4])
    s.answers_file.write_bytes(b"\xff\xfe not csv \x00")
    assert _open(root).labelled == []


def test_the_command_line_keeps_nothing(pile):
    root, truth = pile
    s = LabelSession.open(root, embed=fake_embed)
    s.answer(0, "disc")
    assert s.answers_file is None and s.keep_answers() is False
    kept = _open(root)
    assert kept.labelled == [], "answers given without keep_answers are not restored"


def test_a_correction_wins_over_the_subfolder_name(tmp_path):
    from label_data import make_pile

    root = tmp_path / "sorted"
    make_pile(root, per_class=4, subfolders=True)
    s = _open(root, subfolders_are_labels=True)
    first = s.paths[0]
    wrong = next(c for c in s.classes if c != s.label_of(first))
    s.answer(first, wrong)
    s.keep_answers()
    again = _open(root, subfolders_are_labels=True)
    assert again.label_of(first) == wrong
    assert any("1 answer from last time restored" in n for n in again.notes), again.notes


def test_subfolder_names_are_not_kept_as_answers(tmp_path):
    """Opened once with "Subfolders are classes", the folder opened without it must not take every
    subfolder name for an answer (only the user's own answers are kept)."""
    from label_data import make_pile

    root = tmp_path / "sorted"
    make_pile(root, per_class=4, subfolders=True)
    s = _open(root, subfolders_are_labels=True)
    assert len(s.labelled) == 16
    first = s.paths[0]
    wrong = next(c for c in s.classes if c != s.label_of(first))
    s.answer(first, wrong)
    s.keep_answers()
    plain = _open(root)
    assert [plain.paths[i] for i in plain.labelled] == [first] and plain.label_of(first) == wrong


def test_the_same_folder_through_a_link_has_the_same_answers(pile, tmp_path):
    root, truth = pile
    link = tmp_path / "photos-link"
    os.symlink(root, link)
    s = _open(link)
    p = s.paths[0]
    s.answer(p, truth[os.path.realpath(p)])
    assert s.keep_answers() is True
    again = _open(root)  # the real path: the answer comes back
    assert again.labelled and again.state(again.paths[0]) == truth[os.path.realpath(p)]
    assert _open(link).labelled, "and through the link again"


def test_another_card_at_the_same_place_does_not_get_these_answers(pile):
    """Camera cards mount at the same path with the same file names: the second card's
    IMG_0001.JPG got the first card's answer. The size is kept with each answer now."""
    root, truth = pile
    s = _open(root)
    paths = list(s.paths)
    for p in paths[:6]:
        s.answer(p, truth[os.path.realpath(p)])
    s.keep_answers()
    header = s.answers_file.read_text(encoding="utf-8").splitlines()[0]
    assert header == "path,label,size"
    for p in paths[:2]:  # "another card": other pictures under the same names
        with open(p, "ab") as fh:
            fh.write(b"\0" * 7)
    again = _open(root)
    assert sorted(again.paths[i] for i in again.labelled) == sorted(paths[2:6])
    assert any("4 answers from last time restored" in n for n in again.notes)
    assert any(n.startswith("2 answers from last time were for other files of the same name") for n in again.notes)


def test_answers_kept_by_the_older_version_still_come_back(pile):
    root, truth = pile
    s = _open(root)
    paths = list(s.paths)
    rows = "".join(f"{os.path.relpath(p, root)},{truth[os.path.realpath(p)]}\n" for p in paths[:3])
    s.answers_file.parent.mkdir(parents=True, exist_ok=True)
    s.answers_file.write_text("path,label\n" + rows, encoding="utf-8")  # two columns, no size
    again = _open(root)
    assert sorted(again.paths[i] for i in again.labelled) == sorted(paths[:3])
