"""Export bundles: predict.py gives the app's answers with no cnndesk installed; int8, OpenVINO,
TorchScript and torch.export formats; refusals leave nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from shapes import make_dataset

from cnndesk.core.export import bundle
from cnndesk.core.export.bundle import ExportError, export_bundle
from cnndesk.core.models.registry import get_spec
from cnndesk.core.training.config import TrainConfig
from cnndesk.core.training.datasets import scan
from cnndesk.core.training.dispatch import train


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, classifier):
    root = make_dataset(tmp_path_factory.mktemp("shapes") / "data", (30, 30, 30))
    ds = scan(root, seed=2)
    model = train(ds, TrainConfig(mode="quick", seed=2))
    return model.save(tmp_path_factory.mktemp("models") / "shapes"), ds


def _classify_json(model: Path, paths) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "cnndesk", "classify", "--model", str(model), "-f", "json",
                          *map(str, paths)], capture_output=True, text=True, timeout=300)
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


def _same_answers(got: list[dict], want: list[dict], tol: float = 0.002) -> None:
    assert [r["path"] for r in got] == [r["path"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert set(g) == set(w)
        assert (g["error"] is None) == (w["error"] is None)
        if w["error"]:
            assert g["error"] == w["error"]
            continue
        assert [p["label"] for p in g["predictions"]][:1] == [p["label"] for p in w["predictions"]][:1]
        ws = {p["label"]: p["score"] for p in w["predictions"]}
        assert all(abs(p["score"] - ws[p["label"]]) <= tol for p in g["predictions"] if p["label"] in ws)
        for key in ("unknown",):
            assert g.get(key) == w.get(key)


@pytest.mark.slow
def test_onnx_bundle_runs_in_a_bare_venv_and_prints_what_classify_prints(model_file, tmp_path):
    path, ds = model_file
    out = tmp_path / "bundle"
    rep = export_bundle(get_spec(str(path)), "onnx", out)
    names = {p.name for p in out.iterdir()}
    assert {"model.onnx", "head.npz", "model.json", "predict.py", "README.md", "parity.json", "_vendor"} <= names
    parity = json.loads((out / "parity.json").read_text())
    assert parity["checked"] and parity["source"] == "validation images of the model"
    assert parity["images"] == len(ds.val) and parity["same_label"] == parity["images"]
    assert parity["max_score_diff"] < 0.002 and rep.ok and "gives the app's answers" in rep.describe()
    info = json.loads((out / "model.json").read_text())
    assert info["labels"] == ds.classes and info["runtime"] == "onnxruntime"
    meta = get_spec(str(path)).metadata
    assert info["temperature"] == pytest.approx(float(meta.get("temperature", 1.0)))
    if meta.get("novelty"):  # the trust data travels: detector file + threshold
        assert info["files"]["novelty"] == "novelty.npz" and info["unknown"]["threshold"] > 0
        assert "unknown_agreement" in parity and parity["same_unknown"] == parity["images"]

    # a virtual environment with only Pillow, numpy and onnxruntime (no cnndesk, no torch)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    import numpy
    import onnxruntime
    import PIL

    pins = [f"numpy=={numpy.__version__}", f"pillow=={PIL.__version__}", f"onnxruntime=={onnxruntime.__version__}"]
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", *pins], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for mod in ("cnndesk", "torch"):
        assert subprocess.run([str(py), "-c", f"import {mod}"], env=clean_env, cwd=elsewhere,
                              capture_output=True).returncode != 0, mod

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    samples = sorted(str(p) for p in (Path(__file__).resolve().parents[3] / "resources" / "samples").glob("*.jpg"))
    images = [str(p) for p, _ in ds.val[:12]] + samples + [str(bad)]  # photos: "not one of my classes"
    run = subprocess.run([str(py), str(out / "predict.py"), *images], capture_output=True, text=True,
                         cwd=elsewhere, env=clean_env, timeout=300)
    assert run.returncode == 1, run.stderr  # one image could not be read, like classify
    got, want = json.loads(run.stdout), _classify_json(path, images)
    _same_answers(got, want)
    assert got == want  # not only close: the very same JSON rows
    if meta.get("novelty"):
        assert all(r["unknown"] for r in got if r["path"] in samples)
    table = subprocess.run([str(py), str(out / "predict.py"), "--format", "table", "-k", "2", images[0]],
                           capture_output=True, text=True, cwd=elsewhere, env=clean_env, timeout=300)
    assert table.returncode == 0 and "%" in table.stdout


@pytest.mark.slow
def test_int8_bundle_agrees_with_the_app_and_reports_speed(model_file, tmp_path):
    path, _ = model_file
    rep = export_bundle(get_spec(str(path)), "onnx-int8", tmp_path / "int8")
    assert (tmp_path / "int8" / "model.int8.onnx").is_file() and not (tmp_path / "int8" / "model.onnx").exists()
    assert rep.parity["checked"] and rep.parity["label_agreement"] >= 0.98, rep.describe()
    assert any("int8 vs fp32" in n and "fp32 speed" in n for n in rep.notes)
    assert (tmp_path / "int8" / "model.int8.onnx").stat().st_size < 0.5 * os.path.getsize(
        get_spec(str(path)).metadata["file"]) + 8e6  # int8 weights: about a quarter of fp32


def test_int8_is_refused_with_the_numbers_and_leaves_nothing(model_file, tmp_path, monkeypatch):
    path, _ = model_file
    monkeypatch.setattr(bundle, "INT8_MIN_AGREEMENT", 1.01)  # no int8 model can pass this
    with pytest.raises(ExportError, match=r"int8 refused: .* agrees with fp32 on \d+/\d+ validation images"):
        export_bundle(get_spec(str(path)), "onnx-int8", tmp_path / "int8")
    assert list(tmp_path.iterdir()) == []  # no bundle, no temporary folder


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["openvino", "torchscript", "pt2", "tflite", "coreml"])
def test_other_formats_are_checked_against_the_app(model_file, tmp_path, fmt):
    path, ds = model_file
    pytest.importorskip({"openvino": "openvino", "tflite": "litert_torch", "coreml": "coremltools"}.get(fmt, "torch"))
    rep = export_bundle(get_spec(str(path)), fmt, tmp_path / fmt, max_images=20)
    if fmt == "coreml" and sys.platform != "darwin":  # converted here, runs only on macOS: never claimed
        assert (tmp_path / fmt / "model.mlpackage").is_dir() and not rep.parity["checked"]
        assert "UNCHECKED" in rep.describe() and "darwin" in rep.parity["reason"]
        return
    assert rep.parity["checked"] and rep.parity["same_label"] == rep.parity["images"] == min(20, len(ds.val)), rep.describe()
    assert rep.parity["max_score_diff"] < 0.002
    if fmt == "torchscript":
        assert any("deprecated" in n for n in rep.notes)


def test_runtime_missing_means_unchecked_never_claimed(model_file, tmp_path, monkeypatch):
    path, _ = model_file
    form = bundle.FORMATS["onnx"]
    monkeypatch.setitem(bundle.FORMATS, "onnx", bundle.Format(form.name, "onnxruntime_missing_for_test",
                                                              form.model_file, form.description))
    rep = export_bundle(get_spec(str(path)), "onnx", tmp_path / "b")
    assert rep.parity["checked"] is False and "not installed" in rep.parity["reason"]
    assert "UNCHECKED" in rep.describe()


def test_refusals_before_any_work(model_file, tmp_path):
    path, _ = model_file
    spec = get_spec(str(path))
    (tmp_path / "exists").mkdir()
    with pytest.raises(ExportError, match="already exists"):
        export_bundle(spec, "onnx", tmp_path / "exists")
    with pytest.raises(ExportError, match="does not exist"):
        export_bundle(spec, "onnx", tmp_path / "missing" / "b")
    with pytest.raises(ExportError, match="unknown export format"):
        export_bundle(spec, "jpeg", tmp_path / "b")
    with pytest.raises(ExportError, match="not a folder"):
        export_bundle(spec, "onnx", tmp_path / "b", data=tmp_path / "nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists"]


def test_cli_export_writes_a_bundle(model_file, tmp_path):
    path, ds = model_file
    run = lambda *a: subprocess.run([sys.executable, "-m", "cnndesk", "export", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True, timeout=600)
    ok = run(path, "--out", tmp_path / "b", "--data", ds.root)
    assert ok.returncode == 0, ok.stderr
    assert "gives the app's answers" in ok.stdout and f"validation images of {ds.root}" in ok.stdout
    again = run(path, "--out", tmp_path / "b")
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = run(path, "--out", tmp_path / "c", "--format", "jpeg")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr and not (tmp_path / "c").exists()
