"""Multi-stage embeddings (imports torch): one forward pass, the mean- and max-pooled outputs of a
few late stages of the network next to its usual pooled penultimate layer.

Images far from ImageNet (small symbols, textures, scans) are described much better by the
intermediate stages than by the last layer alone (Head2Toe, Evci et al. 2022): a linear head on
these features closes most of the gap to fine-tuning the whole network. The module is exported to
ONNX once (``onnx_cache`` variant "multi") so quick training and classification stay torch-free.
"""

from __future__ import annotations

import torch
from torch import nn

from cnndesk.core.common.errors import ModelError


def tap_modules(model: nn.Module, arch: str) -> list[nn.Module]:
    """The stages whose outputs are pooled (three late ones; the family's adapter says which)."""
    from cnndesk.core.networks.adapters import adapter_for

    taps = adapter_for(arch).tap_modules(model)
    if not taps:
        raise ModelError(f"multi-stage features are not supported for {arch}")
    return taps


EARLY_STAGES = 2  # full models' "multi_early" features: this many stages before the late ones


def early_tap_modules(model: nn.Module, arch: str) -> tuple[list[nn.Module], int]:
    """(taps, lead): the late stages of :func:`tap_modules` preceded by up to EARLY_STAGES earlier
    ones (``lead`` of them; 0: the network has none). The row of ``MultiStage`` on these taps ends
    with exactly the "multi" row, so a detector of the "multi" features reads its tail."""
    from cnndesk.core.networks.adapters import adapter_for

    adapter = adapter_for(arch)
    stages = adapter.stage_list(model)
    late = tap_modules(model, arch)
    start = next(i for i, s in enumerate(stages) if s is late[0])
    first = max(0, start - EARLY_STAGES)
    return stages[first:start] + late, start - first


class MultiStage(nn.Module):
    """``forward(x) -> [mean(s1), max(s1), ..., mean(s3), max(s3), penultimate]`` (one row per
    image). ``body`` is the network without its classifier (``build.feature_extractor``)."""

    def __init__(self, body: nn.Module, taps: list[nn.Module]):
        super().__init__()
        self.body = body
        self._taps = taps
        self._store: list[torch.Tensor] = []
        for t in taps:
            t.register_forward_hook(self._keep)

    def _keep(self, _module, _inp, out):
        self._store.append(out)

    def forward(self, x):
        self._store = []
        last = self.body(x)
        parts = []
        for s in self._store:
            parts.append(s.mean(dim=(2, 3)))
            parts.append(s.amax(dim=(2, 3)))
        self._store = []
        return torch.cat(parts + [last.flatten(1)], dim=1)


def multistage_extractor(model: nn.Module, arch: str, early: bool = False) -> nn.Module:
    """The "multi" features network (``early``: "multi_early", :func:`early_tap_modules`)."""
    from cnndesk.core.networks.surgery import feature_extractor

    taps = early_tap_modules(model, arch)[0] if early else tap_modules(model, arch)
    body, _ = feature_extractor(model, arch)
    return MultiStage(body, taps).eval()


class QuickNet(nn.Module):
    """A quick-trained model on multi-stage features as one network (export, Grad-CAM): the base
    network's stages stay top-level children, so the explainer finds them as in the base model."""

    def __init__(self, multistage: MultiStage, linear: nn.Linear):
        super().__init__()
        for name, child in multistage.body.named_children():
            self.add_module(name, child)
        self.head = linear
        self._multistage = [multistage]  # a list: not registered twice

    def forward(self, x):
        return self.head(self._multistage[0](x))


def quick_net(base_model: nn.Module, arch: str, weight, bias) -> nn.Module:
    weight = torch.as_tensor(weight, dtype=torch.float32)
    linear = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return QuickNet(multistage_extractor(base_model, arch), linear).eval()
