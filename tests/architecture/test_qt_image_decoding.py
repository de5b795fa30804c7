"""The one image opener holds in the Qt layer too: Qt decodes image files itself (its own image
plug-ins, no decode budget, no format allow-list) when a ``QPixmap``/``QImage``/``QIcon`` is built
from a file name, or through ``QImageReader``/``QMovie``/``addFile``. The app's views get their
pixels from ``cnndesk.core.images`` (``load_image``) and ``qt/imaging``; only cnndesk's own icons
(``resources/icons``) are read by Qt. test_source_rules.py bans ``Image.open`` but not these;
added in the "Label a folder" attack round (the Label workspace shows thumbnails of folders from
anyone: it passed, as does every view today)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "cnndesk"

READERS = {"QImageReader", "QMovie", "QSvgRenderer", "QSvgWidget"}  # decode files by name, whatever they hold
BUILT_FROM_FILE = {"QPixmap", "QImage", "QIcon"}  # decode when given one text argument
DECODING_METHODS = {"addFile", "loadFromData", "fromData"}  # QIcon.addFile, QPixmap.loadFromData, QImage.fromData
ALLOWED = {
    ("cnndesk/qt/main_window.py", "QIcon(str(icon))"): "the app's own icon from resources/icons",
    ("cnndesk/qt/app.py", "icon.addFile(str(p))"): "the app's own icons from resources/icons",
}


def _name(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _texty(arg: ast.AST) -> bool:
    """An argument that is (or names) a file: text, an f-string, str(...), os.fspath(...), a path."""
    if isinstance(arg, ast.Constant):
        return isinstance(arg.value, str)
    if isinstance(arg, ast.JoinedStr):
        return True
    if isinstance(arg, ast.Call):
        return _name(arg.func) in ("str", "fspath", "as_posix")
    word = _name(arg).lower()
    return any(w in word for w in ("path", "file", "name"))


def _built_from_file(node: ast.Call, name: str) -> bool:
    """QPixmap(path), QImage(path, "PNG"), QPixmap(fileName=path)."""
    if name not in BUILT_FROM_FILE:
        return False
    if any(k.arg == "fileName" for k in node.keywords):
        return True
    fmt_only = all(isinstance(a, ast.Constant) and isinstance(a.value, (str, bytes)) for a in node.args[1:])
    return 1 <= len(node.args) <= 3 and _texty(node.args[0]) and fmt_only


def _loads_into_a_picture(node: ast.Call, name: str) -> bool:
    """pixmap.load(path) / image.load(path): a picture's load, not json.load or np.load."""
    if name != "load" or not isinstance(node.func, ast.Attribute):
        return False
    owner = _name(node.func.value).lower()
    return any(w in owner for w in ("pix", "pm", "image", "img", "icon", "picture")) and owner not in ("np", "json")


def violations() -> list[tuple[str, str, int]]:
    found = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            if (name in READERS or name in DECODING_METHODS or _built_from_file(node, name)
                    or _loads_into_a_picture(node, name)):
                found.append((rel, ast.unparse(node), node.lineno))
    return found


def test_qt_never_decodes_an_image_file_itself():
    bad = [f"{rel}:{line}: {text}" for rel, text, line in violations() if (rel, text) not in ALLOWED]
    assert not bad, ("decode images with cnndesk.core.images.load_image (the one opener) and show them "
                     "with cnndesk.qt.imaging, not by file name through Qt:\n" + "\n".join(bad))


def test_every_listed_exception_still_exists():
    seen = {(rel, text) for rel, text, _ in violations()}
    assert not [k for k in ALLOWED if k not in seen]


def test_the_scan_catches_what_it_should(tmp_path, monkeypatch):
    src = tmp_path / "cnndesk" / "m.py"
    src.parent.mkdir()
    src.write_text(
        "QPixmap(path)\nQImage(str(p))\nQIcon('x.png')\nQImageReader(p)\nQMovie(f)\nicon.addFile(str(p))\n"
        "pm.load(path)\nQImage(path, 'PNG')\nQPixmap(fileName=p)\nQSvgRenderer(p)\n"
        "QPixmap(THUMB, THUMB)\nQPixmap(QSize(4, 4))\nQIcon(QPixmap.fromImage(q))\nQImage(data, w, h, s, fmt)\n"
        "json.load(fh)\nnp.load(path)\n",
        encoding="utf-8")
    me = sys.modules[__name__]
    monkeypatch.setattr(me, "ROOT", tmp_path)
    monkeypatch.setattr(me, "PKG", tmp_path / "cnndesk")
    assert [line for _, _, line in violations()] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
