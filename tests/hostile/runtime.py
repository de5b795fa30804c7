"""Hostile inputs that cannot be kept in git: FIFOs, non-UTF-8 names, images of many pixels in
few bytes. Made at test time in a temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CORPUS = Path(__file__).parent / "files"


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def big_webp(path: Path, size: tuple[int, int] = (6000, 6000)) -> Path:
    """A WebP of many pixels and a few kilobytes (lossless, one colour)."""
    from PIL import Image

    Image.new("RGB", size, (200, 30, 40)).save(path, "WEBP", lossless=True, quality=0, method=0)
    return path


def big_png(path: Path, size: tuple[int, int] = (6000, 6000), mode: str = "RGBA") -> Path:
    from PIL import Image

    Image.new(mode, size, (10, 200, 30, 255) if mode == "RGBA" else (10, 200, 30)).save(path, "PNG", compress_level=1)
    return path


def can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = Path("/tmp") / f"cnndesk-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], capture_output=True)
        return ok
    finally:
        probe.rmdir()


class Tmpfs:
    """A small tmpfs mounted at ``path`` (root only): a real full or read-only disk."""

    def __init__(self, path: Path, size: str = "1M", readonly: bool = False):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        opts = f"size={size}" + (",ro" if readonly else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True)

    def fill(self) -> None:
        """Use up all the space (the fillers stay until unmount)."""
        for i, chunk in enumerate((65536, 512, 1)):
            try:
                with open(self.path / f"filler{i}", "wb", buffering=0) as fh:
                    while True:
                        fh.write(b"\0" * chunk)
            except OSError:
                pass

    def close(self) -> None:
        subprocess.run(["umount", str(self.path)], capture_output=True)
