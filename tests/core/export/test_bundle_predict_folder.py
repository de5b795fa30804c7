"""An export bundle's predict.py takes a folder, as `cnndesk classify` does: its images sorted by
name (subfolders with --recursive), the same JSON rows; an empty folder is refused with a hint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from shapes import make_dataset

from cnndesk.core.export.bundle import export_bundle
from cnndesk.core.models.registry import get_spec
from cnndesk.core.training.config import TrainConfig
from cnndesk.core.training.datasets import scan
from cnndesk.core.training.dispatch import train


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, classifier):
    root = make_dataset(tmp_path_factory.mktemp("shapes") / "data", (8, 8, 8))
    model = train(scan(root, seed=1), TrainConfig(mode="quick", seed=1))
    path = model.save(tmp_path_factory.mktemp("models") / "shapes")
    out = tmp_path_factory.mktemp("bundle") / "b"
    export_bundle(get_spec(str(path)), "onnx", out)
    return path, out, root


def _run(*args, cwd):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_predict_py_classifies_a_folder_like_classify(bundle, tmp_path):
    model, out, data = bundle
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i, p in enumerate(sorted((data / "circle").iterdir())[:3]):
        shutil.copy(p, folder / f"{'cba'[i]}.jpg")
    shutil.copy(sorted((data / "square").iterdir())[0], folder / "sub" / "deep.jpg")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.jpg").write_bytes(b"")

    flat = _run(out / "predict.py", folder, cwd=tmp_path)
    assert flat.returncode == 0, flat.stderr
    got = json.loads(flat.stdout)
    assert [Path(r["path"]).name for r in got] == ["a.jpg", "b.jpg", "c.jpg"]  # sorted, no subfolder, no .txt
    want = json.loads(_run("-m", "cnndesk", "classify", "--model", model, "-f", "json", folder, cwd=tmp_path).stdout)
    assert [r["path"] for r in got] == [r["path"] for r in want]
    assert [r["predictions"][0]["label"] for r in got] == [r["predictions"][0]["label"] for r in want]

    deep = _run(out / "predict.py", "--recursive", folder, "-k", "1", cwd=tmp_path)
    assert deep.returncode == 0, deep.stderr
    rows = json.loads(deep.stdout)
    assert [Path(r["path"]).name for r in rows] == ["a.jpg", "b.jpg", "c.jpg", "deep.jpg"]
    want = json.loads(_run("-m", "cnndesk", "classify", "-r", "--model", model, "-f", "json", "-k", "1", folder,
                           cwd=tmp_path).stdout)
    assert [r["path"] for r in rows] == [r["path"] for r in want]

    mixed = _run(out / "predict.py", folder / "sub" / "deep.jpg", folder, cwd=tmp_path)  # a file and a folder
    assert [Path(r["path"]).name for r in json.loads(mixed.stdout)] == ["deep.jpg", "a.jpg", "b.jpg", "c.jpg"]


def test_predict_py_refuses_a_folder_without_images(bundle, tmp_path):
    _, out, _ = bundle
    empty = tmp_path / "empty"
    (empty / "inner").mkdir(parents=True)
    (empty / "inner" / "x.jpg").write_bytes(b"\xff\xd8")
    run = _run(out / "predict.py", empty, cwd=tmp_path)
    assert run.returncode == 1 and run.stdout == ""
    assert "no images found" in run.stderr and "--recursive" in run.stderr and "Traceback" not in run.stderr
