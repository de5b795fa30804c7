"""The first answer after every set-up path (issue 24): set-up (`make run`, `make test`) and the
post-install step of a plain `pip install` put the verified ONNX export where every process finds
it (cnndesk.prepare); a wheel carries resources/ (a plain `pip install .` used to have no labels
at all) and, when made from a prepared checkout, the export. The timings are in
docs/packaging.md ("The first answer after each set-up")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cnndesk.prepare as prep
from cnndesk.core.common import safeio, system
from cnndesk.core.runtime import resolve as runtime

REPO = Path(__file__).resolve().parents[2]


def test_make_run_and_make_test_both_prepare_the_export():
    text = (REPO / "Makefile").read_text()
    for target in ("setup:", "setup-dev:"):
        recipe = text.split(f"\n{target}", 1)[1].split("\n\n", 1)[0]
        assert "cnndesk.prepare" in recipe, f"make {target[:-1]} does not build the export"


def _fake_export(tmp_path: Path, monkeypatch) -> Path:
    src = tmp_path / "export-cache"
    src.mkdir()
    onnx = src / "m-0123.onnx"
    for name, data in (("m-0123.json", b"{}"), ("m-0123.onnx", b"model"), ("m-0123.onnx.data", b"weights"),
                       ("m-features-9999.onnx", b"other")):
        (src / name).write_bytes(data)

    class Entry:
        ok, path, record = True, onnx, {}

    def resolve(spec, variant, *args, export=True, **kwargs):
        return type("R", (), {"entry": Entry if export else None})

    monkeypatch.setattr(runtime, "resolve", resolve)
    monkeypatch.setattr(system, "has_torch", lambda: True)
    return src


def test_prepare_copies_the_model_first_and_its_record_last(tmp_path, monkeypatch):
    _fake_export(tmp_path, monkeypatch)
    order = []
    real = safeio.copy_file
    monkeypatch.setattr(safeio, "copy_file", lambda s, d: (order.append(Path(d).name), real(s, d)))
    dest = tmp_path / "resources" / "onnx"
    assert prep.prepare(dest) == dest / "m-0123.onnx"
    assert order[-1] == "m-0123.json" and set(order) == {"m-0123.onnx", "m-0123.onnx.data", "m-0123.json"}
    assert (dest / "m-0123.onnx").read_bytes() == b"model"  # the record makes an export usable: it comes last
    assert not (dest / "m-features-9999.onnx").exists()


def test_prepare_says_in_one_line_when_it_cannot_write(tmp_path, monkeypatch, capsys):
    _fake_export(tmp_path, monkeypatch)
    blocked = tmp_path / "onnx"
    blocked.write_text("a file where the folder should be")
    monkeypatch.setattr("cnndesk.core.common.paths.resource_path", lambda *parts: blocked)
    with pytest.raises(prep.PrepareError, match=f"cannot write the export to {blocked}"):
        prep.prepare()
    assert prep.main() == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("prepare: cannot write") and "first answer will wait" in err[0]


def test_a_wheel_install_carries_its_resources(tmp_path):
    """`pip install .` (not editable): the labels, samples and icons travel inside the package."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "cnndesk", src / "cnndesk", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "resources", src / "resources", ignore=shutil.ignore_patterns("onnx"))
    (src / "resources" / "onnx").mkdir()
    (src / "resources" / "onnx" / "efficientnet-lite0-0123.json").write_text("{}")  # as after cnndesk.prepare
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    installed = site / "cnndesk" / "_resources"
    for rel in ("labels/imagenet1k.txt", "samples/cat.jpg", "icons/cnndesk-256.png", "cnndesk.desktop",
                "onnx/efficientnet-lite0-0123.json"):
        assert (installed / rel).is_file(), rel
    code = ("from cnndesk.core.common.paths import resources_dir; from cnndesk.core.models.registry import default_model; "
            "print(resources_dir()); print(len(default_model().labels))")
    env = {k: v for k, v in os.environ.items() if k != "CNNDESK_RESOURCES"}
    env["PYTHONPATH"] = str(site)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(installed), "1000"]


def test_a_checkout_reads_its_own_resources_folder():
    from cnndesk.core.common.paths import resources_dir

    if os.environ.get("CNNDESK_RESOURCES"):
        pytest.skip("CNNDESK_RESOURCES overrides the lookup")
    assert resources_dir() == REPO / "resources"
