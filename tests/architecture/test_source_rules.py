"""The project's structural rules, checked on the source of ``cnndesk/``: one mover (no
``shutil.move``), one writer (no ``open(..., "w")``-style writes, ``write_text``/``write_bytes`` or
library writes to a path outside ``cnndesk.core.common.safeio``), one image opener (no ``Image.open``
outside ``cnndesk.core.images``). Every exception is listed here with its reason; a listed
exception that no longer occurs fails too, so the list stays exact."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "cnndesk"

# (file, rule, text of the call as written) -> why it is allowed
ALLOWED = {
    ("cnndesk/core/images/load.py", "Image.open", "Image.open(fp, formats=formats)"):
        "the one opener itself, restricted to ALLOWED_FORMATS",
    ("cnndesk/cli/__init__.py", "open-for-writing", "open(os.devnull, 'w')"):
        "silences stdout onto /dev/null; writes no file",
    ("cnndesk/cli/train.py", "open-for-writing", "open(os.devnull, 'w')"):
        "silences stdout/stderr onto /dev/null; writes no file",
    ("cnndesk/core/organize/journal.py", "open-for-writing", "open(self.path, 'a', encoding='utf-8')"):
        "appends one line to the app's own journal in its data folder (O_APPEND; a torn last line is skipped on read)",
    ("cnndesk/core/predict/clips.py", "open-for-writing", "av.open(tmp.fh, 'w', format='mp4')"):
        "encodes into a safeio.PendingFile's file object (exclusive temp, committed by the safe writer)",
    ("cnndesk/core/predict/embeddings.py", "open-for-writing", "zf.open('keys.npy', 'w', force_zip64=True)"):
        "a member of the zip the embedding cache streams into atomic_write's temp file (committed by the safe writer)",
    ("cnndesk/core/predict/embeddings.py", "open-for-writing", "zf.open('vectors.npy', 'w', force_zip64=True)"):
        "a member of the zip the embedding cache streams into atomic_write's temp file (committed by the safe writer)",
    ("cnndesk/core/export/bundle.py", "write_text", "(tmp / 'model.json').write_text(json.dumps(info, indent=2, ensure_ascii=False) + '\\n', encoding='utf-8')"):
        "inside the bundle's own fresh mkdtemp folder, published by one rename",
    ("cnndesk/core/export/bundle.py", "write_text", "(tmp / 'README.md').write_text(_readme(spec, form, info), encoding='utf-8')"):
        "inside the bundle's own fresh mkdtemp folder, published by one rename",
    ("cnndesk/core/export/bundle.py", "write_text", "(tmp / 'parity.json').write_text(json.dumps(checked, indent=2) + '\\n', encoding='utf-8')"):
        "inside the bundle's own fresh mkdtemp folder, published by one rename",
    ("cnndesk/core/export/bundle.py", "write_text", "init.write_text(f'__version__ = \"{__version__}\"\\n' if pkg == dest / 'cnndesk' else '')"):
        "the vendored package's __init__.py inside the bundle's fresh mkdtemp folder",
}
SAFE_WRITER_MODULES = {"cnndesk/core/common/safeio.py"}  # the one writer and mover
WRITE_MODES = set("wax+")


def _mode(call: ast.Call) -> str | None:
    for kw in call.keywords:
        if kw.arg == "mode" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            return kw.value.value
    if len(call.args) >= 2 and isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, str):
        return call.args[1].value
    return None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def violations() -> list[tuple[str, str, str, int]]:
    found = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("shutil", "PIL.Image"):
                for alias in node.names:
                    if (node.module, alias.name) in (("shutil", "move"), ("PIL.Image", "open")):
                        found.append((rel, "import", f"from {node.module} import {alias.name}", node.lineno))
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            text = ast.unparse(node)
            if name == "shutil.move":
                found.append((rel, "shutil.move", text, node.lineno))
            elif name.endswith("Image.open"):
                found.append((rel, "Image.open", text, node.lineno))
            elif rel in SAFE_WRITER_MODULES:
                continue
            elif (name == "open" or name.endswith(".open")) and name not in ("os.open", "os.fdopen"):
                mode = _mode(node)
                if mode and WRITE_MODES & set(mode):
                    found.append((rel, "open-for-writing", text, node.lineno))
            elif isinstance(node.func, ast.Attribute) and node.func.attr in ("write_text", "write_bytes"):
                found.append((rel, node.func.attr, text, node.lineno))
    return found


def test_no_move_write_or_image_open_outside_the_one_place():
    bad = [f"{rel}:{line}: {rule}: {text}" for rel, rule, text, line in violations()
           if (rel, rule, text) not in ALLOWED]
    assert not bad, ("use cnndesk.core.common.safeio (safe_write, move_file/move_into) and cnndesk.core.images "
                     "(load_image, open_image) instead:\n" + "\n".join(bad))


def test_every_listed_exception_still_exists():
    seen = {(rel, rule, text) for rel, rule, text, _ in violations()}
    stale = [k for k in ALLOWED if k not in seen]
    assert not stale, f"remove these from ALLOWED (no longer in the source): {stale}"


def test_the_scan_catches_what_it_should(tmp_path, monkeypatch):
    src = tmp_path / "cnndesk" / "m.py"
    src.parent.mkdir()
    src.write_text(
        "import shutil\nfrom PIL import Image\nfrom pathlib import Path\n"
        "shutil.move('a', 'b')\nImage.open('x.jpg')\nopen('f', 'wb')\nopen('g', mode='a')\n"
        "Path('h').write_text('x')\nopen('r')\nopen('r', 'rb')\n", encoding="utf-8")
    me = sys.modules[__name__]
    monkeypatch.setattr(me, "ROOT", tmp_path)
    monkeypatch.setattr(me, "PKG", tmp_path / "cnndesk")
    rules = sorted(rule for _, rule, _, _ in violations())
    assert rules == ["Image.open", "open-for-writing", "open-for-writing", "shutil.move", "write_text"]
