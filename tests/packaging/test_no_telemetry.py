"""ONNX Runtime's telemetry stays off (issue 24): its first inference session used to write a device
id and an events database to ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ (and it holds an
events endpoint), from `cnndesk classify` and from an export bundle's predict.py alike. Each runs
here in a fresh, empty HOME, with none of the opt-out variables inherited: the entry point itself
must switch it off."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnndesk.core.common.paths import resource_path

REPO = Path(__file__).resolve().parents[2]
OPT_OUTS = ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED", "XDG_CACHE_HOME")


def _fresh_home_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in OPT_OUTS}
    env["HOME"] = str(home)
    home.mkdir()
    return env


def _telemetry_files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if "onnxruntime" in str(p).lower())


def test_cli_classify_leaves_no_telemetry_files(tmp_path, classifier):
    # the session's cache holds the verified export (the classifier fixture made it): ONNX Runtime runs
    home = tmp_path / "home"
    env = _fresh_home_env(home)
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run([sys.executable, "-m", "cnndesk", "classify", "-f", "json", str(resource_path("samples", "cat.jpg"))],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["predictions"], r.stdout
    assert classifier.backend == "onnx"
    assert _telemetry_files(home) == []


def _tiny_bundle(folder: Path) -> None:
    """An export bundle's layout with a two-operator model (mean colour -> 3 logits): predict.py,
    its vendored loader, model.json. Enough to run predict.py's ONNX Runtime session for real."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from cnndesk.core.export import bundle
    from cnndesk.core.models.registry import default_model

    folder.mkdir()
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, 224, 224])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 3])
    graph = helper.make_graph([helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
                               helper.make_node("Reshape", ["pooled", "shape"], ["logits"])],
                              "tiny", [x], [y], initializer=[shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    info = {"labels": ["red", "green", "blue"], "preprocess": default_model().preprocess.to_dict(),
            "runtime": "onnxruntime", "files": {"model": "model.onnx"}}
    (folder / "model.json").write_text(json.dumps(info))
    shutil.copyfile(REPO / "cnndesk" / "export_kit" / "predict.py", folder / "predict.py")
    bundle.vendor_sources(folder / "_vendor")


def test_export_bundle_predict_leaves_no_telemetry_files(tmp_path):
    folder = tmp_path / "bundle"
    _tiny_bundle(folder)
    home = tmp_path / "home"
    env = _fresh_home_env(home)
    env.pop("PYTHONPATH", None)  # predict.py stands alone: its own vendored copy, no cnndesk
    img = tmp_path / "red.png"
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), (250, 10, 10), np.uint8)).save(img)
    r = subprocess.run([sys.executable, str(folder / "predict.py"), str(img)], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["predictions"][0]["label"] == "red"
    assert _telemetry_files(home) == []
