"""``cnndesk undo``: what ``cnndesk label --write`` did is put back from the command line (it said
"undoable" but only the app could undo it), with --list, an ID, JSON, one-line errors, and a
stop between files that keeps the rest undoable."""

from __future__ import annotations

import json
import os

import pytest
from label_data import fake_embed

from cnndesk.cli import main
from cnndesk.core.common.progress import CancelToken
from cnndesk.core.organize.journal import Journal


@pytest.fixture(autouse=True)
def fast_embeddings(monkeypatch, isolated_dirs):  # isolated_dirs: a journal of this test's own
    import cnndesk.core.labelling.session as session_mod

    monkeypatch.setattr(session_mod, "default_embedder", fake_embed)


def _run(capsys, *argv):
    code = main([*map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _write(capsys, tmp_path, root, truth, mode, n=6, name="ds", skip=0):
    files = sorted(truth)[skip:skip + n]
    f = tmp_path / f"{name}.csv"
    f.write_text("path,label\n" + "".join(f"{p},{truth[p]}\n" for p in files), encoding="utf-8")
    code, out, err = _run(capsys, "label", root, "--labels", f, "--write", tmp_path / name, "--mode", mode)
    assert code == 0, err
    entry = Journal().last()
    assert f"Undo it with: cnndesk undo {entry.id}" in out  # the table says how
    return files


def test_undo_a_move_write_puts_every_file_back(pile, tmp_path, capsys):
    root, truth = pile
    before = {p: open(p, "rb").read() for p in truth}
    files = _write(capsys, tmp_path, root, truth, "move")
    assert not any(os.path.exists(p) for p in files)
    code, out, err = _run(capsys, "undo")
    assert code == 0, err
    assert out.startswith("Undid “Move 6 files into ds”: 6 files put back.")
    assert all(open(p, "rb").read() == data for p, data in before.items())
    assert not (tmp_path / "ds").exists()  # the class folders it made are gone
    code, out, _ = _run(capsys, "undo")
    assert code == 0 and out.strip() == "Nothing to undo."


def test_list_then_undo_an_older_one_by_id_prefix(pile, tmp_path, capsys):
    root, truth = pile
    moved = _write(capsys, tmp_path, root, truth, "move", n=4, name="first")
    _write(capsys, tmp_path, root, truth, "copy", n=8, name="second", skip=4)
    code, out, _ = _run(capsys, "undo", "--list", "-f", "json")
    ops = json.loads(out)["operations"]
    assert code == 0 and [o["description"] for o in ops] == ["Copy 8 files into second", "Move 4 files into first"]
    assert [o["files"] for o in ops] == [8, 4] and all(set(o) == {"id", "description", "kind", "mode", "files", "time"}
                                                        for o in ops)
    code, table, _ = _run(capsys, "undo", "--list")
    assert table.splitlines()[0].split() == ["ID", "WHEN", "FILES", "WHAT"] and ops[1]["id"] in table
    # the older one, by a prefix of its ID: the moved files come back, the copies stay
    code, out, err = _run(capsys, "undo", ops[1]["id"][:6], "-f", "json")
    assert code == 0, err
    assert json.loads(out) == {"id": ops[1]["id"], "description": "Move 4 files into first", "restored": 4,
                               "skipped": [], "left": 0}
    assert all(os.path.exists(p) for p in moved) and len(list((tmp_path / "second").rglob("*.png"))) == 8
    assert [e.description for e in Journal().entries()] == ["Copy 8 files into second"]


def test_write_json_names_its_undo_id(pile, tmp_path, capsys):
    root, truth = pile
    files = sorted(truth)[:3]
    f = tmp_path / "l.csv"
    f.write_text("path,label\n" + "".join(f"{p},{truth[p]}\n" for p in files), encoding="utf-8")
    code, out, _ = _run(capsys, "label", root, "--labels", f, "--write", tmp_path / "ds", "--mode", "move", "-f", "json")
    data = json.loads(out)
    assert code == 0 and data["undo"] == Journal().last().id
    code, out, _ = _run(capsys, "undo", data["undo"], "-f", "json")
    assert code == 0 and json.loads(out)["restored"] == 3 and all(os.path.exists(p) for p in files)


@pytest.mark.parametrize("argv, says", [
    (["undo", "zzzz"], "is not an operation that can be undone"),
    (["undo", ""], "is not an operation that can be undone"),
    (["undo", "--list", "abc"], "--list takes no ID"),
])
def test_bad_id_is_one_line_exit_2(pile, tmp_path, capsys, argv, says):
    root, truth = pile
    _write(capsys, tmp_path, root, truth, "copy")
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and says in err and err.count("\n") == 1
    assert len(Journal().entries()) == 1  # nothing undone


def test_a_changed_copy_is_kept_and_reported_exit_1(pile, tmp_path, capsys):
    root, truth = pile
    _write(capsys, tmp_path, root, truth, "copy", n=3)
    changed = sorted((tmp_path / "ds").rglob("*.png"))[0]
    changed.write_bytes(b"the user edited this copy")
    code, out, _ = _run(capsys, "undo")
    assert code == 1 and "2 files removed; 1 left as they are" in out and "changed since it was copied" in out
    assert changed.read_bytes() == b"the user edited this copy"


class _StopAfter(CancelToken):
    """Cancelled once ``n`` files were done (what Ctrl+C or quitting the app does mid-undo)."""

    def __init__(self, n):
        super().__init__()
        self.n, self.seen = n, 0

    @property
    def cancelled(self):
        self.seen += 1
        return self.seen > self.n


def test_a_stopped_undo_keeps_the_rest_undoable(pile, tmp_path, capsys):
    """Before: a Cancel marked the whole operation undone; the files not reached stayed sorted,
    with no way to put them back."""
    root, truth = pile
    files = _write(capsys, tmp_path, root, truth, "move")
    rep = Journal().undo(cancel=_StopAfter(2))
    assert len(rep.restored) == 2 and rep.left == 4 and "4 still to undo" in rep.describe()
    assert sum(os.path.exists(p) for p in files) == 2
    rest = Journal().entries()
    assert len(rest) == 1 and len(rest[0].pairs) == 4 and rest[0].description == "Move 6 files into ds"
    code, out, err = _run(capsys, "undo")
    assert code == 0, err
    assert "4 files put back" in out and all(os.path.exists(p) for p in files)
    assert not (tmp_path / "ds").exists() and Journal().entries() == []


def test_undo_removes_links_after_their_originals_changed(pile, tmp_path, capsys):
    """Before: a link was stamped with its original's size and time, so editing the original image
    (the pile is still the user's photos) made undo keep the link ("changed since it was copied"),
    and a link whose original was moved away counted as "no longer there" and stayed, dangling."""
    root, truth = pile
    files = _write(capsys, tmp_path, root, truth, "link", n=4)
    with open(files[0], "ab") as fh:
        fh.write(b"edited by the user")
    os.rename(files[1], tmp_path / "moved-away.png")
    code, out, err = _run(capsys, "undo")
    assert code == 0, out + err
    assert "4 files removed" in out
    assert not (tmp_path / "ds").exists()


def test_undo_still_removes_links_journaled_with_their_originals_stamps(pile, tmp_path, capsys):
    """A link journaled before links were stamped themselves (its original's stamp) is removed too."""
    root, truth = pile
    _write(capsys, tmp_path, root, truth, "link", n=3)
    entry = Journal().last()
    old = [(os.stat(new).st_size, os.stat(new).st_mtime_ns) for _, new in entry.pairs]
    Journal().undo(entry)  # replaced below by the same operation as an older version journaled it
    for orig, new in entry.pairs:
        os.makedirs(os.path.dirname(new), exist_ok=True)
        os.symlink(orig, new)
    Journal().record("sort", "copy", "Link 3 files into ds", entry.pairs, sorted({os.path.dirname(n) for _, n in entry.pairs}))
    last = Journal().last()
    last.stamps = old
    lines = Journal().path.read_text(encoding="utf-8").splitlines()
    Journal().path.write_text("\n".join(lines[:-1] + [last.to_json()]) + "\n", encoding="utf-8")
    code, out, _ = _run(capsys, "undo")
    assert code == 0 and "3 files removed" in out


def test_a_line_break_in_a_name_never_prints_a_line_of_its_own(pile, tmp_path, capsys):
    """Before: --list and the undo sentence printed a folder named "ds\\nFAKE" (or a skipped file
    so named) as two lines: the escaper escaped ESC but kept the line break between lines."""
    root, truth = pile
    files = sorted(truth)[:2]
    f = tmp_path / "l.csv"
    f.write_text("path,label\n" + "".join(f"{p},{truth[p]}\n" for p in files), encoding="utf-8")
    out_dir = tmp_path / "ds\nFAKE line\x1b[31m"
    code, _, err = _run(capsys, "label", root, "--labels", f, "--write", out_dir)
    assert code == 0, err
    code, table, _ = _run(capsys, "undo", "--list")
    assert code == 0 and len(table.splitlines()) == 2 and "\x1b" not in table
    assert table.splitlines()[1].endswith("Copy 2 files into ds\\nFAKE line\\x1b[31m")
    written = sorted(out_dir.rglob("*.png"))[0]
    written.write_bytes(b"changed")
    code, out, _ = _run(capsys, "undo")
    assert code == 1 and len(out.splitlines()) == 1 and "\x1b" not in out
    assert "ds\\nFAKE line" in out


@pytest.mark.parametrize("mode", ["copy", "link"])
def test_undo_of_a_forced_write_takes_its_marker_out_of_the_users_folder(pile, tmp_path, capsys, mode):
    """Before: `--write ~/Pictures --force` then `cnndesk undo` left `.cnndesk-sorted` in the user's
    folder: its own photos were then left out of every later run on the folder above it."""
    from label_data import make_pile

    root, truth = pile
    home = tmp_path / "home"
    own = make_pile(home / "Pictures", per_class=2, seed=5)  # the user's photos, there before
    files = sorted(truth)[:4]
    f = tmp_path / "l.csv"
    f.write_text("path,label\n" + "".join(f"{p},{truth[p]}\n" for p in files), encoding="utf-8")
    code, _, err = _run(capsys, "label", root, "--labels", f, "--write", home / "Pictures", "--force", "--mode", mode)
    assert code == 0, err
    code, out, err = _run(capsys, "undo")
    assert code == 0, err
    assert sorted(os.listdir(home / "Pictures")) == sorted(os.path.basename(p) for p in own)
    code, out, err = _run(capsys, "label", home, "--ask", "1", "-f", "json")
    assert code == 0 and "left out" not in err


def test_undo_keeps_the_marker_while_another_write_is_still_there(pile, tmp_path, capsys):
    root, truth = pile
    first = _write(capsys, tmp_path, root, truth, "copy", n=3)
    f = tmp_path / "more.csv"
    more = sorted(truth)[3:6]
    f.write_text("path,label\n" + "".join(f"{p},{truth[p]}\n" for p in more), encoding="utf-8")
    code, _, err = _run(capsys, "label", root, "--labels", f, "--write", tmp_path / "ds", "--force")
    assert code == 0, err
    older = Journal().entries()[0]
    assert len(older.pairs) == len(first)
    code, out, err = _run(capsys, "undo", older.id)
    assert code == 0, err
    assert (tmp_path / "ds" / ".cnndesk-sorted").exists()  # the second write's copies are still there
    code, out, err = _run(capsys, "undo")
    assert code == 0 and not (tmp_path / "ds").exists()


def test_the_labels_file_carries_on_after_a_move_write(pile, tmp_path, capsys):
    """A user labels some images, writes them out with --mode move, then runs the same labels file
    again to carry on with the rest. Before, every moved row stopped the run ("line 2: … is not an
    image in DIR", exit 2). Now the rows cnndesk itself moved away are left out with a note; a path
    that was never there is still an error; after undo the rows count again."""
    root, truth = pile
    files = sorted(truth)
    rows = files[:10]
    f = tmp_path / "mine.csv"
    f.write_text("path,label\n" + "".join(f"{os.path.relpath(p, root)},{truth[p]}\n" for p in rows), encoding="utf-8")
    code, out, err = _run(capsys, "label", root, "--labels", f, "--write", tmp_path / "ds", "--mode", "move")
    assert code == 0, err
    assert not any(os.path.exists(p) for p in rows)
    code, out, err = _run(capsys, "label", root, "--labels", f, "--ask", 3, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["labelled"] == 0 and len(data["ask"]) == 3  # the ten are in ds/ now, not in the pile
    assert "10 labelled images moved out by an earlier write; left out (cnndesk undo puts them back)" in err
    typo = tmp_path / "typo.csv"
    typo.write_text(f.read_text(encoding="utf-8") + "no_such_image.png,disc\n", encoding="utf-8")
    code, out, err = _run(capsys, "label", root, "--labels", typo, "--ask", 3)
    assert code == 2 and "no_such_image.png is not an image in" in err  # a wrong path is still an error
    code, out, err = _run(capsys, "undo")
    assert code == 0, err
    code, out, err = _run(capsys, "label", root, "--labels", f, "--ask", 3, "--format", "json")
    assert code == 0 and json.loads(out)["labelled"] == 10 and "moved out" not in err
