"""The one way from a model spec to its weights and its verified ONNX export: :func:`resolve` is the
only caller of weight downloads (``ensure_weights``), export-cache lookups and export-on-miss;
:func:`torch_model` builds the PyTorch network of a spec and variant from the resolved weights.

Variants: "logits" (the classifier), "features" (the pooled embedding before it), "multi" (mean+max
pooled late stages plus that embedding, :mod:`cnndesk.core.networks.multistage`), "multi_early" (the
same row preceded by two earlier stages: full models' detector, issue 23).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnndesk.core.common import system
from cnndesk.core.common.errors import ModelError
from cnndesk.core.common.progress import CancelToken, ProgressCallback, check, report
from cnndesk.core.models.registry import ModelSpec

VARIANTS = ("logits", "features", "multi", "multi_early")


@dataclass
class Resolved:
    """A network's weights on disk and its cached export of one variant (None: not exported)."""

    spec: ModelSpec  # the network (a quick model's base)
    variant: str
    weights: Path
    entry: object = None  # onnx_cache.OnnxEntry or None
    key: str | None = None  # the export-cache key (None until looked up)
    model: object = None  # the torch network built for an export, reused as the fallback

    def retryable(self) -> bool:
        """A recorded failed export that the next export may still retry (fewer than
        ``EXPORT_ATTEMPTS`` tries so far, and torch here to try with)."""
        from cnndesk.core.runtime import export_cache as onnx_cache

        if self.entry is None or self.entry.ok:
            return False
        tries = int(self.entry.record.get("attempts", 1))
        return tries < onnx_cache.EXPORT_ATTEMPTS and system.has_torch()

    def cache_key(self) -> str:
        from cnndesk.core.runtime import export_cache as onnx_cache

        if self.key is None:
            self.key = onnx_cache.cache_key(self.spec, self.weights, self.variant)
        return self.key


def resolve(
    spec: ModelSpec,
    variant: str = "logits",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    *,
    lookup: bool = True,
    export: bool = True,
) -> Resolved:
    """The weights of ``spec`` (downloaded if needed) and, with ``lookup``, its cached verified
    ONNX export of ``variant``; with ``export``, a missing export is built and checked now (needs
    torch). The only place that downloads weights, looks the export cache up or exports on a miss."""
    from cnndesk.core.models.download import ensure_weights
    from cnndesk.core.runtime import export_cache as onnx_cache

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}")
    r = Resolved(spec, variant, ensure_weights(spec, progress, cancel))
    check(cancel)
    if not lookup:
        return r
    r.entry, r.key = onnx_cache.lookup(spec, variant, r.weights)
    if (r.entry is None or r.retryable()) and export:
        if not system.has_torch():  # the lite build: only the exports it ships
            raise ModelError(f"{spec.title}: preparing this model {system.FULL_ONLY}")
        lock = onnx_cache.EXPORT_LOCK
        waited = not lock.acquire(blocking=False)  # another thread is exporting (maybe this very network)
        if waited:
            lock.acquire()
        try:
            if waited:  # look again rather than export the same thing twice
                before = None if r.entry is None else r.entry.record
                r.entry, r.key = onnx_cache.lookup(spec, variant, r.weights)
                if r.entry is not None and r.entry.record != before:  # it was just tried: take its outcome
                    return r
            if r.entry is None or r.retryable():
                tries = 0 if r.entry is None else int(r.entry.record.get("attempts", 1))
                report(progress, 0, None, f"Loading {spec.title}")
                r.model = build_network(spec, variant, r.weights, progress, cancel)
                r.entry = onnx_cache.export_and_verify(spec, r.model, r.weights, r.key, variant, progress, cancel,
                                                       attempt=tries + 1)
        finally:
            lock.release()
    return r


def build_network(spec: ModelSpec, variant: str, weights: Path | None, progress=None, cancel=None):
    from cnndesk.core.networks.build import build_model
    from cnndesk.core.networks.surgery import feature_extractor

    model = build_model(spec, progress, cancel, weights=weights)
    if variant == "features":
        return feature_extractor(model, spec.arch)[0].eval()
    if variant in ("multi", "multi_early"):
        from cnndesk.core.networks.multistage import multistage_extractor

        return multistage_extractor(model, spec.arch, early=variant == "multi_early")
    return model


def torch_model(spec: ModelSpec, variant: str = "logits", progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None):
    """The PyTorch network of ``spec`` (a quick model: its base plus the head) for ``variant``,
    in eval mode on the CPU, its weights resolved through :func:`resolve` (imports torch)."""
    network = spec.base or spec
    weights = resolve(network, variant, progress, cancel, lookup=False).weights
    if variant == "logits" or spec.base is None:
        return build_network(spec, variant, weights, progress, cancel)
    return build_network(network, variant, weights, progress, cancel)
