"""``cnndesk label``: JSON shapes, table output, bad input as one line with the documented exit
codes. The embeddings are the fast stand-in (the session's default embedder is swapped)."""

from __future__ import annotations

import json
import os

import pytest
from label_data import fake_embed

from cnndesk.cli import main


@pytest.fixture(autouse=True)
def fast_embeddings(monkeypatch):
    import cnndesk.core.labelling.session as session_mod

    monkeypatch.setattr(session_mod, "default_embedder", fake_embed)


def _run(capsys, *argv):
    code = main(["label", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _labels(path, rows):
    path.write_text("path,label\n" + "".join(f"{p},{c}\n" for p, c in rows), encoding="utf-8")
    return path


def test_ask_json_cold_start(pile, capsys):
    root, truth = pile
    code, out, err = _run(capsys, root, "--ask", 4, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"ask", "labelled", "classes"}
    assert data["labelled"] == 0 and data["classes"] == []
    assert len(data["ask"]) == 4 and all(set(r) == {"path", "reason"} for r in data["ask"])
    assert all(not os.path.isabs(r["path"]) and (root / r["path"]).exists() for r in data["ask"])
    assert {truth[str((root / r["path"]).resolve())] for r in data["ask"]} == {"disc", "bar", "ring", "cross"}


def test_ask_with_labels_and_suggest_json(pile, tmp_path, capsys):
    root, truth = pile
    files = sorted(truth)
    rows = [(os.path.relpath(p, root), truth[p]) for p in files[::2]]
    f = _labels(tmp_path / "l.csv", rows + [(os.path.relpath(files[1], root), "")])
    code, out, _ = _run(capsys, root, "--labels", f, "--ask", 3, "-f", "json")
    data = json.loads(out)
    assert code == 0 and data["labelled"] == 16 and sorted(data["classes"]) == ["bar", "cross", "disc", "ring"]
    answered = {r[0] for r in rows} | {os.path.relpath(files[1], root)}
    assert not answered & {r["path"] for r in data["ask"]}
    code, out, _ = _run(capsys, root, "--labels", f, "--suggest", "--format", "json")
    data = json.loads(out)
    assert code == 0 and set(data) == {"suggestions", "calibrated", "estimated_accuracy"}
    assert isinstance(data["calibrated"], bool)
    assert data["estimated_accuracy"] is None or 0 <= data["estimated_accuracy"] <= 1
    paths = [r["path"] for r in data["suggestions"]]
    assert len(paths) == 32 - 16 and os.path.relpath(files[1], root) in paths  # skipped: still suggested
    assert all(set(r) == {"path", "label", "score", "unknown"} for r in data["suggestions"])
    right = sum(r["label"] == truth[str((root / r["path"]).resolve())] for r in data["suggestions"])
    assert right / len(paths) >= 0.9


def test_table_output(pile, capsys):
    root, _ = pile
    code, out, _ = _run(capsys, root, "--ask", 2)
    assert code == 0 and "Label these next:" in out and "0 labelled" in out
    code, out, _ = _run(capsys, root, "--suggest")
    assert code == 0 and "not calibrated" in out


def test_write_json_refuses_non_empty_and_copies(pile, tmp_path, capsys):
    root, truth = pile
    files = sorted(truth)[:6]
    f = _labels(tmp_path / "l.csv", [(p, truth[p]) for p in files])
    out_dir = tmp_path / "ds"
    code, out, err = _run(capsys, root, "--labels", f, "--write", out_dir, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["written"] == 6 and data["mode"] == "copy" and sum(data["counts"].values()) == 6
    assert len(list(out_dir.rglob("*.png"))) == 6 and all(os.path.exists(p) for p in files)
    code, out, err = _run(capsys, root, "--labels", f, "--write", out_dir)
    assert code == 2 and out == "" and "--force" in err and err.count("\n") == 1
    code, out, err = _run(capsys, root, "--labels", f, "--write", out_dir, "--force", "--mode", "link", "-f", "json")
    assert code == 0 and json.loads(out)["mode"] == "link"


@pytest.mark.parametrize("case", ["missing_dir", "empty_dir", "unreadable", "bad_path", "bad_label", "no_file",
                                  "mode_without_write", "no_action", "two_actions", "ask_zero", "train_one_class",
                                  "train_one_image", "train_no_folder", "train_mode_with_force",
                                  "train_mode_without_train"])
def test_bad_input_one_line_and_exit_code(tmp_path, pile, capsys, case):
    root, truth = pile
    first = os.path.basename(sorted(truth)[0])
    argv = {
        "missing_dir": [tmp_path / "nope", "--ask", 3],
        "empty_dir": [tmp_path / "e", "--ask", 3],
        "unreadable": [tmp_path / "u", "--suggest"],
        "bad_path": [root, "--labels", _labels(tmp_path / "a.csv", [("ghost.png", "x")]), "--ask", 2],
        "bad_label": [root, "--labels", _labels(tmp_path / "b.csv", [(first, "a:b")]), "--ask", 2],
        "no_file": [root, "--labels", tmp_path / "none.csv", "--suggest"],
        "mode_without_write": [root, "--ask", 2, "--mode", "move"],
        "no_action": [root],
        "two_actions": [root, "--ask", 2, "--suggest"],
        "ask_zero": [root, "--ask", 0],
        "train_one_class": [root, "--labels", _labels(tmp_path / "c.csv", [(first, "disc")]), "--train", tmp_path / "m"],
        "train_one_image": [root, "--labels", _labels(tmp_path / "d.csv", [(p, truth[p]) for p in sorted(truth)[:8]]
                                                      + [(sorted(truth)[-1], "other")]), "--train", tmp_path / "m"],
        "train_no_folder": [root, "--labels", tmp_path / "l.csv", "--train", tmp_path / "nope" / "m"],
        "train_mode_with_force": [root, "--ask", 2, "--force"],
        "train_mode_without_train": [root, "--ask", 2, "--train-mode", "full"],
    }[case]
    (tmp_path / "e").mkdir()
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "x.jpg").write_bytes(b"junk")
    if case in ("no_action", "two_actions", "ask_zero"):  # argparse: usage line, exit 2
        with pytest.raises(SystemExit) as info:
            _run(capsys, *argv)
        assert info.value.code == 2
        return
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("cnndesk label: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    if case == "unreadable":  # which file and why ("none of the 1 image files ... can be read" said neither)
        assert "x.jpg (" in err, err


def test_train_from_the_labels_file_without_a_dataset_folder(pile, tmp_path, capsys):
    """--train: a normal quick model file straight from the labels; an existing file needs --force."""
    from cnndesk.core.models.files import read_model_file_metadata

    root, truth = pile
    rows = [(p, truth[p]) for p in sorted(truth) if truth[p] in ("disc", "bar")][:10]
    f = _labels(tmp_path / "l.csv", rows)
    code, out, err = _run(capsys, root, "--labels", f, "--train", tmp_path / "mine", "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == str(tmp_path / "mine.safetensors") and data["mode"] == "quick"
    assert data["classes"] == ["bar", "disc"] and sum(data["counts"].values()) == 10
    info = read_model_file_metadata(data["model"])
    assert info["kind"] == "head" and info.get("novelty2") and info["temperature"] > 0  # the detector (novelty2: outlier term)
    assert not list(tmp_path.glob("*/bar")), "no dataset folder written"
    code, out, err = _run(capsys, root, "--labels", f, "--train", tmp_path / "mine")
    assert code == 2 and out == "" and "--force" in err and err.count("\n") == 1
    code, out, _ = _run(capsys, root, "--labels", f, "--train", tmp_path / "mine", "--force")
    assert code == 0 and "Classify with it: cnndesk classify" in out


def test_terminal_text_is_escaped(tmp_path, capsys):
    from label_data import make_pile

    root = tmp_path / "p"
    truth = make_pile(root, per_class=3)
    evil = root / "evil\x1b[31mname.png"
    os.rename(sorted(truth)[0], evil)
    code, out, _ = _run(capsys, root, "--suggest")
    assert code == 0 and "\x1b" not in out and "\\x1b" in out


def test_unreadable_files_are_named_and_an_empty_ask_says_so(pile, tmp_path, capsys):
    """The CLI never said which files of the folder it left out (the app did), and an --ask with
    nothing left printed a bare "Label these next:" header."""
    root, truth = pile
    (root / "notes.jpg").write_text("not an image")
    code, out, err = _run(capsys, root, "--ask", 2, "-f", "json")
    assert code == 0 and json.loads(out)["ask"], "stdout stays the JSON"
    assert "1 file cannot be read and is left out: notes.jpg (" in err
    f = _labels(tmp_path / "all.csv", [(os.path.relpath(p, root), c) for p, c in truth.items()])
    code, out, err = _run(capsys, root, "--labels", f, "--ask", 3)
    assert code == 0 and "nothing: every readable image is answered" in out


def test_suggest_table_keeps_its_columns_with_wide_class_names():
    """A class named 圆形 (two characters, four columns) pushed its row's file name two columns
    right of the others; an emoji joined by a zero-width joiner counted twice (new-user round)."""
    from cnndesk.cli.label import cells, format_table

    rows = [{"path": f"img{i}.png", "label": c, "score": 0.9, "unknown": False}
            for i, c in enumerate(["circle", "\u5706\u5f62", "\U0001f469\u200d\U0001f4bb coder", "\u2764\ufe0f heart"])]
    text = format_table({"suggestions": rows, "calibrated": True, "estimated_accuracy": None})
    starts = {cells(line[: line.index("img")]) for line in text.splitlines()[1:]}
    assert starts == {31}, text  # "  " + score (5) + "  " + 20 + "  "
    assert cells("e\u0301") == 1


def test_a_name_that_is_not_utf8_goes_from_the_json_back_into_a_labels_file(pile, tmp_path, capsys):
    """A photo whose name is not UTF-8 (an old camera card, a Windows-1252 archive) is named in the
    JSON as the \\xNN text ``--labels`` reads: a script takes the path from ``--ask``/``--suggest``
    and writes it back as a label. Before, the JSON held a lone surrogate ("\\udcff"), which a UTF-8
    labels file cannot hold (UnicodeEncodeError), so the image could never be labelled by script."""
    import shutil

    root, truth = pile
    src = sorted(truth)[0]
    odd = os.fsencode(root) + b"/caf\xe9-" + os.fsencode(os.path.basename(src))
    shutil.copy(src, odd)
    label = truth[src]
    rows = [(os.path.relpath(p, root), truth[p]) for p in sorted(truth)[1::2]]
    f = _labels(tmp_path / "l.csv", rows)
    code, out, err = _run(capsys, root, "--labels", f, "--suggest", "--format", "json")
    assert code == 0, err
    paths = [r["path"] for r in json.loads(out)["suggestions"]]
    named = [p for p in paths if p.startswith("caf")]
    assert named == ["caf\\xe9-" + os.path.basename(src)]  # text, not a surrogate
    named[0].encode("utf-8")  # a UTF-8 labels file can hold it
    f2 = _labels(tmp_path / "l2.csv", rows + [(named[0], label)])
    code, out, err = _run(capsys, root, "--labels", f2, "--ask", 2, "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["labelled"] == len(rows) + 1, err
    assert all(not r["path"].startswith("caf") for r in data["ask"])  # answered: never asked again
