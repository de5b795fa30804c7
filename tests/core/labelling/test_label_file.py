"""The labels file (CSV path,label): parsing, bad input with one clear message, round trip."""

from __future__ import annotations

import os

import pytest
from label_data import fake_embed

from cnndesk.core.labelling import NONE, SKIPPED, LabelError, LabelSession, read_labels
from cnndesk.core.labelling.folder import list_images


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_relative_absolute_empty_and_none_labels(pile, tmp_path):
    root, truth = pile
    files, _ = list_images(root)
    a, b, c, d = files[:4]
    f = _write(tmp_path / "l.csv", f"path,label\n{os.path.basename(a)},disc\n{b},bar\n{os.path.basename(c)},\n"
               f"{os.path.basename(d)},_none\n")
    labels = read_labels(f, str(root), set(files))
    assert labels == {a: "disc", b: "bar", c: None, d: NONE}
    s = LabelSession.open(root, labels_file=f, embed=fake_embed)
    assert s.label_of(a) == "disc" and s.state(c) == SKIPPED and s.state(d) == NONE
    assert s.classes == ["bar", "disc"]


def test_bom_crlf_quotes_and_blank_lines_are_fine(pile, tmp_path):
    root, _ = pile
    files, _ = list_images(root)
    name = os.path.basename(files[0])
    f = _write(tmp_path / "l.csv", f'\ufeffPath,Label\r\n\r\n"{name}","my class"\r\n')
    assert read_labels(f, str(root), set(files)) == {files[0]: "my class"}


@pytest.mark.parametrize("text, message", [
    ("", "header 'path,label'"),
    ("file,class\nx.png,a\n", "header 'path,label'"),
    ("path,label\nnot_there.png,a\n", "line 2: not_there.png is not an image in"),
    ("path,label\n../outside.png,a\n", "is not an image in"),
    ("path,label\nFIRST,a,b\n", "line 2: expected 2 fields"),
    ("path,label\nFIRST,a/b\n", "line 2: the class name 'a/b' is not a valid folder name"),
    ("path,label\nFIRST,_unknown\n", "reserved"),
    ("path,label\nFIRST,a\nFIRST,b\n", "line 3: FIRST is listed twice with different labels"),
    ("path,label\n,a\n", "line 2: the path is empty"),
])
def test_bad_labels_files_get_one_clear_line(pile, tmp_path, text, message):
    root, _ = pile
    files, _ = list_images(root)
    first = os.path.basename(files[0])
    f = _write(tmp_path / "l.csv", text.replace("FIRST", first))
    with pytest.raises(LabelError) as info:
        read_labels(f, str(root), set(files))
    msg = str(info.value)
    assert message.replace("FIRST", first) in msg and "\n" not in msg
    assert "l.csv" in msg


def test_unreadable_missing_and_binary_labels_files(pile, tmp_path):
    root, _ = pile
    files, _ = list_images(root)
    with pytest.raises(LabelError, match="does not exist"):
        read_labels(tmp_path / "missing.csv", str(root), set(files))
    with pytest.raises(LabelError, match="is a folder"):
        read_labels(tmp_path, str(root), set(files))
    f = _write(tmp_path / "latin.csv", "path,label\nx.png,caf\xe9\n", "latin-1")
    with pytest.raises(LabelError, match="not UTF-8"):
        read_labels(f, str(root), set(files))
    f = tmp_path / "nul.csv"
    f.write_bytes(b"path,label\n\x00\x00,a\n")
    with pytest.raises(LabelError):
        read_labels(f, str(root), set(files))


def test_save_labels_round_trips_and_is_read_back_the_same(session, tmp_path):
    session.answer(0, "disc")
    session.skip(1)
    session.none_of_these(2)
    session.answer(3, "two words, quoted")
    out = tmp_path / "saved.csv"
    session.save_labels(out)
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "path,label"
    assert f"{session.relative(1)}," in text and f"{session.relative(2)},_none" in text
    again = LabelSession.open(session.root, labels_file=out, embed=fake_embed)
    assert [again.state(i) for i in range(4)] == [session.state(i) for i in range(4)]
    assert again.classes == sorted(session.classes)


def test_subfolder_labels_need_valid_names(tmp_path):
    from label_data import make_pile

    make_pile(tmp_path / "p", per_class=2, subfolders=True)
    os.rename(tmp_path / "p" / "disc", tmp_path / "p" / "_unknown")
    with pytest.raises(LabelError, match="subfolder '_unknown' cannot be a class"):
        LabelSession.open(tmp_path / "p", subfolders_are_labels=True, embed=fake_embed)
    s = LabelSession.open(tmp_path / "p", embed=fake_embed)  # not a class unless told
    assert len(s.paths) == 8


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_labels_file_excel_saved_with_semicolons_or_a_spreadsheet_copy_with_tabs_is_read(pile, tmp_path, sep):
    """Excel saves CSV with ';' where the comma is the decimal mark (German, French): the file was
    refused with "the first line must be the header 'path,label'" (new-user round)."""
    root, _ = pile
    files, _ = list_images(root)
    a, b = (os.path.basename(f) for f in files[:2])
    f = _write(tmp_path / "l.csv", f"\ufeffpath{sep}label\r\n{a}{sep}Crème brûlée\r\n\"{b}\"{sep}\"x, y\"\r\n")
    assert read_labels(f, str(root), set(files)) == {files[0]: "Crème brûlée", files[1]: "x, y"}


def test_a_class_name_spelt_with_a_combining_accent_is_the_same_class(pile, tmp_path):
    """"étoile" typed (one character é) and "étoile" from a Mac's folder name or a copied file name
    (e + combining accent) were two classes that look the same, written as two folders (one on
    macOS) (new-user round)."""
    from label_data import fake_embed

    from cnndesk.core.labelling import LabelSession
    from cnndesk.core.labelling.folder import check_label, subfolder_labels

    composed, decomposed = "\u00e9toile", "e\u0301toile"
    assert check_label(decomposed) == composed
    root, _ = pile
    files, _ = list_images(root)
    a, b = (os.path.basename(f) for f in files[:2])
    f = _write(tmp_path / "l.csv", f"path,label\n{a},{composed}\n{b},{decomposed}\n")
    assert set(read_labels(f, str(root), set(files)).values()) == {composed}
    assert set(subfolder_labels([os.path.join(str(root), decomposed, "x.png")], str(root)).values()) == {composed}
    s = LabelSession.open(root, embed=fake_embed)
    s.answer(files[0], composed)
    s.answer(files[1], decomposed)
    s.add_class(decomposed)
    assert s.classes == [composed] and s.label_of(files[1]) == composed
