"""Build a PyTorch ``nn.Module`` for a registry entry with its weights loaded. Imports torch.

Weights never execute code when loaded: ``.pth`` files go through ``torch.load(weights_only=True)``
and user model files are safetensors.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cnndesk.core.common.errors import ModelError
from cnndesk.core.common.progress import CancelToken, ProgressCallback
from cnndesk.core.models.registry import MODEL_FILE_SUFFIX, ModelSpec
from cnndesk.core.networks.surgery import attach_head


def create_architecture(arch: str, num_classes: int) -> nn.Module:
    """An untrained network for an architecture id ("timm:<name>" or "torchvision:<name>").
    Only names the installed timm/torchvision know are built (nothing that resolves on the
    network, such as timm's ``hf-hub:`` names)."""
    from cnndesk.core.models.schema import ARCH_RE

    if not isinstance(arch, str) or not ARCH_RE.match(arch):
        raise ModelError(f"unsupported architecture {str(arch)[:80]!r}")
    family, _, name = arch.partition(":")
    if not 1 <= num_classes <= 100_000:
        raise ModelError(f"a network with {num_classes} classes is not supported")
    if family == "timm":
        import timm

        if not timm.is_model(name.split(".")[0]):
            raise ModelError(f"unknown architecture {arch!r} (not in this timm)")
        return timm.create_model(name.split(".")[0], pretrained=False, num_classes=num_classes)
    import torchvision

    if name not in torchvision.models.list_models():
        raise ModelError(f"unknown architecture {arch!r} (not in this torchvision)")
    return torchvision.models.get_model(name, weights=None, num_classes=num_classes)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from cnndesk.core.common.safeio import require_regular_file

    try:
        require_regular_file(path, "weights file")
        if path.suffix == MODEL_FILE_SUFFIX:
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
            # the novelty detector's tensors travel in the same file (core.trust)
            state = {k: v for k, v in state.items() if not k.startswith("novelty.")}
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except ModelError:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "pickle" in type(exc).__name__.lower():
            text = "not a plain weights file; cnndesk never runs code from a weights file"
        raise ModelError(f"{path.name}: the weights file is damaged or unreadable ({text[:200]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path.name}: the weights file does not hold a set of named tensors")
    return state


def map_state_dict(
    model: nn.Module, state: dict[str, torch.Tensor], mapping: str
) -> dict[str, torch.Tensor]:
    """Match checkpoint tensors to the model's, by name or by position (same order, same shapes).

    Raises ModelError naming the first mismatch.
    """
    target = model.state_dict()
    if mapping == "positional":
        if len(state) != len(target):
            raise ModelError(
                f"weights do not fit the architecture: {len(state)} tensors, expected {len(target)}"
            )
        out = {}
        for (src_key, src), (dst_key, dst) in zip(state.items(), target.items(), strict=True):
            if tuple(src.shape) != tuple(dst.shape):
                raise ModelError(
                    f"weights do not fit the architecture: {src_key} {tuple(src.shape)} "
                    f"vs {dst_key} {tuple(dst.shape)}"
                )
            out[dst_key] = src
        return out
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    if missing or unexpected:
        raise ModelError(
            "weights do not fit the architecture: "
            f"missing {missing[:3]}{'…' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'…' if len(unexpected) > 3 else ''}"
        )
    for k, v in target.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ModelError(
                f"weights do not fit the architecture: {k} {tuple(state[k].shape)} "
                f"vs {tuple(v.shape)}"
            )
    return state


def build_model(
    spec: ModelSpec,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    *,
    weights: Path,
) -> nn.Module:
    """The network of ``spec`` with its weights, in eval mode, on the CPU. ``weights``: the file
    :func:`cnndesk.core.runtime.resolve.resolve` found (a quick model's: its base's). Only the
    runtime gets weights; callers elsewhere use ``runtime.resolve.torch_model``."""
    if spec.base is not None:  # a quick-trained model: the base network plus a linear head
        from cnndesk.core.models.registry import read_head

        weight, bias = read_head(spec)
        base_model = build_model(spec.base, progress, cancel, weights=weights)
        if spec.head is not None and spec.head.features == "multi":
            from cnndesk.core.networks.multistage import quick_net

            return quick_net(base_model, spec.base.arch, weight, bias)
        return attach_head(base_model, spec.base.arch, weight, bias)
    from cnndesk.core.networks.weights_fit import check_fits

    # header vs a meta network: nothing built yet
    check_fits(spec.arch, spec.num_classes, weights, spec.key_mapping, create_architecture, map_state_dict)
    model = create_architecture(spec.arch, spec.num_classes)
    state = map_state_dict(model, read_state_dict(Path(weights)), spec.key_mapping)
    model.load_state_dict(state, strict=True)
    return model.eval()
