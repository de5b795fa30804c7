"""Text from outside (labels, file and folder names, messages) is shown as text, never acted on:
the CLI prints only through its one escaper (``cli.common.say`` / ``say_json``, built on
``safeio.display``), and every Qt label that can show such text is plain text (a QLabel's default,
AutoText, renders anything that looks like HTML — an injected ``<img src=...>`` showed a local
image in the video legend). Source scans, so the next command or widget cannot repeat the mistake."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "cnndesk"
# static rich text written by the app itself, never model or user text
RICH_TEXT_ALLOWED = {("cnndesk/qt/dialogs/about.py", "*"), ("cnndesk/qt/dialogs/help.py", "*")}


def _calls(tree):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def test_cli_commands_print_only_through_the_escaper():
    bad = []
    for path in sorted((ROOT / "cli").glob("*.py")):
        if path.name == "common.py":  # say(), say_json() and the progress lines (escaped there)
            continue
        for call in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            name = _dotted(call.func)
            if name == "print" or name in ("sys.stdout.write", "sys.stderr.write"):
                bad.append(f"{path.name}:{call.lineno} {name}")
    assert not bad, "print through cli.common.say()/say_json(), not: " + ", ".join(bad)


def test_say_escapes_control_characters_and_keeps_line_breaks(capsys):
    from cnndesk.cli.common import fail, say, say_json

    say("a\x1b[2Jb\rc\u202ed\nsecond line")
    fail("merge: \x1b]0;title\x07 part", 1)
    say_json({"label": "x\x9b31m\u202e"})
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\r" not in out and "\u202e" not in out and "\x9b" not in out and "\x07" not in err
    assert out.splitlines()[1] == "second line" and "\\x1b[2J" in out
    import json

    assert json.loads(out.splitlines()[2])["label"] == "x\x9b31m\u202e"  # the same value, escaped


def _label_targets(tree):
    """{"self.info": (lineno, first argument)} for every ``X = QLabel(...)`` (tuples included)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple | ast.Call):
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            targets = node.targets[0].elts if isinstance(node.targets[0], ast.Tuple) else node.targets
            for t, v in zip(targets, values, strict=False):
                if isinstance(v, ast.Call) and _dotted(v.func) == "QLabel":
                    out[_dotted(t)] = (node.lineno, v.args[0] if v.args else None)
    return out


def test_every_qt_label_that_shows_changing_text_is_plain_text():
    bad = []
    for path in sorted((ROOT / "qt").rglob("*.py")):
        rel = path.relative_to(ROOT.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = _calls(tree)
        for call in calls:
            if (_dotted(call.func).endswith(".setTextFormat") and call.args
                    and _dotted(call.args[0]).endswith("RichText") and (rel, "*") not in RICH_TEXT_ALLOWED):
                bad.append(f"{rel}:{call.lineno} sets RichText")
        for target, (line, first) in _label_targets(tree).items():
            dynamic = first is not None and not isinstance(first, ast.Constant)
            dynamic |= any(_dotted(c.func) == f"{target}.setText" and c.args and not isinstance(c.args[0], ast.Constant)
                           for c in calls)
            plain = any(_dotted(c.func) == f"{target}.setTextFormat" and c.args
                        and _dotted(c.args[0]).endswith("PlainText") for c in calls)
            if dynamic and not plain and (rel, "*") not in RICH_TEXT_ALLOWED:
                bad.append(f"{rel}:{line} {target}")
    assert not bad, "QLabels showing changing text must setTextFormat(Qt.TextFormat.PlainText): " + ", ".join(bad)


def test_predict_py_prints_through_the_vendored_escaper():
    """The bundle's predict.py writes names, labels and errors through ``display`` (its vendored
    copy of the app's escaper); tests/core/test_bundle_manifest_validation.py runs it on hostile labels."""
    tree = ast.parse((ROOT / "export_kit" / "predict.py").read_text(encoding="utf-8"))
    writes = [c for c in _calls(tree) if _dotted(c.func) == "out.write"]
    assert writes
    for call in writes:
        text = ast.unparse(call)
        for field in ("row['path']", "row['error']", "p['label']"):
            assert field not in text or f"display({field}" in text, text
