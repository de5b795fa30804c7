"""The one file to download on Linux (issue 24): `make package` turns the built app into a .deb
(the app in /opt/cnndesk, a cnndesk command, the menu entry and the icons, the libraries Qt
needs as dependencies) and a .tar.gz whose install-desktop.sh works from where it was unpacked.
Checked on a stand-in app folder (the real build takes minutes; docs/packaging.md has its numbers)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import packaging_scripts
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def linux_dist():
    return packaging_scripts.load("linux_dist")


@pytest.fixture
def app(tmp_path):
    """A one-folder app as PyInstaller lays it out: the executable, _internal/ with the resources."""
    app = tmp_path / "dist" / "lite" / "cnndesk"
    res = app / "_internal" / "resources"
    res.mkdir(parents=True)
    shutil.copy2(REPO / "resources" / "cnndesk.desktop", res)
    shutil.copytree(REPO / "resources" / "icons", res / "icons")
    exe = app / "cnndesk"
    exe.write_text("#!/bin/sh\necho cnndesk says hello\n")
    exe.chmod(0o755)
    (app / "_internal" / "libfoo.so.1").write_bytes(b"\0" * 1000)
    os.symlink("libfoo.so.1", app / "_internal" / "libfoo.so")
    return app


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_deb_installs_app_command_menu_entry_and_icons(linux_dist, app, tmp_path):
    deb = linux_dist.make_deb(app, tmp_path / "out", "lite", "0.1.0", work=tmp_path / "work")
    assert deb.name.startswith("cnndesk-lite_0.1.0_") and deb.name.endswith(".deb")
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    for path in ("./opt/cnndesk/cnndesk", "./opt/cnndesk/_internal/resources/cnndesk.desktop", "./usr/bin/cnndesk",
                 "./usr/share/applications/cnndesk.desktop", "./usr/share/icons/hicolor/512x512/apps/cnndesk.png",
                 "./usr/share/icons/hicolor/16x16/apps/cnndesk.png"):
        assert f" {path}" in listing, path
    assert "root/root" in listing and "./opt/cnndesk/_internal/libfoo.so -> libfoo.so.1" in listing
    fields = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True).stdout
    assert "Package: cnndesk-lite" in fields and "Conflicts: cnndesk" in fields
    assert "libxcb-cursor0" in fields and "libpulse0" in fields
    unpacked = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    assert 'exec /opt/cnndesk/cnndesk "$@"' in (unpacked / "usr/bin/cnndesk").read_text()
    assert os.access(unpacked / "usr/bin/cnndesk", os.X_OK) and os.access(unpacked / "opt/cnndesk/cnndesk", os.X_OK)
    assert "Exec=cnndesk %F" in (unpacked / "usr/share/applications/cnndesk.desktop").read_text()
    assert not (tmp_path / "work" / "deb").exists()  # the scratch tree is gone


def test_tarball_unpacks_runs_and_installs_its_desktop_entry(linux_dist, app, tmp_path):
    tarball = linux_dist.make_tarball(app, tmp_path / "out", "lite", "0.1.0")
    assert tarball.name.startswith("cnndesk-lite-0.1.0-linux-") and tarball.name.endswith(".tar.gz")
    assert [p.name for p in tarball.parent.iterdir()] == [tarball.name]  # no .part left
    dest = tmp_path / "unpacked here"
    dest.mkdir()
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="tar")
    top = dest / "cnndesk-lite-0.1.0"
    assert subprocess.run([str(top / "cnndesk")], capture_output=True, text=True).stdout == "cnndesk says hello\n"
    assert (top / "_internal" / "libfoo.so").is_symlink()
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)
    r = subprocess.run([str(top / "install-desktop.sh")], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    desktop = (home / ".local/share/applications/cnndesk.desktop").read_text()
    assert f'Exec="{top}/cnndesk" %F' in desktop
    assert (home / ".local/share/icons/hicolor/64x64/apps/cnndesk.png").is_file()


def test_control_file_names_glibc_and_both_flavours(linux_dist):
    full = linux_dist.control_file("full", "1.2.3", "amd64", 4_700_000, "2.36")
    assert "Package: cnndesk\n" in full and "Conflicts: cnndesk-lite" in full
    assert "Depends: libc6 (>= 2.36), libpulse0" in full and "Installed-Size: 4700000" in full
    lite = linux_dist.control_file("lite", "1.2.3", "arm64", 1, None)
    assert "Depends: libpulse0" in lite and "Architecture: arm64" in lite
