"""A bundle's predict.py trusts nothing in the folder but what it checks: model.json with the model
files' schema discipline (NaN temperature, labels as a string, a 30,000 px crop, file names that
leave the folder, a swapped model file), only its named vendored modules imported (a planted
_vendor/numpy.py or numpy.py never runs), a PyTorch program refused without --allow-code, parity.json
read (a bundle that differed says so), and its table escaped. Runs predict.py as a user would, on a
tiny hand-made ONNX bundle (no export needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnndesk.core.export import bundle
from cnndesk.core.export.manifest import file_sha256

KIT = Path(bundle.__file__).resolve().parents[2] / "export_kit" / "predict.py"
MARK = "PAYLOAD-RAN"


def _tiny_onnx(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    graph = helper.make_graph([helper.make_node("GlobalAveragePool", ["x"], ["p"]),
                               helper.make_node("Flatten", ["p"], ["y"])], "tiny", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle") / "b"
    folder.mkdir()
    _tiny_onnx(folder / "model.onnx")
    bundle.vendor_sources(folder / "_vendor")
    shutil.copyfile(KIT, folder / "predict.py")
    info = {"name": "tiny", "labels": ["red", "green", "blue"], "format": "onnx", "runtime": "onnxruntime",
            "preprocess": {"resize": 16, "crop": 16, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear"},
            "temperature": 1.0, "unknown": None, "files": {"model": "model.onnx"},
            "sha256": {"model": file_sha256(str(folder / "model.onnx"))}}
    (folder / "model.json").write_text(json.dumps(info))
    (folder / "parity.json").write_text(json.dumps({"checked": True, "label_agreement": 1.0,
                                                    "model_sha256": info["sha256"]["model"]}))
    img = tmp_path_factory.mktemp("img") / "red.png"
    Image.new("RGB", (20, 20), (250, 10, 10)).save(img)
    return folder, info, img


@pytest.fixture
def bundle_dir(made, tmp_path):
    folder, info, img = made
    copy = tmp_path / "b"
    shutil.copytree(folder, copy)
    return copy, json.loads(json.dumps(info)), img


def predict(folder: Path, *args, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, str(folder / "predict.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd or folder.parent)


def test_a_checked_bundle_answers(bundle_dir):
    folder, _, img = bundle_dir
    out = predict(folder, img)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["predictions"][0]["label"] == "red"
    assert "warning" not in out.stderr


@pytest.mark.parametrize(("change", "words"), [
    ({"temperature": float("nan")}, "NaN"),
    ({"temperature": 0}, "temperature"),
    ({"labels": "redgreenblue"}, "'labels' must be a list"),
    ({"labels": ["red", 3, "blue"]}, "every label must be text"),
    ({"preprocess": {"resize": 30000, "crop": 30000, "mean": [0.5] * 3, "std": [0.5] * 3}}, "between 8 and 4096"),
    ({"files": {"model": "../model.onnx"}}, "plain file name"),
    ({"files": {"model": "/etc/passwd"}}, "plain file name"),
    ({"runtime": "os.system"}, "unknown runtime"),
    ({"unknown": {"threshold": "high"}}, "unknown.threshold"),
])
def test_a_bad_model_json_is_refused_in_one_line(bundle_dir, change, words):
    folder, info, img = bundle_dir
    (folder / "model.json").write_text(json.dumps({**info, **change}))
    out = predict(folder, img)
    assert out.returncode == 3 and words in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_a_link_out_of_the_folder_and_a_swapped_model_file_are_refused(bundle_dir, tmp_path):
    folder, info, img = bundle_dir
    other = tmp_path / "other.onnx"
    shutil.copy(folder / "model.onnx", other)
    (folder / "linked.onnx").symlink_to(other)
    (folder / "model.json").write_text(json.dumps({**info, "files": {"model": "linked.onnx"}}))
    out = predict(folder, img)
    assert out.returncode == 3 and "leads out of the bundle folder" in out.stderr, out.stderr
    (folder / "model.json").write_text(json.dumps(info))
    with open(folder / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    out = predict(folder, img)
    assert out.returncode == 3 and "not the file this bundle was exported with" in out.stderr, out.stderr


def test_planted_modules_in_the_bundle_never_run(bundle_dir, tmp_path):
    folder, _, img = bundle_dir
    marker = tmp_path / "ran"
    payload = f"open({str(marker)!r}, 'w').write({MARK!r})\n"
    (folder / "_vendor" / "numpy.py").write_text(payload)
    (folder / "_vendor" / "PIL").mkdir()
    (folder / "_vendor" / "PIL" / "__init__.py").write_text(payload)
    (folder / "numpy.py").write_text(payload)
    (folder / "json.py").write_text(payload)
    out = predict(folder, img, cwd=folder)
    assert out.returncode == 0, out.stderr
    assert not marker.exists()


def test_a_pytorch_program_is_refused_unless_allowed(bundle_dir, tmp_path):
    folder, info, img = bundle_dir
    marker = tmp_path / "ran"
    (folder / "model.pt2").write_bytes(b"PK\x03\x04 a torch.export archive whose pickle would run code")
    info = {**info, "runtime": "torch", "format": "pt2", "files": {"model": "model.pt2"},
            "sha256": {"model": file_sha256(str(folder / "model.pt2"))}}
    (folder / "model.json").write_text(json.dumps(info))
    out = predict(folder, img)
    assert out.returncode == 3 and "--allow-code" in out.stderr and "run code" in out.stderr, out.stderr
    assert not marker.exists()


def test_parity_json_is_read(bundle_dir):
    folder, info, img = bundle_dir
    (folder / "parity.json").write_text(json.dumps({"checked": True, "label_agreement": 0.4,
                                                    "model_sha256": info["sha256"]["model"]}))
    assert "DIFFER from the app" in predict(folder, img).stderr
    (folder / "parity.json").write_text(json.dumps({"checked": True, "label_agreement": 1.0, "model_sha256": "0" * 64}))
    assert "another model file" in predict(folder, img).stderr
    (folder / "parity.json").write_text("[" * 100_000)
    out = predict(folder, img)
    assert out.returncode == 0 and "parity.json cannot be read" in out.stderr


def test_the_table_escapes_labels_and_names(bundle_dir, tmp_path):
    folder, info, _ = bundle_dir
    info["labels"] = ["r\x1b[2Jed", "green", "blue\u202e"]
    (folder / "model.json").write_text(json.dumps(info))
    img = tmp_path / "a\x1b]0;x\x07.png"
    Image.new("RGB", (20, 20), (250, 10, 10)).save(img)
    out = predict(folder, "--format", "table", "-k", "3", img)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\u202e" not in out.stdout and "\x07" not in out.stdout
    assert "r\\x1b[2Jed" in out.stdout


def test_nan_scores_are_an_error_not_nan(bundle_dir, tmp_path):
    folder, _, _ = bundle_dir
    img = tmp_path / "x.png"
    Image.fromarray(np.full((20, 20, 3), 128, np.uint8)).save(img)
    head = folder / "head.npz"
    np.savez(head, weight=np.full((3, 3), np.nan, np.float32), bias=np.zeros(3, np.float32))
    info = json.loads((folder / "model.json").read_text())
    info["files"]["head"] = "head.npz"
    info["sha256"]["head"] = file_sha256(str(head))
    (folder / "model.json").write_text(json.dumps(info))
    out = predict(folder, img)
    assert out.returncode == 1 and "NaN" not in out.stdout.replace("(NaN or infinite", "")
    assert "no valid score" in json.loads(out.stdout)[0]["error"]
