"""Writing the dataset again into the same folder (after labelling more) adds what is new: it
used to copy every image a second time as "name (1).png" (duplicates that leak between the
training and validation splits of the model trained on it)."""

from __future__ import annotations

import os

import pytest
from label_data import fake_embed

from cnndesk.core.labelling import LabelSession


@pytest.mark.parametrize("mode", ["copy", "link", "move"])
def test_writing_again_adds_only_the_new_images(pile, tmp_path, journal, mode):
    root, truth = pile
    s = LabelSession.open(root, embed=fake_embed)
    for p in s.paths[:6]:
        s.answer(p, truth[os.path.realpath(p)])
    out = tmp_path / "dataset"
    first = s.write_dataset(out, mode=mode, journal=journal)
    assert len(first.done) == 6 and first.already == 0
    for p in s.paths[6:9]:
        s.answer(p, truth[os.path.realpath(p)])
    again = s.write_dataset(out, mode=mode, force=True, journal=journal)
    assert len(again.done) == 3 and again.already == 6, again.describe()
    assert "6 already there" in again.describe()
    files = sorted(p.name for p in out.rglob("*.png"))
    assert len(files) == 9 and not [f for f in files if "(1)" in f], files
    s.undo()  # the second write undone: the first one's files stay
    assert len(list(out.rglob("*.png"))) == 6


def test_a_different_picture_with_the_same_name_is_still_kept(pile, tmp_path, journal):
    root, truth = pile
    s = LabelSession.open(root, embed=fake_embed)
    p = s.paths[0]
    s.answer(p, truth[os.path.realpath(p)])
    target = tmp_path / "dataset" / truth[os.path.realpath(p)]
    target.mkdir(parents=True)
    (target / os.path.basename(p)).write_bytes(b"another picture")
    res = s.write_dataset(tmp_path / "dataset", force=True, journal=journal)
    assert len(res.done) == 1 and res.already == 0
    assert sorted(f.name for f in target.iterdir())[0].endswith(" (1).png")


@pytest.mark.parametrize("mode", ["copy", "link"])
def test_a_relabelled_image_left_in_its_old_class_folder_is_named(pile, tmp_path, journal, mode):
    """Write, correct a label, write again into the same folder (the app offers it): the earlier copy
    stays in the old class folder, so the image is in two classes of the dataset. Before: silently."""
    root, truth = pile
    s = LabelSession.open(root, embed=fake_embed)
    for p in s.paths[:6]:
        s.answer(p, truth[os.path.realpath(p)])
    out = tmp_path / "dataset"
    assert not s.write_dataset(out, mode=mode, journal=journal).elsewhere
    first = s.paths[0]
    old, new = truth[os.path.realpath(first)], "brand_new"
    s.correct(first, new)
    again = s.write_dataset(out, mode=mode, force=True, journal=journal)
    name = os.path.basename(first)
    assert again.elsewhere == [f"{old}/{name}"] and len(again.done) == 1 and again.already == 5
    assert f"1 labelled image also in another class folder, under an earlier label (remove those copies): {old}/{name}" \
        in again.describe()
    assert not s.write_dataset(out, mode="move", force=True, journal=journal).elsewhere  # a move leaves none


def test_the_cli_names_them_in_json_and_table(pile, tmp_path, capsys, isolated_dirs, monkeypatch):
    import json

    import cnndesk.core.labelling.session as session_mod
    from cnndesk.cli import main

    monkeypatch.setattr(session_mod, "default_embedder", fake_embed)

    root, truth = pile
    files = sorted(truth)[:4]
    f = tmp_path / "l.csv"
    f.write_text("path,label\n" + "".join(f"{p},{truth[p]}\n" for p in files), encoding="utf-8")
    assert main(["label", str(root), "--labels", str(f), "--write", str(tmp_path / "ds")]) == 0
    f.write_text("path,label\n" + "".join(f"{p},zebra\n" for p in files[:1]), encoding="utf-8")
    capsys.readouterr()
    assert main(["label", str(root), "--labels", str(f), "--write", str(tmp_path / "ds"), "--force", "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["elsewhere"] == [f"{truth[files[0]]}/{os.path.basename(files[0])}"]
    assert main(["label", str(root), "--labels", str(f), "--write", str(tmp_path / "ds"), "--force"]) == 0
    assert "note: 1 labelled image is also in another class folder" in capsys.readouterr().out
