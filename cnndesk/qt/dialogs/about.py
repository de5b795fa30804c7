from __future__ import annotations

import platform
from importlib import metadata

import PySide6
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QMessageBox

from cnndesk import __version__


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def about_text(device: str) -> str:
    return (
        f"<h3>cnndesk {__version__}</h3>"
        "<p>A convolutional neural network on your desktop: classify photos, folders and the "
        "camera — offline, on your machine.</p>"
        f"<p>Device: {device or 'loading…'}<br>"
        f"PyTorch {_version('torch')} · torchvision {_version('torchvision')} · "
        f"ONNX Runtime {_version('onnxruntime')}<br>"
        f"Qt {qVersion()} · PySide6 {PySide6.__version__} · Python {platform.python_version()}</p>"
    )


def show_about(parent, device: str) -> None:
    QMessageBox.about(parent, "About cnndesk", about_text(device))
