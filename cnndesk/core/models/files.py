"""User model files: one ``.safetensors`` file holding the weights plus JSON metadata (architecture,
labels, preprocessing, training summary). The one writer (:func:`save_model_file`, which
``TrainedModel.save`` calls) and the one reader (:func:`read_model_file_metadata`,
:func:`read_head`) of the format. Written atomically; never overwritten silently; reading never
unpickles and never imports torch."""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
from pathlib import Path

import numpy as np

from cnndesk import __version__
from cnndesk.core.common.errors import ModelError
from cnndesk.core.common.paths import atomic_write
from cnndesk.core.images.preprocess import Preprocess

MODEL_FILE_SUFFIX = ".safetensors"
MODEL_FORMAT = "cnndesk-model"
MODEL_FORMAT_VERSION = 1


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
    """Write a model file. ``state_dict`` maps names to torch tensors or numpy arrays; ``extra``
    adds metadata (kind, base, head, training, metrics...). A missing suffix is added.

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
        # C order: safetensors writes a numpy array's buffer as it lies, so a Fortran-ordered one
        # (numpy's eigenvectors: full models' early-stage detector axes) came back transposed and
        # every image of such a model was flagged as unknown
        arrays[k] = v.detach().cpu().contiguous().numpy() if hasattr(v, "detach") else np.ascontiguousarray(v)
    blob = save_numpy(arrays, metadata={MODEL_FORMAT: json.dumps(info)})
    with atomic_write(path, "wb", overwrite=overwrite) as fh:
        fh.write(blob)
    return path


def read_model_file_metadata(path: str | os.PathLike) -> dict:
    """Read and validate the JSON metadata of a cnndesk model file without loading its weights
    (no torch). Raises ModelError with a one-line reason for anything unusable."""
    from safetensors import safe_open

    from cnndesk.core.common.safeio import path_text, require_regular_file
    from cnndesk.core.models.schema import SchemaError, parse_metadata

    path = Path(path)
    label = path_text(path.name)
    try:
        require_regular_file(path, "model file")  # a FIFO would block for ever
    except FileNotFoundError:
        raise ModelError(f"{label}: the model file does not exist") from None
    except ModelError:
        raise
    except OSError as exc:
        raise ModelError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    except Exception as exc:  # CnndeskError: not a regular file
        raise ModelError(str(exc)) from None
    try:
        key = _file_key(path)
        if key in _META_CACHE:  # listing resolves every head's base: read each file once
            return copy.deepcopy(_META_CACHE[key])
        check_header_size(path)  # before safetensors parses it: a 60 MB header took seconds per read
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except FileNotFoundError:
        raise ModelError(f"{label}: the model file does not exist") from None
    except Exception as exc:  # safetensors raises its own errors for damaged headers
        raise ModelError(
            f"{label}: not a valid cnndesk model file (damaged or not safetensors: {exc})"
        ) from None
    raw = meta.get(MODEL_FORMAT)
    if raw is None:
        raise ModelError(f"{label}: a safetensors file, but not a cnndesk model (no metadata)")
    try:
        info = parse_metadata(raw)
    except SchemaError as exc:
        raise ModelError(f"{label}: the model's metadata is damaged ({exc})") from None
    if len(_META_CACHE) >= 256:
        _META_CACHE.clear()
    _META_CACHE[key] = info
    return copy.deepcopy(info)


MAX_HEADER_BYTES = 16 << 20  # the header cnndesk writes: a few KB of metadata + ~100 bytes a tensor
_META_CACHE: dict[tuple, dict] = {}  # (path, size, mtime, inode) -> checked metadata


def _file_key(path: Path) -> tuple:
    st = os.stat(path)
    return (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ino)


def check_header_size(path: Path) -> None:
    """Refuse a safetensors header over MAX_HEADER_BYTES from its first 8 bytes (its length)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if len(head) == 8 and int.from_bytes(head, "little") > MAX_HEADER_BYTES:
        raise ValueError(f"its header is {int.from_bytes(head, 'little') / 1e6:.0f} MB; "
                         f"model files have at most {MAX_HEADER_BYTES >> 20} MB of metadata")


def read_head(spec):
    """The (weight, bias) numpy arrays of a quick-trained model file (no torch), checked: a 2-D
    weight of one row per label, a bias of one value per label, finite values."""
    import numpy as np
    from safetensors.numpy import load_file

    from cnndesk.core.common.safeio import path_text, require_regular_file

    path = spec.head.file if spec.head is not None else spec.metadata["file"]
    label = path_text(Path(path).name)
    try:
        require_regular_file(path, "model file")
        tensors = load_file(path)
        weight, bias = tensors["head.weight"], tensors["head.bias"]
    except KeyError as exc:
        raise ModelError(f"{label}: the model's weights are damaged (no {exc} tensor)") from None
    except Exception as exc:
        raise ModelError(f"{label}: the model's weights are damaged ({exc})") from None
    n = spec.num_classes
    if weight.ndim != 2 or weight.shape[0] != n or bias.shape != (n,) or weight.shape[1] < 1:
        raise ModelError(f"{label}: the head ({'x'.join(map(str, weight.shape))}) does not match its {n} labels")
    if weight.dtype.kind not in "fiu" or bias.dtype.kind not in "fiu":
        raise ModelError(f"{label}: the head's weights are not numbers")
    weight, bias = weight.astype("float32"), bias.astype("float32")
    if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
        raise ModelError(f"{label}: the head's weights contain NaN or infinite values (the file is damaged)")
    return weight, bias
