"""An attacker's (or a careless user's) run over what "Label a folder" reads: the folder, the
labels file, the answers kept in the data folder and the space cache. Each test failed on the code
before the fix (docs/threat-model.md, "Label a folder")."""

from __future__ import annotations

import json
import os
import signal
from contextlib import contextmanager

import numpy as np
import pytest
from label_data import fake_embed, make_pile

from cnndesk.cli import main
from cnndesk.core.labelling import LabelError, LabelSession
from cnndesk.core.labelling.folder import check_label


@pytest.fixture(autouse=True)
def fast_embeddings(monkeypatch, isolated_dirs):
    import cnndesk.core.labelling.session as session_mod

    monkeypatch.setattr(session_mod, "default_embedder", fake_embed)


class Blocked(BaseException):
    """Raised in a body that blocks (not an OSError, which the code under test may catch)."""


@contextmanager
def deadline(seconds: int = 10):
    """Fail (instead of hanging the run) when the body blocks, as on a FIFO."""
    def fire(*_):
        raise Blocked(f"blocked for {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _run(capsys, *argv):
    code = main(["label", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_link_to_a_folder_outside_is_not_followed_nor_moved_from(tmp_path, capsys):
    """`ln -s /elsewhere pile/everything`: its images were labelled and `--write --mode move`
    took them out of /elsewhere."""
    root, elsewhere = tmp_path / "pile", tmp_path / "elsewhere"
    make_pile(root, per_class=3)
    make_pile(elsewhere, per_class=1, seed=5)
    (root / "everything").symlink_to(elsewhere, target_is_directory=True)
    s = LabelSession.open(root, embed=fake_embed)
    assert not [p for p in s.paths if "everything" in p], "nothing outside the folder is in the pile"
    assert any("everything" in n and "not followed" in n for n in s.notes)
    outside = sorted(os.listdir(elsewhere))
    labels = tmp_path / "l.csv"
    labels.write_text(f"path,label\neverything/{outside[0]},bar\nbar_0_000.png,bar\n", encoding="utf-8")
    code, _, err = _run(capsys, root, "--labels", labels, "--write", tmp_path / "out", "--mode", "move")
    assert code == 2 and "not an image in" in err, err
    assert sorted(os.listdir(elsewhere)) == outside, "nothing moved out of the folder outside"


def test_a_labels_file_that_is_a_fifo_or_a_device_is_refused_not_waited_on(pile, tmp_path, capsys):
    root, _ = pile
    fifo = tmp_path / "labels.csv"
    os.mkfifo(fifo)
    with deadline():
        code, _, err = _run(capsys, root, "--labels", fifo, "--ask", 1)
    assert code == 2 and "named pipe" in err and err.count("\n") == 1, err
    code, _, err = _run(capsys, root, "--labels", "/dev/zero", "--ask", 1)
    assert code == 2 and "a device, not a file" in err, err


def test_a_labels_file_over_the_limit_is_refused_not_cut_mid_label(pile, tmp_path):
    """Read up to 64 MB and parsed: the last row, cut at the limit, gave a wrong but valid label."""
    from cnndesk.core.labelling import folder as fo

    root, truth = pile
    first, last = (os.path.relpath(p, root) for p in sorted(truth)[:2])
    long_row = f"{'./' * 60_000}{first},bar\n"  # normalises to the first image: 120 KB a row
    body = "path,label\n" + long_row * ((64 << 20) // len(long_row) - 1)
    tail = f"{last},cats_and_dogs\n"
    cut = (64 << 20) - len(body) - len(tail) + 9  # the limit falls inside the last label: "cats_"
    body += "\n" * cut + tail
    (tmp_path / "l.csv").write_text(body, encoding="utf-8")
    with pytest.raises(LabelError, match="larger than 64 MB"):
        fo.read_labels(tmp_path / "l.csv", str(root), set(truth))


def test_the_labels_file_the_app_writes_reads_back_for_any_file_name(tmp_path):
    """Names with leading/trailing spaces, formula-like names and names that are not UTF-8: the
    labels file the app saved was refused by `cnndesk label --labels` ("… is not an image")."""
    from cnndesk.core.labelling import folder as fo

    root = tmp_path / "pile"
    make_pile(root, per_class=2)
    src = sorted(root.iterdir())
    odd = [" lead.png", "trail.png ", "=cmd().png", "-1+2.png", os.fsdecode(b"caf\xe9.png")]
    for name, s in zip(odd, src, strict=False):
        os.rename(s, os.path.join(root, name))
    s = LabelSession.open(root, embed=fake_embed)
    for p in s.paths:
        s.answer(p, "a")
    text = s.labels_text()
    (tmp_path / "labels.csv").write_text(text, encoding="utf-8")
    back = fo.read_labels(tmp_path / "labels.csv", s.root, set(s.paths))
    assert back == dict.fromkeys(s.paths, "a")


def test_kept_answers_for_odd_file_names_come_back(tmp_path):
    """The kept answers of files whose names are not UTF-8 (or start with a space) were dropped at
    every start of the app, so those answers were lost."""
    root = tmp_path / "pile"
    make_pile(root, per_class=2)
    for name, s in zip([os.fsdecode(b"\xff.png"), " space.png"], sorted(root.iterdir()), strict=False):
        os.rename(s, os.path.join(root, name))
    s = LabelSession.open(root, embed=fake_embed, keep_answers=True)
    for p in s.paths:
        s.answer(p, "b")
    assert s.keep_answers()
    again = LabelSession.open(root, embed=fake_embed, keep_answers=True)
    assert len(again.labelled) == len(s.paths)


def test_kept_answers_named_by_an_older_version_with_an_invisible_character_are_kept(pile):
    """Class names with invisible characters are refused now; kept answers that an older version
    wrote with such a name were dropped when the folder opened and lost at the next save."""
    from cnndesk.core.labelling import kept

    root, truth = pile
    first = sorted(truth)[:2]
    f = kept.answers_file(str(root))
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("path,label\n" + "".join(f"{os.path.basename(p)},\u200bcat\u00ad\n" for p in first), encoding="utf-8")
    s = LabelSession.open(root, embed=fake_embed, keep_answers=True)
    assert sorted(s.paths[i] for i in s.labelled) == first and s.classes == ["cat"]


def test_kept_answers_file_replaced_by_a_fifo_does_not_hang_the_open(pile):
    from cnndesk.core.labelling import kept

    root, _ = pile
    f = kept.answers_file(str(root))
    f.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(f)
    with deadline():
        s = LabelSession.open(root, embed=fake_embed, keep_answers=True)
    assert s.labelled == []


def test_kept_answers_cut_at_the_limit_drop_the_cut_row(pile, monkeypatch):
    from cnndesk.core.labelling import kept

    root, truth = pile
    f = kept.answers_file(str(root))
    f.parent.mkdir(parents=True, exist_ok=True)
    name, other = (os.path.relpath(p, root) for p in sorted(truth)[:2])
    text = f"path,label\n{name},bar\n{other},cats_and_dogs\n"
    f.write_text(text, encoding="utf-8")
    assert set(kept.load(f, str(root), set(truth)).values()) == {"bar", "cats_and_dogs"}
    monkeypatch.setattr(kept, "MAX_BYTES", len(text) - 9)  # cut inside the last label
    assert set(kept.load(f, str(root), set(truth)).values()) == {"bar"}, "the cut row is dropped, not read as a shorter label"


@pytest.mark.parametrize("damage", ["cut", "meta-list", "deep", "paths-int", "hostile-path", "fifo"])
def test_a_damaged_or_hand_edited_space_cache_is_rebuilt(pile, tmp_path, damage):
    """A truncated entry failed every `cnndesk label` on the folder (BadZipFile) until the cache
    was cleared; JSON that was not an object or paths that were not text crashed it too; a FIFO
    hung it; an entry naming a file outside the folder put that file in the pile."""
    from cnndesk.core.labelling import space_cache

    root, _ = pile
    LabelSession.open(root, embed=fake_embed)
    (entry,) = space_cache.entry_path(str(root), "x").parent.glob("labelling-*.npz")
    data = dict(np.load(entry, allow_pickle=False))
    meta = json.loads(str(data["meta"]))
    secret = tmp_path / "secret.png"
    secret.write_bytes((root / sorted(os.listdir(root))[0]).read_bytes())
    if damage == "cut":
        entry.write_bytes(entry.read_bytes()[:4000])
    elif damage == "fifo":
        entry.unlink()
        os.mkfifo(entry)
    else:
        if damage == "meta-list":
            meta = [meta]
        elif damage == "deep":
            meta = None
            data["meta"] = np.array("[" * 100_000 + "]" * 100_000)
        elif damage == "paths-int":
            meta["paths"] = list(range(len(meta["paths"])))
        else:
            meta["paths"][0] = str(secret)
        if meta is not None:
            data["meta"] = np.array(json.dumps(meta))
        with open(entry, "wb") as fh:
            np.savez(fh, **data)
    with deadline():
        s = LabelSession.open(root, embed=fake_embed)
    assert len(s.paths) == 32 and str(secret) not in s.paths
    assert all(p.startswith(str(root) + os.sep) for p in s.paths)


@pytest.mark.parametrize("name", ["a\u202eb", "\ufeffcat", "ca\u200bt", "\u2066x"])
def test_class_names_with_invisible_or_direction_characters_are_refused(name):
    """"cat" and "\\ufeffcat" were two classes (two folders) that look the same; a right-to-left
    override spoofs the folder name in file managers."""
    from cnndesk.core.labelling.folder import check_label

    with pytest.raises(LabelError, match="invisible"):
        check_label(name)


def test_a_class_name_too_long_in_bytes_says_so():
    from cnndesk.core.labelling.folder import check_label

    with pytest.raises(LabelError, match="too long"):
        check_label("\u20ac" * 80)  # 80 characters, 240 bytes


def test_a_folder_nested_deeper_than_pythons_recursion_limit_is_read(pile, tmp_path, capsys):
    """A folder 1,100 levels deep (an archive made so) stopped `cnndesk label` (and classify and
    train, which walk folders the same way) with "the input is nested too deeply" (exit 1)."""
    root, truth = pile
    deep = str(root)
    for _ in range(1100):
        deep = os.path.join(deep, "a")
        os.mkdir(deep)
    os.rename(sorted(truth)[0], os.path.join(deep, "deep.png"))
    try:
        code, out, err = _run(capsys, root, "--ask", 40, "--format", "json")
        assert code == 0, err
        assert any(r["path"].endswith("/a/deep.png") for r in json.loads(out)["ask"])
    finally:  # removed bottom up: pytest's cleanup (shutil.rmtree) recurses too
        os.unlink(os.path.join(deep, "deep.png"))
        while deep != str(root):
            os.rmdir(deep)
            deep = os.path.dirname(deep)


def test_a_label_column_that_names_each_image_is_refused(tmp_path):
    """A labels file whose label is an image ID: 4,000 images with 4,000 labels took 82 s and
    0.7 GB for --suggest (the model is images x classes; 40,000 would not fit in memory)."""
    from cnndesk.core.labelling import folder as fo

    root = str(tmp_path)
    known = {os.path.join(root, f"img{i}.png") for i in range(600)}
    rows = "".join(f"img{i}.png,id{i}\n" for i in range(600))
    (tmp_path / "l.csv").write_text("path,label\n" + rows, encoding="utf-8")
    with pytest.raises(LabelError, match="600 different classes for 600 images"):
        fo.read_labels(tmp_path / "l.csv", root, known)
    files = [os.path.join(root, f"s{i}", "a.png") for i in range(600)]
    with pytest.raises(LabelError, match="600 subfolders hold only 600 images"):
        fo.subfolder_labels(files, root)
    # a big dataset of many classes with several images each is not an ID column (review: 1,000
    # ImageNet-style class folders were refused)
    many = [os.path.join(root, f"s{i}", f"{j}.png") for i in range(600) for j in range(3)]
    assert len(set(fo.subfolder_labels(many, root).values())) == 600
    known = {os.path.join(root, f"img{i}.png") for i in range(1800)}
    rows = "".join(f"img{i}.png,c{i % 600}\n" for i in range(1800))
    (tmp_path / "m.csv").write_text("path,label\n" + rows, encoding="utf-8")
    assert len(set(fo.read_labels(tmp_path / "m.csv", root, known).values())) == 600


@pytest.mark.parametrize("name", ["ca\u00adt", "c\u2061at", "c\u180eat", "cat\U000e0041", "ca\u2028t"])
def test_every_invisible_format_character_is_refused(name):
    """The first list missed the soft hyphen, invisible operators, the Mongolian vowel separator,
    tag characters and the line separator (review)."""
    with pytest.raises(LabelError, match="invisible"):
        check_label(name)


def test_the_joiners_some_scripts_need_stay_allowed():
    assert check_label("\u0915\u094d\u200d\u0937") == "\u0915\u094d\u200d\u0937"  # Devanagari with ZWJ


def test_a_windows_junction_counts_as_a_link(monkeypatch):
    """On Windows a junction is not is_symlink() but realpath resolves it: the walks took its path as
    the parent's path and its name, so a junction back to a parent looped (review)."""
    import stat as st
    from types import SimpleNamespace

    from cnndesk.core.common import links

    entry = SimpleNamespace(is_symlink=lambda: False, path="x",
                            stat=lambda follow_symlinks=True: SimpleNamespace(st_file_attributes=0x400))
    plain = SimpleNamespace(is_symlink=lambda: False, path="y",
                            stat=lambda follow_symlinks=True: SimpleNamespace(st_file_attributes=0x10))
    monkeypatch.setattr(links.os, "name", "nt")
    monkeypatch.setattr(st, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400, raising=False)
    assert links.is_link(entry) and not links.is_link(plain)


@pytest.mark.parametrize("flag", ["\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
                                  "\U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f"])
def test_a_region_flag_emoji_is_a_class_name(flag):
    """The flags of Scotland and Wales are the black flag, tag characters and a cancel tag: a user's
    '<flag> scot' was refused as holding an invisible character (new-user round). Tags anywhere
    else stay refused."""
    assert check_label(flag + " scot") == flag + " scot"
    for bad in (flag[1:] + " scot", "cat" + flag[1:], flag[:-1] + " scot"):
        with pytest.raises(LabelError, match="invisible"):
            check_label(bad)


def test_messages_show_a_class_name_with_a_joiner_as_typed(pile):
    """'the model is unsure between ... and '\\U0001f469\\u200d\\U0001f4bb coder'' (repr) in --ask and
    in the Undo menu's text: the emoji's joiner was shown escaped (new-user round)."""
    from label_data import fake_embed

    from cnndesk.core.labelling import LabelSession

    root, truth = pile
    coder = "\U0001f469\u200d\U0001f4bb coder"
    s = LabelSession.open(root, embed=fake_embed)
    paths = sorted(truth)
    action = s.answer(paths[0], coder)
    assert action.description.endswith(f"as '{coder}'"), action.description
    assert "\\u" not in s.add_class("\u0915\u094d\u200d\u0937").description
