"""Typed errors whose ``str()`` is a plain-words message fit to show a user."""

from __future__ import annotations

import os


class CnndeskError(Exception):
    """Base class: the message is meant for the user, never a traceback."""


class ImageLoadError(CnndeskError):
    """An image could not be loaded. The message names the file and the reason."""

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        name = os.path.basename(self.path) if self.path else "image"
        super().__init__(f"{name}: {reason}")


class ModelError(CnndeskError):
    """A model could not be found, downloaded, built or run."""


class ModelUnavailableError(ModelError):
    """A model's weights are not on this machine and cannot be fetched (not installed, missing)."""


class DownloadError(ModelError):
    """A download of weights failed: the server refused it, or the file arrived corrupt."""


class NetworkRequiredError(DownloadError):
    """Weights must be downloaded but the network is unreachable (or dropped mid-download)."""


class DeviceUnavailableError(ModelError):
    """The device asked for (cuda, mps) cannot be used here; the message says why."""


class Cancelled(CnndeskError):
    """A long job was cancelled by the user."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)
