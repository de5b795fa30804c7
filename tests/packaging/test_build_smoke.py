"""packaging/build.py's smoke check of the frozen app: the commands whose imports are lazy
(`doctor`, `label`, `undo`) run once after the self-test, and the build fails when one of them
fails or quietly falls back. Checked here with stand-in apps (the real build takes minutes; on
8 Dec 2026 the built lite bundle gave "onnx-multi", 3 asks, 0 operations, and "onnx" with the
`onnx` package taken out of it, as the lite bundle built that morning had)."""

from __future__ import annotations

import sys
from pathlib import Path

import packaging_scripts
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build():
    return packaging_scripts.load("build")


def stand_in(tmp_path: Path, embeddings: str, asks: int = 3, label_exit: int = 0) -> Path:
    """An executable that answers the three smoke commands as cnndesk's JSON does."""
    doctor = {"issues": [], "summary": {"embeddings": embeddings, "images": 16}}
    label = {"ask": [{"path": f"x{i}.png", "reason": "typical"} for i in range(asks)], "labelled": 0, "classes": []}
    exe = tmp_path / "cnndesk"
    exe.write_text(f"""#!{sys.executable}
import json, sys
cmd = sys.argv[1]
if cmd == "doctor":
    assert sys.argv[sys.argv.index("--device") + 1] == "cpu"
    print(json.dumps({doctor!r}))
    sys.exit(1)  # issues found
if cmd == "label":
    print(json.dumps({label!r}))
    sys.exit({label_exit})
print(json.dumps({{"operations": []}}))
""")
    exe.chmod(0o755)
    return exe


def test_the_smoke_folder_has_two_classes_of_pictures(build, tmp_path):
    root = build.smoke_folder(tmp_path / "d")
    assert sorted(p.name for p in root.iterdir()) == ["dots", "stripes"]
    assert all(len(list((root / c).glob("*.png"))) == 8 for c in ("dots", "stripes"))


def test_a_bundle_that_runs_the_commands_as_from_source_passes(build, tmp_path):
    assert build.smoke(stand_in(tmp_path, "onnx-multi")) == {"ok": True, "doctor": "onnx-multi", "label": 3, "undo": 0}


def test_a_doctor_that_fell_back_to_other_features_fails_the_build(build, tmp_path, capsys):
    """The lite bundle without `onnx`: the dataset check ran, exit 1 as usual, on the last layer."""
    got = build.smoke(stand_in(tmp_path, "onnx"))
    assert got["ok"] is False and got["doctor"] == "onnx"
    assert "smoke check 'doctor' gave 'onnx'" in capsys.readouterr().out


def test_a_failing_command_fails_the_build_with_its_message(build, tmp_path):
    got = build.smoke(stand_in(tmp_path, "onnx-multi", asks=0, label_exit=3))
    assert got["ok"] is False and got["label"] == 0


def test_the_report_records_the_smoke_check(build):
    source = (REPO / "packaging" / "build.py").read_text(encoding="utf-8")
    assert '"smoke": checks' in source and 'checks["ok"]' in source


def test_the_checks_leave_nothing_in_the_temp_folder(build, tmp_path, monkeypatch):
    """Each build used to leave its self-test's and first paint's homes (about 1.4 MB) in /tmp."""
    import tempfile

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    exe = stand_in(tmp_path, "onnx-multi")
    build.selftest(exe)
    build.first_paint(exe)
    build.first_answer(exe)
    build.smoke(exe)
    assert list(temp.iterdir()) == []
