"""Where things live: bundled resources, the user's cache and data directories, the torch cache.

One function finds resources both from a source checkout and from a frozen (PyInstaller) build.
No Qt: the user directories follow the platform conventions through ``platformdirs``, the same
places ``QStandardPaths`` would pick.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "cnndesk"


def resources_dir() -> Path:
    """The folder holding icons, sample photos and label files."""
    override = os.environ.get("CNNDESK_RESOURCES")
    if override:
        return Path(override)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    import cnndesk

    package = Path(cnndesk.__file__).resolve().parent
    installed = package / "_resources"  # a wheel (`pip install .`): setup.py puts them there
    return installed if installed.is_dir() else package.parent / "resources"


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


def sample_images() -> list[Path]:
    folder = resource_path("samples")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def user_cache_dir() -> Path:
    override = os.environ.get("CNNDESK_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def user_data_dir() -> Path:
    """Where user-trained models live (the app's data location)."""
    override = os.environ.get("CNNDESK_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_models_dir() -> Path:
    return user_data_dir() / "models"


def torch_hub_checkpoints_dir() -> Path:
    """The standard torch cache for downloaded weights, computed without importing torch.

    Mirrors ``torch.hub.get_dir()``: ``$TORCH_HOME/hub`` or ``$XDG_CACHE_HOME/torch/hub`` or
    ``~/.cache/torch/hub``; weights go to its ``checkpoints`` folder.
    """
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        torch_home = os.path.join(xdg, "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def atomic_write(path: str | os.PathLike, mode: str = "wb", *, overwrite: bool = True):
    """Write to an exclusive temporary file in the same folder, fsync, then rename into place
    (see :func:`cnndesk.core.common.safeio.safe_write`; the folder is created when missing).

    With ``overwrite=False`` an existing file is never replaced (FileExistsError instead).
    A failure leaves no partial file behind and the old file (if any) untouched.
    """
    from cnndesk.core.common.safeio import safe_write

    return safe_write(path, mode, overwrite=overwrite, make_parents=True)
