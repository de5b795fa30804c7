"""Ctrl+C during ``cnndesk label --write``: what was written stays undoable, and the command says
so. Before, the SIGINT was a KeyboardInterrupt wherever the main thread was: landing while the
journal entry was being written (removing the emptied source folders of a move), it left every
file moved and nothing to undo them ("Nothing to undo."), and a stop mid-write printed only
"cnndesk: interrupted"."""

from __future__ import annotations

import json
import os
import signal

import pytest
from label_data import fake_embed

import cnndesk.core.organize.journal as journal_mod
import cnndesk.core.organize.sorting as sorting_mod
from cnndesk.cli import main
from cnndesk.core.organize.journal import Journal


@pytest.fixture(autouse=True)
def fast_embeddings(monkeypatch, isolated_dirs):  # isolated_dirs: a journal of this test's own
    import cnndesk.core.labelling.session as session_mod

    monkeypatch.setattr(session_mod, "default_embedder", fake_embed)


def _ctrl_c(sig=signal.SIGINT):
    os.kill(os.getpid(), sig)


def _labels(tmp_path, truth, files):
    f = tmp_path / "l.csv"
    f.write_text("path,label\n" + "".join(f"{p},{truth[p]}\n" for p in files), encoding="utf-8")
    return f


def test_ctrl_c_while_the_move_is_journaled_keeps_it_undoable(tmp_path, capsys, monkeypatch):
    from label_data import make_pile

    root = tmp_path / "pile"
    truth = make_pile(root, per_class=3, subfolders=True)  # date-like subfolders the move empties
    files = sorted(truth)
    real = journal_mod.remove_emptied_dirs

    def interrupted(dirs, roots):
        _ctrl_c()
        return real(dirs, roots)

    monkeypatch.setattr(journal_mod, "remove_emptied_dirs", interrupted)
    code = main(["label", str(root), "--labels", str(_labels(tmp_path, truth, files)),
                 "--write", str(tmp_path / "ds"), "--mode", "move", "-f", "json"])
    out = capsys.readouterr().out
    assert code == 0 and json.loads(out)["written"] == len(files)  # every file was moved before the Ctrl+C
    entry = Journal().last()
    assert entry is not None and len(entry.pairs) == len(files)
    assert main(["undo"]) == 0
    assert all(os.path.exists(p) for p in files)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_ctrl_c_mid_write_reports_what_was_written_and_how_to_undo(pile, tmp_path, capsys, monkeypatch, sig):
    """SIGTERM (kill) and SIGHUP (the terminal closed) too: before, they ended the process mid-write
    with the files so far moved and no journal entry (a following `cnndesk undo` undid an older,
    unrelated operation instead)."""
    if not hasattr(signal, sig):
        pytest.skip(f"no {sig} here")
    root, truth = pile
    files = sorted(truth)[:8]
    real, calls = sorting_mod.move_into, []

    def move_into(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            _ctrl_c(getattr(signal, sig))
        return real(*a, **k)

    def killed(*_):  # what the default action would do, without ending pytest
        raise SystemExit(f"killed by {sig}")

    monkeypatch.setattr(sorting_mod, "move_into", move_into)
    before = {s: signal.signal(getattr(signal, s), killed) for s in ("SIGTERM", "SIGHUP") if hasattr(signal, s)}
    try:
        code = main(["label", str(root), "--labels", str(_labels(tmp_path, truth, files)),
                     "--write", str(tmp_path / "ds"), "--mode", "move", "-f", "json"])
    finally:
        for s, old in before.items():
            signal.signal(getattr(signal, s), old)
    cap = capsys.readouterr()
    assert code == 130
    data = json.loads(cap.out)  # what was done, as JSON, before the interrupted line
    entry = Journal().last()
    assert data["written"] == 3 and data["undo"] == entry.id and len(entry.pairs) == 3
    assert f"interrupted after 3 of 8 images; `cnndesk undo {entry.id}` puts them back" in cap.err
    assert sum(not os.path.exists(p) for p in files) == 3
    assert main(["undo", entry.id]) == 0
    assert all(os.path.exists(p) for p in files)
