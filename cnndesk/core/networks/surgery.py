"""Head surgery on a built network (imports torch): the network without its classifier (the
pooled embedding), a new linear classifier in its place, and the classifier's input width."""

from __future__ import annotations

import torch
from torch import nn

from cnndesk.core.common.errors import ModelError
from cnndesk.core.networks.adapters import adapter_for


def feature_extractor_width(model: nn.Module, arch: str) -> int | None:
    """The width of the features the classifier reads, without changing the network."""
    return adapter_for(arch).width(model)


def feature_extractor(model: nn.Module, arch: str) -> tuple[nn.Module, int]:
    """The network up to its penultimate layer (the pooled embedding) and that embedding's size
    (the family's adapter removes the classifier)."""
    return adapter_for(arch).remove_head(model)


def attach_head(model: nn.Module, arch: str, weight, bias) -> nn.Module:
    """Replace the classifier of ``model`` with a linear layer holding ``weight``/``bias``."""
    weight = torch.as_tensor(weight, dtype=torch.float32)
    bias = torch.as_tensor(bias, dtype=torch.float32)
    adapter = adapter_for(arch)
    width = adapter.width(model)
    if weight.ndim != 2 or bias.shape != (weight.shape[0],) or (width is not None and weight.shape[1] != width):
        raise ModelError(f"the head ({tuple(weight.shape)}) does not fit {arch} ({width} features)")
    linear = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    return adapter.replace_head(model, linear).eval()
