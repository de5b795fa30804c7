"""Check a model file's weights against its architecture *before* the network is built: the
tensor names and shapes come from the safetensors header (no weights read) and the network is
created on PyTorch's ``meta`` device (no memory, no initialisation). A 460-byte file asking for
``timm:vit_gigantic_patch14_clip_224`` used to cost 8 GB and 36 s before "weights do not fit";
now it costs the header read and a meta build (about 1 s). Imports torch (called from build.py).
"""

from __future__ import annotations

from pathlib import Path

from cnndesk.core.common.errors import ModelError


class _Shape:
    """Stands in for a tensor where only ``.shape`` is looked at (build.map_state_dict)."""

    def __init__(self, shape):
        self.shape = tuple(shape)


def header_shapes(path: str | Path) -> dict[str, _Shape]:
    """{tensor name: shape} from a safetensors file's header (the novelty detector's tensors left out)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            return {k: _Shape(f.get_slice(k).get_shape()) for k in f.keys() if not k.startswith("novelty.")}
    except Exception as exc:  # damaged header: the same words as the full read would give
        raise ModelError(f"{Path(path).name}: the weights file is damaged or unreadable ({exc})") from None


def check_fits(arch: str, num_classes: int, path: str | Path, mapping: str, create, fit) -> None:
    """Raise ModelError ("weights do not fit the architecture: ...") when the file's tensors do not
    match the network ``arch`` would have; nothing is allocated. Only safetensors files (a ``.pth``
    has no header to read without loading it); a network that cannot be built on the meta device
    is checked after building, as before. ``create(arch, num_classes)`` builds the network and
    ``fit(model, state, mapping)`` matches tensors to it (``build.create_architecture`` and
    ``build.map_state_dict``, passed in: this module sits below build)."""
    import torch

    if Path(path).suffix != ".safetensors":
        return
    shapes = header_shapes(path)
    try:
        with torch.device("meta"):
            model = create(arch, num_classes)
    except ModelError:
        raise
    except Exception:  # noqa: BLE001 - some constructors need real tensors: the full build checks
        return
    fit(model, shapes, mapping)  # raises ModelError naming the first mismatch
