"""`cnndesk export` in the full PyInstaller bundle. Found on 8 Dec 2026 in a built full bundle:
every format failed with "export failed: FileNotFoundError: …/_internal/cnndesk/core/common/
safeio.py" — an export bundle gets verbatim copies of the app's loader modules and
export_kit/predict.py, read as files, and a frozen app had none; and the parity check ran
`sys.executable predict.py`, which in a frozen app is cnndesk itself, not a Python. The full
spec now collects cnndesk's sources and predict.py, and the frozen entry point runs a script
given after --run-bundle-script."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "packaging" / "cnndesk_main.py"


def test_the_frozen_entry_point_runs_a_script_like_python(tmp_path):
    script = tmp_path / "predict.py"
    script.write_text("import json, sys\nprint(json.dumps([sys.argv, 'cnndesk' in sys.modules]))\nsys.exit(3)\n")
    r = subprocess.run([sys.executable, str(MAIN), "--run-bundle-script", str(script), "--top-k", "5", "a.jpg"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 3, r.stderr
    argv, app_loaded = ast.literal_eval(r.stdout.replace("false", "False").replace("true", "True"))
    assert argv == [str(script), "--top-k", "5", "a.jpg"]
    assert app_loaded is False  # predict.py loads its own vendored copy of the loader


def test_the_parity_check_runs_predict_through_the_frozen_app(monkeypatch, tmp_path):
    from cnndesk.core.export import bundle_check
    from cnndesk.core.export.formats import FORMATS

    ran = []

    class Stop(Exception):
        pass

    def fake_run(cmd, **kwargs):
        ran.append(cmd)
        raise Stop

    monkeypatch.setattr(bundle_check.subprocess, "run", fake_run)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    with pytest.raises(Stop):
        bundle_check.parity(None, tmp_path, FORMATS["onnx"], ["x.jpg"], "validation images", 5, None)
    assert ran[0][:3] == [sys.executable, "--run-bundle-script", str(tmp_path / "predict.py")]
    assert "--run-bundle-script" in MAIN.read_text(encoding="utf-8")


def test_the_full_spec_collects_what_an_export_bundle_copies():
    spec = (ROOT / "packaging" / "cnndesk.spec").read_text(encoding="utf-8")
    assert 'collection_mode["cnndesk"] = "pyz+py"' in spec
    assert '"export_kit" / "predict.py"), "cnndesk/export_kit")' in spec
    bundle = (ROOT / "cnndesk" / "core" / "export" / "bundle.py").read_text(encoding="utf-8")
    assert '"export_kit" / "predict.py"' in bundle  # the file the spec puts there
