"""Fast checks of the packaging (the PyInstaller build itself runs in `make package`, minutes):
the spec bundles every resource the code loads, and the desktop integration files are sound."""

from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "cnndesk.spec"
STAGED = {"weights", "onnx"}  # made by packaging/build.sh into build/stage


def _resource_roots_used_by_code() -> set[str]:
    used = set()
    for py in (ROOT / "cnndesk").rglob("*.py"):
        tree = ast.parse(py.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "resource_path" and node.args:
                first = node.args[0]
                assert isinstance(first, ast.Constant), f"{py}: resource_path() needs a literal folder name"
                used.add(first.value)
    return used


def test_spec_bundles_every_resource_the_code_loads():
    text = SPEC.read_text()
    listed = set(ast.literal_eval(re.search(r"^RESOURCES = (\[.*?\])", text, re.M).group(1)))
    used = _resource_roots_used_by_code()
    assert used, "no resource_path() calls found"
    for name in used:
        assert name in listed or name in STAGED, f"resources/{name} is loaded by the code but not in the spec"
    for name in STAGED & used:
        assert f'STAGE / "{name}"' in text
    for name in listed:
        assert (ROOT / "resources" / name).exists(), f"the spec lists resources/{name}, which does not exist"
    for sample in ("cat.jpg", "selftest.mp4"):  # what --selftest needs
        assert (ROOT / "resources" / "samples" / sample).is_file()
    assert "torch" in text and 'FLAVOUR == "lite"' in text


def test_desktop_entry_and_icons():
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(ROOT / "resources" / "cnndesk.desktop")
    entry = cp["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Exec"] == "cnndesk %F" and entry["Icon"] == "cnndesk"
    assert "image/jpeg" in entry["MimeType"] and "image/png" in entry["MimeType"]
    for size in (16, 32, 48, 64, 128, 256, 512):
        assert (ROOT / "resources" / "icons" / f"cnndesk-{size}.png").is_file()
    assert (ROOT / "resources" / "icons" / "cnndesk.ico").is_file()


def test_features_needing_torch_say_so_in_the_lite_build(tmp_path, samples):
    """Simulates the lite build (no torch importable): clear messages, no tracebacks."""
    import os
    import subprocess
    import sys

    blocker = tmp_path / "notorch"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    out = subprocess.run([sys.executable, "-m", "cnndesk", "explain", str(samples["cat"]), "--out", str(tmp_path / "x.png")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 3 and "needs the full version" in out.stderr and "--method occlusion" in out.stderr
    assert "Traceback" not in out.stderr
