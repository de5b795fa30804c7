"""One adapter per architecture family: where a network keeps its classifier, its stages and the
layers trained along with the last stages (imports torch only inside functions).

Everything that needs to know a network's layout — replacing or removing the classifier (quick and
full training, export, the multi-stage feature extractor), unfreezing the last N stages (full
training), the stages whose outputs are pooled for quick mode's multi-stage features, the stage
containers the explainer expands — asks :func:`adapter_for` instead of branching on the
architecture id. The fields follow timm's pretrained config (``classifier`` names the head,
``first_conv`` the stem). Adding a family is one :func:`register` call::

    register(Adapter("regnet", lambda arch: arch.startswith("torchvision:regnet"),
                     classifier="fc", stages=("trunk_output",)))

Families registered later are matched first, so a specific family can refine a general one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cnndesk.core.common.errors import ModelError


def _get(model, path: str):
    """The sub-module at a dotted path ("classifier", "classifier.-1", "head.fc")."""
    m = model
    for part in path.split("."):
        m = m[int(part)] if part.lstrip("-").isdigit() else getattr(m, part)
    return m


def _set(model, path: str, module) -> None:
    parent_path, _, last = path.rpartition(".")
    parent = _get(model, parent_path) if parent_path else model
    if last.lstrip("-").isdigit():
        parent[int(last)] = module
    else:
        setattr(parent, last, module)


def _has(model, path: str) -> bool:
    try:
        _get(model, path)
    except (AttributeError, IndexError, KeyError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class Adapter:
    """How one architecture family is laid out.

    * ``classifier``: dotted path to the final linear layer (the head);
    * ``head_block``: the module trained along with the head (a classifier ``Sequential`` whose last
      layer is the head; default: the head itself);
    * ``stages``: the stage containers in order (their children are the stages: ``("blocks",)``,
      ``("features",)``) or the stages themselves (``("layer1", ..., "layer4")``);
    * ``tail``: layers between the last stage and the head, trained whenever any stage is
      (``conv_head``, ``bn2``); missing names are skipped;
    * ``taps``: which stages quick mode's multi-stage features pool ((start, stop) of the stages);
    * ``first_conv``: the stem convolution (informative, as in timm's config).
    """

    family: str
    matches: Callable[[str], bool]
    classifier: str
    stages: tuple[str, ...]
    head_block: str | None = None
    tail: tuple[str, ...] = ()
    taps: tuple[int | None, int | None] = (-3, None)  # a slice of the stages
    first_conv: str | None = None

    # -- the head ------------------------------------------------------------------------------
    def head_path(self, model) -> str:
        return self.classifier

    def head(self, model):
        """The final linear layer."""
        try:
            return _get(model, self.head_path(model))
        except (AttributeError, IndexError, KeyError, TypeError):
            raise ModelError(f"no classifier at '{self.head_path(model)}' in this {self.family} network") from None

    def width(self, model) -> int | None:
        """The width of the features the head reads."""
        return getattr(self.head(model), "in_features", None)

    def replace_head(self, model, module):
        """Put ``module`` where the classifier is; returns the model."""
        _set(model, self.head_path(model), module)
        if hasattr(model, "num_classes") and hasattr(module, "out_features"):
            model.num_classes = module.out_features
        return model

    def new_head(self, model, num_classes: int):
        """A freshly initialised linear head for ``num_classes`` (small random weights, zero bias)."""
        from torch import nn

        width = self.width(model)
        if width is None:
            raise ModelError(f"cannot tell the feature width of this {self.family} network")
        linear = nn.Linear(width, num_classes)
        nn.init.normal_(linear.weight, std=0.01)
        nn.init.zeros_(linear.bias)
        return self.replace_head(model, linear)

    def remove_head(self, model):
        """The network up to its pooled penultimate layer: (model, embedding width)."""
        from torch import nn

        head = self.head(model)
        if not isinstance(head, nn.Linear):
            raise ModelError(f"quick training does not support this {self.family} network (its classifier is "
                             f"{type(head).__name__}, not a linear layer)")
        dim = head.in_features
        _set(model, self.head_path(model), nn.Identity())
        return model, dim

    # -- stages --------------------------------------------------------------------------------
    def stage_list(self, model) -> list:
        """The stages in order."""
        out = []
        for name in self.stages:
            if not _has(model, name):
                continue
            m = _get(model, name)
            if len(self.stages) == 1:
                out.extend(m.children())
            else:
                out.append(m)
        if not out:
            raise ModelError(f"no stages found in this {self.family} network ({', '.join(self.stages)})")
        return out

    def tap_modules(self, model) -> list:
        """The stages whose outputs quick mode's multi-stage features pool."""
        return self.stage_list(model)[slice(*self.taps)]

    def unfreeze(self, model, blocks: int) -> None:
        """Train the last ``blocks`` stages, the layers after them and the head (0 or less: all)."""
        params = list(model.parameters())
        for p in params:
            p.requires_grad = blocks <= 0
        if blocks <= 0:
            return
        parts = self.stage_list(model)[-blocks:]
        parts += [_get(model, n) for n in self.tail if _has(model, n)]
        parts.append(_get(model, self.head_block) if self.head_block else self.head(model))
        for m in parts:
            for p in m.parameters():
                p.requires_grad = True


@dataclass(frozen=True)
class TimmAdapter(Adapter):
    """timm networks name their classifier in their pretrained config; removing it goes through
    timm's own ``reset_classifier`` (which also handles pooling)."""

    def head_path(self, model) -> str:
        cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
        name = cfg.get("classifier") if isinstance(cfg, dict) else None
        return name if isinstance(name, str) and _has(model, name) else self.classifier

    def remove_head(self, model):
        from torch import nn

        head = self.head(model)
        dim = getattr(model, "num_features", None) or getattr(head, "in_features", None)
        if hasattr(model, "reset_classifier"):
            model.reset_classifier(0)
        else:
            _set(model, self.head_path(model), nn.Identity())
        return model, dim

    def width(self, model) -> int | None:
        return getattr(model, "num_features", None) or super().width(model)

    def replace_head(self, model, module):
        if hasattr(model, "reset_classifier"):
            model.reset_classifier(0)
        return super().replace_head(model, module)


_REGISTRY: list[Adapter] = []


def register(adapter: Adapter) -> Adapter:
    """Add (or replace, by family name) an architecture family; later entries are matched first."""
    _REGISTRY[:] = [a for a in _REGISTRY if a.family != adapter.family]
    _REGISTRY.append(adapter)
    return adapter


def unregister(family: str) -> None:
    _REGISTRY[:] = [a for a in _REGISTRY if a.family != family]


def adapter_for(arch: str) -> Adapter:
    """The adapter of an architecture id ("timm:<name>", "torchvision:<name>")."""
    for a in reversed(_REGISTRY):
        if a.matches(arch):
            return a
    raise ModelError(f"no adapter knows the layout of {str(arch)[:80]!r}")


def families() -> list[str]:
    return [a.family for a in _REGISTRY]


def stage_containers() -> set[str]:
    """Names of modules whose children are stages (the explainer lists those children)."""
    names = {"stages"}
    for a in _REGISTRY:
        if len(a.stages) == 1:
            names.add(a.stages[0])
    return names


def _torchvision(*prefixes: str) -> Callable[[str], bool]:
    def match(arch: str) -> bool:
        family, _, name = arch.partition(":")
        return family == "torchvision" and (not prefixes or name.startswith(prefixes))

    return match


# torchvision's other classifiers (MobileNet, EfficientNet, ConvNeXt, VGG...): features + classifier[-1]
register(Adapter("torchvision", _torchvision(), classifier="classifier.-1", head_block="classifier",
                 stages=("features",), taps=(-4, -1), first_conv="features.0.0"))
# ResNet-like torchvision networks: layer1..layer4 + fc
register(Adapter("torchvision-resnet", _torchvision("resnet", "resnext", "wide_resnet"), classifier="fc",
                 stages=("layer1", "layer2", "layer3", "layer4"), first_conv="conv1"))
# timm networks with a `blocks` container (EfficientNet, MobileNet, ...)
register(TimmAdapter("timm", lambda arch: arch.partition(":")[0] == "timm", classifier="classifier",
                     stages=("blocks",), tail=("conv_head", "bn2"), first_conv="conv_stem"))
