"""What happens inside the CNN: Grad-CAM and occlusion heatmaps, the network as a list of stages
with shapes, parameters and multiply-accumulates, feature maps, and the first layer's filters.

Grad-CAM, feature maps and the layer list need PyTorch (gradients, hooks). Occlusion sensitivity
needs only forward passes, so it runs on any Classifier (ONNX Runtime included) without torch.
Heatmaps come back at the model's input size and can be mapped onto the original photo
(``to_image_heat``), matching its own height and width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from cnndesk.core.images.preprocess import Preprocess
from cnndesk.core.models.registry import ModelSpec

# Overlays and heatmaps are made at most this many pixels on their longest side: a full-size
# float heatmap and overlay of a 169-megapixel image would take over 10 GB.
MAX_OVERLAY_SIDE = 2048

CAPTIONS = {
    "convolution": "Convolution: slides small learned filters over the image to detect local patterns — edges and colours early, shapes and parts deeper.",
    "block": "Block: a few convolutions with a shortcut; each stage sees a larger area and finds more complex features.",
    "normalization": "Normalization: rescales each channel so the next layers get well-behaved numbers.",
    "activation": "Activation: keeps positive evidence and silences the rest (ReLU-like), adding non-linearity.",
    "pooling": "Pooling: shrinks each feature map to a summary — here one number per channel for the whole image.",
    "fully connected": "Fully connected: weighs every feature to score each class; the highest score wins.",
    "other": "A step of the network.",
}


@dataclass
class Stage:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int

    @property
    def caption(self) -> str:
        return CAPTIONS.get(self.kind, CAPTIONS["other"])


def _kind(module) -> str:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        return "convolution"
    if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)) or "Norm" in type(module).__name__:
        return "normalization"
    if isinstance(module, (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Sigmoid)) or "Act" in type(module).__name__:
        return "activation"
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.AvgPool2d)) or "Pool" in type(module).__name__:
        return "pooling"
    if isinstance(module, nn.Linear):
        return "fully connected"
    if isinstance(module, nn.Sequential) and module and isinstance(module[-1], nn.Linear):
        return "fully connected"
    if isinstance(module, nn.Identity):
        return "other"
    return "block"


def stage_modules(model) -> list[tuple[str, object]]:
    """Top-level children, with the usual stage containers (blocks, features, layerN) expanded."""
    from torch import nn

    from cnndesk.core.networks.adapters import stage_containers

    out = []
    for name, child in model.named_children():
        if name in stage_containers() and isinstance(child, (nn.Sequential, nn.ModuleList)):
            for sub_name, sub in child.named_children():
                out.append((f"{name}.{sub_name}", sub))
        elif isinstance(child, nn.Identity):
            continue
        else:
            out.append((name, child))
    return out


class Explainer:
    """A PyTorch copy of a model for looking inside it (build once, on a worker)."""

    def __init__(self, spec: ModelSpec, model=None, device: str = "cpu"):
        import torch

        from cnndesk.core.runtime.resolve import torch_model

        self.spec = spec
        self.preprocess: Preprocess = spec.preprocess
        self.labels = spec.labels
        self.device = torch.device(device)
        self.model = (model if model is not None else torch_model(spec)).eval().to(self.device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.input_size = spec.input_size
        self._torch = torch
        self._stages: list[Stage] | None = None
        self.target = self._find_target_layer()

    # -- structure ------------------------------------------------------------------------------
    def _trace(self, x, modules: list[tuple[str, object]]):
        """Run a forward pass recording each module's output (hooks), return outputs by name."""
        outputs = {}
        handles = []
        for name, m in modules:
            handles.append(m.register_forward_hook(lambda mod, inp, out, name=name: outputs.__setitem__(name, out)))
        try:
            with self._torch.no_grad():
                logits = self.model(x)
        finally:
            for h in handles:
                h.remove()
        return outputs, logits

    def _find_target_layer(self):
        """The last stage producing a spatial (N, C, H, W) map with H, W > 1: the last
        convolutional stage, where Grad-CAM has the most semantic and still spatial features.
        Stages, not inner modules: an inner module may run several times per pass (ResNet's
        shared ReLU), which would mix up activations and gradients."""
        x = self._torch.zeros(1, 3, self.input_size, self.input_size, device=self.device)
        named = stage_modules(self.model)
        outputs, _ = self._trace(x, named)
        best = None
        for name, _ in named:
            out = outputs.get(name)
            if isinstance(out, self._torch.Tensor) and out.dim() == 4 and out.shape[2] > 1 and out.shape[3] > 1:
                best = name
        if best is None:
            raise ValueError("this network has no spatial layer to explain")
        return dict(named)[best]

    def stages(self) -> list[Stage]:
        if self._stages is not None:
            return self._stages
        torch = self._torch
        mods = stage_modules(self.model)
        macs = {name: 0 for name, _ in mods}
        owner = {}
        for name, m in mods:
            for sub in m.modules():
                owner[id(sub)] = name
        handles = []

        def count(mod, inp, out):
            n = owner.get(id(mod))
            if n is None:
                return
            if isinstance(mod, torch.nn.Conv2d):
                k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
                macs[n] += int(out.numel() * k)
            elif isinstance(mod, torch.nn.Linear):
                macs[n] += int(mod.in_features * mod.out_features * (out.numel() // mod.out_features))

        for m in self.model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                handles.append(m.register_forward_hook(count))
        try:
            x = torch.zeros(1, 3, self.input_size, self.input_size, device=self.device)
            outputs, _ = self._trace(x, mods)
        finally:
            for h in handles:
                h.remove()
        self._stages = [
            Stage(name, _kind(m), tuple(outputs[name].shape[1:]) if isinstance(outputs.get(name), torch.Tensor) else (),
                  sum(p.numel() for p in m.parameters()), macs[name])
            for name, m in mods
        ]
        return self._stages

    def summary(self) -> dict:
        stages = self.stages()
        return {
            "model": self.spec.title,
            "architecture": self.spec.arch,
            "input": f"3 x {self.input_size} x {self.input_size}",
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "macs": sum(s.macs for s in stages),
            "classes": len(self.labels),
            "stages": len(stages),
        }

    def summary_text(self) -> str:
        s = self.summary()
        lines = [f"{s['model']} ({s['architecture']})",
                 f"input {s['input']} · {s['parameters'] / 1e6:.2f} M parameters · "
                 f"{s['macs'] / 1e6:.0f} M multiply-accumulates per image · {s['classes']} classes", "",
                 f"{'stage':<16}{'kind':<17}{'output':<18}{'parameters':>12}{'MACs':>14}"]
        for st in self.stages():
            shape = " x ".join(map(str, st.output_shape))
            lines.append(f"{st.name:<16}{st.kind:<17}{shape:<18}{st.params:>12,}{st.macs:>14,}")
        return "\n".join(lines)

    # -- inputs ---------------------------------------------------------------------------------
    def tensor(self, image: Image.Image):
        return self._torch.from_numpy(self.preprocess(image)[None]).to(self.device)

    def predict(self, image: Image.Image) -> np.ndarray:
        with self._torch.no_grad():
            return self._torch.softmax(self.model(self.tensor(image)), 1)[0].cpu().numpy()

    # -- Grad-CAM ---------------------------------------------------------------------------------
    def gradcam(self, image: Image.Image, class_index: int | None = None) -> tuple[np.ndarray, int]:
        """Grad-CAM at the model's input size (crop x crop), values in [0, 1]; and the class."""
        torch = self._torch
        x = self.tensor(image).requires_grad_(True)
        store = {}

        def fwd(mod, inp, out):
            store["act"] = out
            out.register_hook(lambda g: store.__setitem__("grad", g))

        h = self.target.register_forward_hook(fwd)
        try:
            with torch.enable_grad():
                logits = self.model(x)
                idx = int(logits[0].argmax()) if class_index is None else int(class_index)
                self.model.zero_grad(set_to_none=True)
                logits[0, idx].backward()
        finally:
            h.remove()
        act, grad = store["act"][0], store["grad"][0]  # (C, h, w)
        weights = grad.mean(dim=(1, 2))
        cam = torch.relu((weights[:, None, None] * act).sum(0)).detach()
        cam = torch.nn.functional.interpolate(cam[None, None], size=(self.input_size, self.input_size),
                                              mode="bilinear", align_corners=False)[0, 0].cpu().numpy()
        return _normalize(cam), idx

    # -- feature maps and filters -----------------------------------------------------------------
    def feature_maps(self, image: Image.Image, stage: str, limit: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """The stage's output for ``image`` as (maps[limit, h, w] in [0, 1], channel indices), the
        most active channels first. Vectors (pooling, classifier) come back as 1 x N maps."""
        mods = dict(stage_modules(self.model))
        outputs, _ = self._trace(self.tensor(image), [(stage, mods[stage])])
        out = outputs[stage][0].float()
        if out.dim() == 1:
            out = out[:, None, None]
        act = out.cpu().numpy()
        order = np.argsort(-act.reshape(act.shape[0], -1).mean(1))[:limit]
        maps = np.stack([_normalize(act[c]) for c in order])
        return maps, order

    def first_conv_filters(self) -> np.ndarray:
        """The first convolution's learned filters as RGB patches: (out_channels, k, k, 3) in [0, 1]."""
        for m in self.model.modules():
            if isinstance(m, self._torch.nn.Conv2d):
                w = m.weight.detach().cpu().numpy()  # (C, 3, k, k)
                out = []
                for f in w:
                    f = f - f.min()
                    f = f / (f.max() or 1.0)
                    out.append(np.transpose(f, (1, 2, 0)))
                return np.stack(out)
        raise ValueError("no convolution in this network")


def occlusion(classifier, image: Image.Image, class_index: int | None = None, patch: int = 48, stride: int = 12,
              cancel=None) -> tuple[np.ndarray, int]:
    """Occlusion sensitivity: how much the class's probability drops when a grey patch hides each
    part of the (preprocessed) image. Forward passes only (works on ONNX Runtime). [0, 1] map at
    the input size."""
    x = classifier.prepare(image)
    size = x.shape[1]
    base = classifier.predict_arrays(x[None], len(classifier.labels))[0]
    idx = base.indices[0] if class_index is None else int(class_index)
    # raw softmax on both sides: a calibration temperature below 1 saturates the probabilities and
    # would flatten the map (the ranking, and so the explained class, is the same)
    from cnndesk.core.trust.scores import softmax

    p0 = float(softmax(classifier.logits(x[None]))[0, idx])
    positions = [(top, left) for top in range(0, size - patch + stride, stride) for left in range(0, size - patch + stride, stride)]
    heat = np.zeros((size, size), np.float64)
    count = np.zeros((size, size), np.float64)
    batch = []

    def flush():
        arr = np.stack([b for _, b in batch])
        probs = softmax(classifier.logits(arr))[:, idx]
        for (top, left), p in zip([pos for pos, _ in batch], probs, strict=True):
            heat[top:top + patch, left:left + patch] += max(0.0, p0 - float(p))
            count[top:top + patch, left:left + patch] += 1
        batch.clear()

    for top, left in positions:
        if cancel is not None:
            cancel.raise_if_cancelled()
        occluded = x.copy()
        occluded[:, top:top + patch, left:left + patch] = 0.0  # the mean colour after normalization
        batch.append(((top, left), occluded))
        if len(batch) == 16:
            flush()
    if batch:
        flush()
    return _normalize(heat / np.maximum(count, 1)), idx


def to_image_heat(heat: np.ndarray, image_size: tuple[int, int], pre: Preprocess) -> np.ndarray:
    """Map a heatmap over the model's centre crop back onto the whole image (W, H): the region the
    model never saw (outside the crop) is 0. Returns float32 (H, W) in [0, 1]."""
    w, h = image_size
    scale = pre.resize / min(w, h)
    rw, rh = int(round(w * scale)), int(round(h * scale))
    c = pre.crop
    left = int(round((rw - c) / 2.0))
    top = int(round((rh - c) / 2.0))
    # crop box in original pixels
    x0, y0 = left / scale, top / scale
    x1, y1 = (left + c) / scale, (top + c) / scale
    box_w, box_h = max(1, int(round(x1 - x0))), max(1, int(round(y1 - y0)))
    up = np.asarray(Image.fromarray(heat.astype(np.float32), "F").resize((box_w, box_h), Image.Resampling.BILINEAR))
    full = np.zeros((h, w), np.float32)
    ix, iy = int(round(x0)), int(round(y0))
    sx0, sy0 = max(0, -ix), max(0, -iy)
    dx0, dy0 = max(0, ix), max(0, iy)
    dx1, dy1 = min(w, ix + box_w), min(h, iy + box_h)
    full[dy0:dy1, dx0:dx1] = up[sy0:sy0 + dy1 - dy0, sx0:sx0 + dx1 - dx0]
    return np.clip(full, 0.0, 1.0)


def overlay(image: Image.Image, heat: np.ndarray, opacity: float = 0.5) -> Image.Image:
    """Blend a [0, 1] heatmap of the image's size over it with a blue-to-red colour map; the
    overlay is at most ``MAX_OVERLAY_SIDE`` pixels on its longer side, whatever it is given."""
    if max(image.size) > MAX_OVERLAY_SIDE:
        f = MAX_OVERLAY_SIDE / max(image.size)
        size = (max(1, round(image.width * f)), max(1, round(image.height * f)))
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        heat = np.asarray(Image.fromarray(np.asarray(heat, np.float32), "F").resize(size, Image.Resampling.BILINEAR))
    h = np.clip(heat, 0, 1)
    colors = np.stack([
        np.clip(1.5 - np.abs(4 * h - 3), 0, 1),  # red
        np.clip(1.5 - np.abs(4 * h - 2), 0, 1),  # green
        np.clip(1.5 - np.abs(4 * h - 1), 0, 1),  # blue
    ], -1)
    rgb = np.asarray(image.convert("RGB"), np.float32) / 255
    alpha = opacity * (0.35 + 0.65 * h)[..., None]
    out = rgb * (1 - alpha) + colors * alpha
    return Image.fromarray((out * 255 + 0.5).astype(np.uint8))


def _normalize(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi - lo < 1e-12:
        return np.zeros_like(a, np.float32)
    return ((a - lo) / (hi - lo)).astype(np.float32)
