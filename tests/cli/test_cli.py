"""The command line, run as a user would (subprocesses): output shapes, exit codes, help."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest


def cnndesk(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "cnndesk", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module", autouse=True)
def _exported(classifier):
    """Make sure the ONNX export exists before the subprocesses run (they share the cache)."""


def test_classify_json_shape_and_exit_0(samples):
    out = cnndesk("classify", samples["cat"], samples["coffee"], "--format", "json", "--top-k", "3")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["path"] for r in rows] == [str(samples["cat"]), str(samples["coffee"])]
    for r in rows:
        assert set(r) == {"path", "predictions", "error"} and r["error"] is None
        assert len(r["predictions"]) == 3
        assert all(set(p) == {"label", "score"} and 0 <= p["score"] <= 1 for p in r["predictions"])
    assert rows[1]["predictions"][0]["label"] == "espresso"


def test_bad_inputs_exit_1_and_the_rest_is_reported(samples, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(samples["cat"].read_bytes()[:2000])
    out = cnndesk("classify", bad, samples["coffee"], tmp_path / "missing.png", "-f", "json")
    assert out.returncode == 1
    rows = json.loads(out.stdout)
    assert [r["error"] is None for r in rows] == [False, True, False]
    assert rows[0]["predictions"] == [] and "broken.jpg: " in rows[0]["error"]
    assert "missing.png" in rows[2]["error"]
    assert "2 of 3 inputs could not be classified" in out.stderr
    assert "Traceback" not in out.stderr


def test_folder_csv_and_table(samples):
    folder = samples["cat"].parent
    out = cnndesk("classify", folder, "--format", "csv", "-k", "2")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    # the folder also holds selftest.mp4: videos in folders are classified too (a row per segment)
    assert len([r for r in rows if r["path"].endswith(".jpg")]) == len(samples)
    assert {r["path"] for r in rows if not r["path"].endswith(".jpg")} == {str(folder / "selftest.mp4")}
    assert list(rows[0]) == ["path", "start", "end", "label_1", "score_1", "label_2", "score_2", "error"]
    table = cnndesk("classify", samples["coffee"])
    assert table.returncode == 0 and "espresso" in table.stdout and "%" in table.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (["classify"], "required"),
        (["classify", "x.jpg", "--top-k", "0"], "at least 1"),
        (["classify", "x.jpg", "--format", "xml"], "invalid choice"),
        (["classify", "x.jpg", "--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["classify", "x.jpg", "--device", "cuda"], "not available"),
        (["--frobnicate"], "unrecognized"),
    ],
)
def test_usage_errors_exit_2(args, needle, samples):
    args = [str(samples["cat"]) if a == "x.jpg" else a for a in args]
    out = cnndesk(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert needle in out.stderr and "Traceback" not in out.stderr


def test_model_that_needs_a_download_offline_exits_3(samples):
    out = cnndesk("classify", samples["cat"], "--model", "resnet50", env={"CNNDESK_OFFLINE": "1"})
    assert out.returncode == 3
    assert "needs a network connection" in out.stderr and "Traceback" not in out.stderr


def test_help_version_and_models():
    for cmd in ([], ["classify"], ["models"], ["gui"]):
        out = cnndesk(*cmd, "--help")
        assert out.returncode == 0 and "usage: cnndesk" in out.stdout
    assert cnndesk("--version").stdout.strip().startswith("cnndesk 0.")
    listing = json.loads(cnndesk("models", "--format", "json").stdout)
    names = {m["name"]: m for m in listing}
    assert names["efficientnet-lite0"]["downloaded"] is True and names["efficientnet-lite0"]["classes"] == 1000
    assert names["resnet50"]["downloaded"] is False and names["resnet50"]["size_mb"] > 50
    table = cnndesk("models").stdout
    assert table.splitlines()[0].split()[:5] == ["NAME", "SOURCE", "CLASSES", "SIZE", "DOWNLOADED"]


def test_user_model_file_via_cli(tmp_path, samples):
    import timm
    import torch

    from cnndesk.core.models.files import save_model_file
    from cnndesk.core.models.registry import default_model

    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=2)
    path = save_model_file(tmp_path / "pets.safetensors", model.state_dict(), arch="timm:tf_efficientnet_lite0",
                           labels=["cat", "dog"], preprocess=default_model().preprocess)
    out = cnndesk("classify", samples["cat"], "--model", path, "-f", "json", env={"CNNDESK_CACHE_DIR": str(tmp_path / "c")})
    assert out.returncode == 0, out.stderr
    preds = json.loads(out.stdout)[0]["predictions"]
    assert {p["label"] for p in preds} == {"cat", "dog"}


def test_core_and_cli_classify_never_import_qt(samples):
    code = (
        "import sys, pkgutil, importlib, cnndesk.core\n"
        "for m in pkgutil.walk_packages(cnndesk.core.__path__, 'cnndesk.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "from cnndesk.cli import main\n"
        f"rc = main(['classify', {str(samples['cat'])!r}, '-f', 'json'])\n"
        "bad = sorted(m for m in sys.modules if m.startswith('PySide6') or m.startswith('shiboken'))\n"
        "print('QT', bad, rc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "QT [] 0"
