"""A user model with its trust data as one network (imports torch), for the ONNX export:
``forward(x) -> (logits, probabilities, novelty, unknown)`` where the probabilities carry the
model's calibration temperature and ``unknown`` is novelty above its threshold (core.trust)."""

from __future__ import annotations

import torch
from torch import nn

from cnndesk.core.models.registry import ModelSpec

OUTPUTS = ("logits", "probabilities", "novelty", "unknown")


class Detector(nn.Module):
    """``core.trust.Novelty.score`` of one detector, in torch (its own columns of the row)."""

    def __init__(self, novelty):
        super().__init__()
        f32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        self.register_buffer("mean", f32(novelty.mean))
        self.register_buffer("scale", f32(novelty.scale))
        proj = novelty.proj if novelty.proj is not None else torch.eye(len(novelty.mean))
        self.register_buffer("proj", f32(proj))
        self.register_buffer("bank", f32(novelty.bank))
        self.maha = novelty.metric in ("knn+maha", "knn+maha+synth")  # core.trust.Novelty.score, in torch
        self.synth = novelty.metric == "knn+maha+synth"
        if self.maha:
            self.register_buffer("means", f32(novelty.means))
            self.register_buffer("icov", f32(novelty.icov))
            self.register_buffer("norm", f32(novelty.norm))
        if self.synth:
            self.register_buffer("outliers", f32(novelty.outliers))

    def forward(self, f):
        c = ((f - self.mean) / self.scale) @ self.proj
        z = c / (c.norm(dim=1, keepdim=True) + 1e-12)
        knn = novelty = 1.0 - (z @ self.bank.T).amax(dim=1)
        if self.maha:
            ca = c @ self.icov
            d = ((ca * c).sum(1, keepdim=True) - 2.0 * (ca @ self.means.T)
                 + ((self.means @ self.icov) * self.means).sum(1)[None, :])
            maha = d.amin(dim=1).clamp_min(0.0)
            n = self.norm
            novelty = torch.maximum((novelty - n[0]) / n[1], (maha - n[2]) / n[3])
        if self.synth:
            out = 1.0 - (z @ self.outliers.T).amax(dim=1)
            novelty = torch.maximum(novelty, (knn / (knn + out + 1e-6) - n[4]) / n[5])
        return novelty


class TrustNet(nn.Module):
    def __init__(self, features: nn.Module, weight, bias, temperature: float, novelty, threshold: float):
        super().__init__()
        self.features = features
        self.head = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            self.head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        f32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        self.register_buffer("temperature", f32([temperature]))
        self.register_buffer("threshold", f32([threshold]))
        self.detector = Detector(novelty)
        # full models' early-stage detector (core.trust.Novelty.early): the row's first columns
        self.lead = int(getattr(novelty, "lead", 0)) if getattr(novelty, "early", None) is not None else 0
        self.early = Detector(novelty.early) if self.lead else None
        self.early_width = len(novelty.early.mean) if self.lead else 0

    def forward(self, x):
        f = self.features(x).flatten(1)
        logits = self.head(f)
        probs = torch.softmax(logits / self.temperature, dim=1)
        if self.early is None:
            novelty = self.detector(f)
        else:
            novelty = (self.detector(f[:, self.lead:]) + self.early(f[:, :self.early_width])) * 0.5
        return logits, probs, novelty, novelty > self.threshold


def trust_net(spec: ModelSpec, threshold: float | None = None) -> TrustNet | None:
    """The network of a user model with a novelty detector, or None for any other model."""
    from cnndesk.core.runtime.resolve import torch_model
    from cnndesk.core.trust.scores import load_trust

    t = load_trust(spec)
    if t.novelty is None:
        return None
    if spec.head is not None:  # quick: the base network's (multi-stage) features + the head
        from cnndesk.core.models.registry import read_head

        weight, bias = read_head(spec)
        feats = torch_model(spec, spec.head.variant)
    else:
        if t.head is None:
            return None
        weight, bias = t.head
        feats = torch_model(spec, t.variant)  # a "multi" detector: the multi-stage features
    thr = t.novelty.threshold if threshold is None else threshold
    return TrustNet(feats, weight, bias, t.temperature, t.novelty, thr).eval()
