"""The code stays in files a reader can hold in mind: no ``.py`` file under cnndesk/ over 500 lines
(the developers' guide; a feature that grows a module goes into a new module)."""

from __future__ import annotations

from pathlib import Path

import cnndesk

MAX_LINES = 500
ROOT = Path(cnndesk.__file__).resolve().parent


def test_no_python_file_under_cnndesk_is_over_500_lines():
    sizes = {p.relative_to(ROOT.parent).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in sorted(ROOT.rglob("*.py"))}
    assert len(sizes) > 50 and "cnndesk/cli/__init__.py" in sizes  # it looked at the real tree
    over = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert not over, "over 500 lines: " + ", ".join(f"{p} ({n})" for p, n in sorted(over.items(), key=lambda x: -x[1]))
