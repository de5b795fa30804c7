"""The lite bundle's command line refuses what needs PyTorch with one line that says so, before
doing any work. Found on 8 Dec 2026 in the built lite bundle: `cnndesk export QUICK_MODEL --out
DIR` got as far as copying the app's source files into the bundle folder and failed with
"export failed: FileNotFoundError: …/_internal/cnndesk/core/common/safeio.py" (a frozen app has
no .py files), while the app's Manage Models dialog disables Export in lite ("needs the full
version") and docs/packaging.md says export is full-only."""

from __future__ import annotations

import pytest

from cnndesk.cli import main
from cnndesk.core.common import system


@pytest.fixture
def lite(monkeypatch):
    monkeypatch.setattr(system, "has_torch", lambda: False)


@pytest.mark.parametrize("fmt", ["onnx", "onnx-int8", "torchscript"])
def test_export_in_lite_says_it_needs_the_full_version(lite, tmp_path, capsys, monkeypatch, fmt):
    """Refused before the exporter starts: in the bundle a quick-trained model loads (its network
    is the bundled features export), so nothing stops the exporter until it reads source files."""
    from cnndesk.core.export import bundle

    started = []
    monkeypatch.setattr(bundle, "export_bundle", lambda *a, **k: started.append(a) or pytest.fail("exporter ran"))
    out = tmp_path / "bundle"
    code = main(["export", "efficientnet-lite0", "--format", fmt, "--out", str(out)])
    err = capsys.readouterr().err
    assert not started
    assert code == 3, err
    assert "cnndesk: exporting needs the full version of cnndesk" in err
    assert "Traceback" not in err and not out.exists()
