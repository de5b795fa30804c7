"""One file to download and double-click on Linux, made from the built one-folder app
(dist/<flavour>/cnndesk) by packaging/build.py:

* ``dist/cnndesk[-lite]_<version>_<arch>.deb``: double-click opens the system's software
  installer (Debian 12+, Ubuntu 23.04+: the bundles need glibc >= the build machine's). It puts
  the app in /opt/cnndesk, a ``cnndesk`` command in /usr/bin, the menu entry ("Open with" for
  images) and the icons in /usr/share, and pulls in the system libraries Qt needs.
* ``dist/cnndesk[-lite]-<version>-linux-<arch>.tar.gz``: for any distribution, no root: unpack,
  double-click ``cnndesk`` inside, or run ``./install-desktop.sh`` there for the menu entry and
  icons (both inside the archive).

An AppImage would be the single file for every distribution, but appimagetool and its runtime
are downloads (GitHub), and the build must work offline. Needs dpkg-deb for the .deb (the .tar.gz
needs nothing)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)
# what Qt needs from the system (scripts/setup.sh installs the same for a source checkout)
DEB_DEPENDS = ("libpulse0", "fonts-dejavu-core", "libegl1", "libgl1", "libxkbcommon0", "libxkbcommon-x11-0",
               "libdbus-1-3", "libfontconfig1", "libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1",
               "libxcb-image0", "libxcb-randr0", "libxcb-render-util0", "libxcb-shape0", "libxcb-xkb1",
               "libxcb-xinerama0")
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf"}


def package_name(flavour: str) -> str:
    return "cnndesk" if flavour == "full" else f"cnndesk-{flavour}"


def glibc_version() -> str | None:
    """The build machine's glibc ("2.36"): the bundle needs at least that (docs/packaging.md)."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        return None
    parts = text.split()
    return parts[1] if len(parts) == 2 and parts[0] == "glibc" else None


def control_file(flavour: str, version: str, arch: str, installed_kb: int, glibc: str | None) -> str:
    other = package_name("lite" if flavour == "full" else "full")
    depends = ([f"libc6 (>= {glibc})"] if glibc else []) + list(DEB_DEPENDS)
    what = (" This package has everything: classify, fine-tune, Grad-CAM, export;\n PyTorch and CUDA included.\n"
            if flavour == "full" else
            " This package (lite): classify, quick fine-tuning and the dataset check,\n on the CPU, without PyTorch.\n")
    # Maintainer: a placeholder until the project has a release address (set it when publishing)
    return (f"Package: {package_name(flavour)}\nVersion: {version}\nArchitecture: {arch}\n"
            f"Maintainer: cnndesk <cnndesk@localhost>\nInstalled-Size: {installed_kb}\n"
            f"Depends: {', '.join(depends)}\nConflicts: {other}\nReplaces: {other}\n"
            "Section: graphics\nPriority: optional\n"
            "Description: a convolutional neural network on your desktop\n"
            " Classify photos, folders, videos and the camera with a CNN, offline,\n"
            f" and teach it your own classes.\n{what}")


def _link_tree(src: Path, dest: Path) -> None:
    """A copy of the app made of hard links where the filesystem allows (no second 0.5-5 GB)."""
    def link(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)
    shutil.copytree(src, dest, symlinks=True, copy_function=link)


def _installed_kb(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*")) // 1024 + 1


def make_deb(app: Path, out_dir: Path, flavour: str, version: str, *, work: Path, compress: str = "gzip") -> Path:
    """Build the .deb from the one-folder ``app``; ``work`` is a scratch folder. gzip: every dpkg
    reads it, and it is quick; xz ("xz") is smaller but took 16+ minutes for lite on this shared
    2-core machine (docs/packaging.md), hours for the 5 GB full app."""
    arch = DEB_ARCH.get(platform.machine(), platform.machine())
    tree = work / "deb"
    shutil.rmtree(tree, ignore_errors=True)
    _link_tree(app, tree / "opt" / "cnndesk")
    (tree / "usr" / "bin").mkdir(parents=True)
    launcher = tree / "usr" / "bin" / "cnndesk"
    launcher.write_text('#!/bin/sh\nexec /opt/cnndesk/cnndesk "$@"\n')
    launcher.chmod(0o755)
    apps = tree / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copy2(ROOT / "resources" / "cnndesk.desktop", apps / "cnndesk.desktop")  # Exec=cnndesk %F
    for size in ICON_SIZES:
        icons = tree / "usr" / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        icons.mkdir(parents=True)
        shutil.copy2(ROOT / "resources" / "icons" / f"cnndesk-{size}.png", icons / "cnndesk.png")
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(control_file(flavour, version, arch, _installed_kb(tree), glibc_version()))
    for d in [tree, *(p for p in tree.rglob("*") if p.is_dir() and not p.is_symlink())]:
        d.chmod(0o755)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{package_name(flavour)}_{version}_{arch}.deb"
    part = out.with_name(out.name + ".part")  # no half-written .deb under the final name
    try:
        subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compress}", "-z6", "--build", str(tree), str(part)],
                       check=True, stdout=subprocess.DEVNULL)
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)
        shutil.rmtree(tree, ignore_errors=True)
    return out


def make_tarball(app: Path, out_dir: Path, flavour: str, version: str) -> Path:
    """The app folder as ``<name>-<version>/`` with install-desktop.sh inside, gzip-compressed."""
    top = f"{package_name(flavour)}-{version}"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{top}-linux-{platform.machine()}.tar.gz"
    tmp = out.with_name(out.name + ".part")
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            tar.add(app, arcname=top)
            info = tar.gettarinfo(ROOT / "packaging" / "install-desktop.sh", arcname=f"{top}/install-desktop.sh")
            info.mode = 0o755
            with open(ROOT / "packaging" / "install-desktop.sh", "rb") as fh:
                tar.addfile(info, fh)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
