"""The device a model runs on: CUDA, then Apple MPS, then the CPU; torch is imported only when a
GPU may be present (the lite build has none)."""

from __future__ import annotations

from dataclasses import dataclass

from cnndesk.core.common import system
from cnndesk.core.common.errors import DeviceUnavailableError, ModelError

DEVICES = ("auto", "cpu", "cuda", "mps")
# what the app calls each device (Preferences, the Train dialog)
DEVICE_NAMES = {"auto": "Automatic (GPU if available)", "cpu": "CPU", "cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU (MPS)"}


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # "cpu", "cuda", "mps"
    name: str  # "CPU", GPU name
    note: str = ""  # e.g. "an NVIDIA GPU is present but this torch build is CPU-only"


def resolve_device(requested: str = "auto") -> DeviceInfo:
    """Pick the device without importing torch unless a GPU may be there."""
    requested = (requested or "auto").lower()
    if requested not in DEVICES:
        raise ModelError(f"unknown device '{requested}' (choose auto, cpu, cuda or mps)")
    if requested == "cpu":
        return DeviceInfo("cpu", "CPU")
    if requested != "auto" and not system.has_torch():
        raise DeviceUnavailableError(f"device '{requested}' is not available: this lite version of cnndesk runs on the CPU only")
    if requested == "auto" and not system.gpu_may_be_present():
        return DeviceInfo("cpu", "CPU")
    import torch

    note = ""
    if torch.cuda.is_available() and requested in ("auto", "cuda"):
        return DeviceInfo("cuda", torch.cuda.get_device_name(0))
    if system.nvidia_driver_present() and torch.version.cuda is None:
        note = "an NVIDIA GPU is present but this PyTorch build is CPU-only"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available() and requested in ("auto", "mps"):
        return DeviceInfo("mps", "Apple GPU (MPS)", note)
    if requested != "auto":
        why = note or ("no usable CUDA GPU was found" if requested == "cuda" else "MPS is not available")
        raise DeviceUnavailableError(f"device '{requested}' is not available: {why}")
    return DeviceInfo("cpu", "CPU", note)
