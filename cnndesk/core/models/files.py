"""User model files: one ``.safetensors`` file holding the weights plus JSON metadata (architecture,
labels, preprocessing, training summary). Written atomically; never overwritten silently; loading
never unpickles (reading is in :mod:`cnndesk.core.models.registry`, torch-free)."""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from cnndesk import __version__
from cnndesk.core.models.registry import MODEL_FILE_SUFFIX, MODEL_FORMAT, MODEL_FORMAT_VERSION
from cnndesk.core.paths import atomic_write
from cnndesk.core.preprocess import Preprocess


def save_model_file(
    path: str | os.PathLike,
    state_dict: dict,
    *,
    arch: str,
    labels: list[str],
    preprocess: Preprocess,
    name: str | None = None,
    extra: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model file. ``state_dict`` maps names to torch tensors (or numpy arrays).

    Raises FileExistsError when ``path`` exists and ``overwrite`` is False.
    """
    from safetensors.numpy import save as save_numpy

    path = Path(path)
    if path.suffix != MODEL_FILE_SUFFIX:
        path = path.with_name(path.name + MODEL_FILE_SUFFIX)
    info = {
        "format": MODEL_FORMAT_VERSION,
        "name": name or path.name[: -len(MODEL_FILE_SUFFIX)],
        "arch": arch,
        "labels": list(labels),
        "preprocess": preprocess.to_dict(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cnndesk_version": __version__,
        **(extra or {}),
    }
    arrays = {}
    for k, v in state_dict.items():
        arrays[k] = v.detach().cpu().contiguous().numpy() if hasattr(v, "detach") else v
    blob = save_numpy(arrays, metadata={MODEL_FORMAT: json.dumps(info)})
    with atomic_write(path, "wb", overwrite=overwrite) as fh:
        fh.write(blob)
    return path
