"""The app bundles: lite lists and loads only what it can run and says a GPU device is not
available (exit 2); install-desktop.sh takes a relative APP_DIR from the current folder and works
on a fresh home; build.py removes dangling links; the spec builds a macOS bundle and a windowed
Windows exe with version information."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import packaging_scripts
import pytest

from cnndesk.core.common import system

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def lite(monkeypatch):
    monkeypatch.setattr(system, "has_torch", lambda: False)
    monkeypatch.setenv("CNNDESK_OFFLINE", "1")


def test_lite_lists_and_loads_only_what_it_can_run(lite):
    from cnndesk.core.common.errors import ModelError, NetworkRequiredError
    from cnndesk.core.models.registry import get_spec, list_models
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.runtime.devices import resolve_device

    names = [s.name for s in list_models()]
    assert names == ["efficientnet-lite0"]
    assert len(list_models(runnable_only=False)) > 1
    with pytest.raises(ModelError, match="full version") as exc:
        Classifier(get_spec("resnet50"))  # refused before any download (offline would say "network")
    assert not isinstance(exc.value, NetworkRequiredError)
    with pytest.raises(ModelError, match="device 'cuda' is not available"):
        resolve_device("cuda")


def test_lite_classify_on_cuda_is_a_usage_error(lite, samples, capsys):
    from cnndesk.cli import main

    assert main(["classify", "--device", "cuda", str(samples["cat"])]) == 2
    assert "device 'cuda' is not available" in capsys.readouterr().err


def test_lite_models_command_lists_only_what_it_can_run(lite, capsys):
    from cnndesk.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet-lite0" in out
    for zoo in ("resnet50", "efficientnet-b0", "convnext-tiny", "mobilenet-v3-large"):
        assert zoo not in out


def test_install_desktop_relative_dir_and_fresh_home(tmp_path):
    app = tmp_path / "where I unpacked" / "cnndesk"
    app.mkdir(parents=True)
    exe = app / "cnndesk"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)
    r = subprocess.run(["bash", str(REPO / "packaging" / "install-desktop.sh"), "where I unpacked/cnndesk"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    desktop = (home / ".local/share/applications/cnndesk.desktop").read_text()
    assert f'Exec="{app}/cnndesk" %F' in desktop
    assert (home / ".local/share/icons/hicolor/256x256/apps/cnndesk.png").is_file()
    assert "No theme index file" not in r.stderr
    bad = subprocess.run(["bash", str(REPO / "packaging" / "install-desktop.sh"), "nowhere"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and f"in {tmp_path}/nowhere" in bad.stderr


def test_build_script_removes_dangling_links(tmp_path):
    build = packaging_scripts.load("build")
    (tmp_path / "lib.so").write_bytes(b"x")
    os.symlink(tmp_path / "lib.so", tmp_path / "ok.so")
    os.symlink(tmp_path / "gone.so", tmp_path / "dangling.so")
    assert build.remove_dangling_links(tmp_path) == 1
    assert (tmp_path / "ok.so").exists() and not os.path.lexists(tmp_path / "dangling.so")
    assert "/bin/" not in (REPO / "packaging" / "build.py").read_text().split('"""', 2)[2]  # no .venv/bin paths


def test_spec_has_macos_bundle_and_windowed_windows_exe():
    text = (REPO / "packaging" / "cnndesk.spec").read_text()
    assert "BUNDLE(" in text and "NSCameraUsageDescription" in text and "org.cnndesk.cnndesk" in text
    assert "console=not (WINDOWS or MACOS)" in text and "version=windows_version_file()" in text
    from PIL import Image

    icns = Image.open(REPO / "resources" / "icons" / "cnndesk.icns")
    assert icns.format == "ICNS" and (512, 512, 2) in icns.info["sizes"]


def _spec_excludes(flavour: str) -> set[str]:
    """The top-level names the spec leaves out of a flavour (its ALWAYS_OUT and TORCH lists)."""
    import ast

    tree = ast.parse((REPO / "packaging" / "cnndesk.spec").read_text())
    lists = {t.id: [e.value for e in node.value.elts] for node in tree.body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name) and isinstance(node.value, ast.List)
             and all(isinstance(e, ast.Constant) for e in node.value.elts)}
    names = lists["ALWAYS_OUT"] + (lists["TORCH"] if flavour == "lite" else [])
    return {n.split(".")[0] for n in names if "." not in n}


@pytest.mark.parametrize("flavour", ["full", "lite"])
def test_spec_keeps_what_the_dataset_check_and_video_import(flavour):
    """The first real lite build failed `cnndesk doctor` with "No module named 'pandas'": the spec
    excluded pandas, which cleanlab imports. Every module the dataset check's label step and the
    video decoder load must stay in both bundles."""
    code = ("import sys, cleanlab.filter, sklearn.linear_model, sklearn.model_selection, av; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True,
                                check=True, timeout=300).stdout.split())
    assert {"cleanlab", "sklearn", "scipy", "av"} <= loaded
    optional = {"pyarrow"}  # pandas uses it when installed and works without it (checked frozen)
    missing = (loaded - optional) & _spec_excludes(flavour)
    assert not missing, missing
