"""``cnndesk export --force`` replaces only a cnndesk bundle (its model.json says so, nothing else
in it), moving the old one aside atomically first; a folder of the user's own files survives with
a clear refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cnndesk.core.export.bundle import check_bundle_out
from cnndesk.core.export.formats import ExportError
from cnndesk.core.export.replace import replace_bundle
from tests.core.tiny_bundle import make_bundle


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "cnndesk", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "CNNDESK_OFFLINE": "1"})


def test_export_force_keeps_a_folder_of_user_files(tmp_path):
    mine = tmp_path / "out"
    mine.mkdir()
    (mine / "mydata.txt").write_text("years of work")
    out = _cli("export", "efficientnet-lite0", "--format", "onnx", "--out", mine, "--force")
    assert out.returncode == 2, out.stderr
    err = out.stderr.strip()
    assert "not a cnndesk export bundle" in err and "refusing to replace it" in err and len(err.splitlines()) == 1
    assert "Traceback" not in out.stderr
    assert (mine / "mydata.txt").read_text() == "years of work" and os.listdir(tmp_path) == ["out"]


def test_a_bundle_with_user_files_added_or_a_forged_model_json_is_refused(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    check_bundle_out(bundle, overwrite=True)  # a real bundle may be replaced
    (bundle / "mydata.txt").write_text("mine")
    with pytest.raises(ExportError, match=r"holds files that are not part of a cnndesk bundle \(mydata.txt\)"):
        check_bundle_out(bundle, overwrite=True)
    other = tmp_path / "o"
    other.mkdir()
    (other / "model.json").write_text(json.dumps({"name": "not a bundle"}))
    with pytest.raises(ExportError, match="no cnndesk model.json"):
        check_bundle_out(other, overwrite=True)
    with pytest.raises(ExportError, match="already exists"):
        check_bundle_out(bundle, overwrite=False)
    link = tmp_path / "link"
    os.symlink(make_bundle(tmp_path / "real"), link)
    with pytest.raises(ExportError):
        check_bundle_out(link, overwrite=True)


def test_replacing_a_bundle_moves_the_old_one_aside_then_removes_it(tmp_path):
    old = make_bundle(tmp_path / "b")
    (old / "parity.json").write_text('{"old": true}')
    new = make_bundle(tmp_path / ".new")
    (new / "parity.json").write_text('{"new": true}')
    replace_bundle(new, old)
    assert json.loads((old / "parity.json").read_text()) == {"new": True}
    assert sorted(os.listdir(tmp_path)) == ["b"]  # no old copy, no temp folder left


def test_a_failed_replace_puts_the_old_bundle_back(tmp_path):
    old = make_bundle(tmp_path / "b")
    (old / "parity.json").write_text('{"old": true}')
    with pytest.raises(ExportError):
        replace_bundle(tmp_path / "missing-new", old)
    assert json.loads((old / "parity.json").read_text()) == {"old": True}
    assert sorted(os.listdir(tmp_path)) == ["b"]


def test_a_folder_that_turned_into_user_data_meanwhile_is_not_replaced(tmp_path):
    old = make_bundle(tmp_path / "b")
    (old / "model.json").unlink()
    (old / "notes.txt").write_text("mine")
    new = make_bundle(tmp_path / ".new")
    with pytest.raises(ExportError):
        replace_bundle(new, old)
    assert (old / "notes.txt").read_text() == "mine"
