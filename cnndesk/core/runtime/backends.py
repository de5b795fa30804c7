"""How a model spec becomes something that runs. The one path is

    registry (ModelSpec) -> resolve(spec, variant) -> open_backend(spec, ...) -> Backend.run(batch)

* :func:`resolve` is the only caller of weight downloads (``ensure_weights``), export-cache
  lookups and export-on-miss (``onnx_cache``): one download check and one lookup per model.
* :func:`open_backend` owns the device choice (CUDA, then Apple MPS, then the CPU; torch is
  imported only when a GPU may be present), the fallback policy (ONNX Runtime on the CPU, PyTorch
  when the export or its check fails, with the reason recorded) and the first answer (PyTorch
  answers while the verified export is built in the background).
* :func:`torch_model` builds the PyTorch network of a spec and variant (export, Grad-CAM,
  training's starting point) from the resolved weights.

Backends (:class:`Backend`): :class:`OnnxBackend` (ONNX Runtime, CPU), :class:`TorchBackend`
(PyTorch, any device) and :class:`HeadBackend` (a numpy linear head on another backend's
embeddings: quick-trained models, full models with a novelty detector, and the lite build's
default model).

Variants (``onnx_cache``): "logits" (the classifier), "features" (the pooled embedding before it),
"multi" (mean+max pooled late stages plus that embedding, ``models.multistage``).
"""

from __future__ import annotations

import atexit
import logging
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from cnndesk.core.common import cache_budget, system
from cnndesk.core.common.errors import ModelError
from cnndesk.core.common.progress import CancelToken, ProgressCallback
from cnndesk.core.models.registry import ModelSpec, check_head_width, read_head
from cnndesk.core.runtime.devices import DeviceInfo, resolve_device
from cnndesk.core.runtime.resolve import VARIANTS, Resolved, build_network, resolve

log = logging.getLogger("cnndesk")

BACKENDS = ("auto", "onnx", "torch")


# -- backends ---------------------------------------------------------------------------------------
class Backend(Protocol):
    """Something that runs a preprocessed float32 NCHW batch."""

    name: str  # "onnx" or "torch": the runtime doing the work
    device: DeviceInfo
    fallback_reason: str  # why the fast path is not used ("" when it is)

    def run(self, batch: np.ndarray) -> np.ndarray: ...

    def describe(self) -> str: ...

    @property
    def preferred_batch(self) -> int: ...


def _describe(device: DeviceInfo, runtime: str, threads: int) -> str:
    if device.device == "cuda":
        text = f"CUDA · {device.name}"
    elif device.device == "mps":
        text = "Apple GPU (MPS)"
    else:
        text = f"CPU · {runtime} · {threads} thread{'s' if threads != 1 else ''}"
    return f"{text} ({device.note})" if device.note else text


class _BackendBase:
    name = ""
    runtime = ""
    onnx_path: Path | None = None  # the ONNX file this backend runs (export bundles copy it)

    def __init__(self, device: DeviceInfo, threads: int):
        self.device = device
        self.threads = threads
        self.fallback_reason = ""
        self.resolved: Resolved | None = None
        self.export_done = threading.Event()
        self.export_done.set()

    def run_scored(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(outputs, novelty scores or None): one forward pass."""
        return self.run(batch), None

    def describe(self) -> str:
        return _describe(self.device, self.runtime, self.threads)

    @property
    def preferred_batch(self) -> int:
        """Batch size for folders: GPUs want big batches; on the CPU small batches cost the least
        CPU per image (ONNX Runtime, 1 thread: 4.7 ms/image at batch 1-2, 5.2 at batch 8)."""
        if self.device.device in ("cuda", "mps"):
            return 32
        return 2 if self.name == "onnx" else 8


class OnnxBackend(_BackendBase):
    name, runtime = "onnx", "ONNX Runtime"

    def __init__(self, path: Path, threads: int, device: DeviceInfo | None = None):
        from cnndesk.core.runtime import export_cache as onnx_cache

        super().__init__(device or DeviceInfo("cpu", "CPU"), threads)
        # in use while this backend lives: the caches' size cap never evicts it (common.cache_budget)
        self._hold = cache_budget.hold(path)
        self.session = onnx_cache.make_session(path, threads)
        self._input = self.session.get_inputs()[0].name
        self.onnx_path = Path(path)

    @property
    def output_width(self) -> int | None:
        dim = self.session.get_outputs()[0].shape[-1]
        return dim if isinstance(dim, int) else None

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: np.ascontiguousarray(batch, dtype=np.float32)})[0]


class TorchBackend(_BackendBase):
    """A PyTorch module in inference mode (channels_last on the CPU and CUDA)."""

    name, runtime = "torch", "PyTorch"

    def __init__(self, module, device: DeviceInfo, threads: int):
        import torch

        super().__init__(device, threads)
        if device.device == "cpu" and torch.get_num_threads() > threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self._dev = torch.device(device.device)
        self._channels_last = device.device in ("cpu", "cuda")
        module = module.to(self._dev)
        if self._channels_last:
            module = module.to(memory_format=torch.channels_last)
        self.module = module.eval()

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self._dev)
            if self._channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.module(x).float().cpu().numpy()


class HeadBackend:
    """A linear head in numpy on the embeddings of ``features`` (another backend), with the
    novelty score of those embeddings when the model has a detector (core.trust)."""

    def __init__(self, features, weight: np.ndarray, bias: np.ndarray, novelty=None):
        self.features = features
        self.weight, self.bias = weight, bias
        self.novelty = novelty

    def __getattr__(self, name):  # device, name, threads, fallback_reason, onnx_path, export_done...
        return getattr(self.__dict__["features"], name)

    def run_scored(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.features.run(batch)
        scores = self.novelty.score(out) if self.novelty is not None else None
        return out @ self.weight.T + self.bias, scores

    def run(self, batch: np.ndarray) -> np.ndarray:
        out = self.features.run(batch)
        return out @ self.weight.T + self.bias

    def describe(self) -> str:
        return self.features.describe()

    @property
    def preferred_batch(self) -> int:
        return self.features.preferred_batch


_EXPORT_DONE: list[threading.Event] = []  # each background export's export_done
_EXITING = False  # set by the atexit wait: no background export starts after it
_START_LOCK = threading.Lock()


def background_exports_running() -> bool:
    return any(not done.is_set() for done in list(_EXPORT_DONE))


def finish_background_exports(timeout_s: float = 300.0) -> None:
    """Wait for the exports started in the background (the CLI, before it returns). On their
    done events, not Thread.join(): a Ctrl+C inside join() marks the still-running thread stopped
    on Python 3.11 (its bpo-45274 handler releases the lock the thread holds), and the atexit
    wait below then returned at once, tearing the interpreter down under the export."""
    for done in list(_EXPORT_DONE):
        done.wait(timeout_s)


@atexit.register
def finish_exports_at_exit(timeout_s: float = 60.0) -> None:
    """At exit, let a background export finish (about 10 s) instead of tearing the interpreter
    down under it: a daemon thread inside torch.onnx.export during finalization aborts the process
    ("terminate called without an active exception") — seen when the app was quit during a full
    training that started before the first answer's export was done. An export whose start was
    still pending (START_DELAY_S, no answer yet) never starts after this."""
    global _EXITING
    with _START_LOCK:
        _EXITING = True
    finish_background_exports(timeout_s)


class UpgradingBackend(_BackendBase):
    """The first answer: PyTorch answers at once while the verified ONNX export is built on a
    background thread; then ONNX Runtime takes over (``export_done`` is set either way)."""

    # the export starts after the first answer (or after this many seconds without one): started
    # at once, its imports (timm, torch._dynamo) and tracing fight the first answer for the GIL
    # and the CPU
    START_DELAY_S = 3.0

    def __init__(self, first: TorchBackend, spec: ModelSpec, threads: int):
        super().__init__(first.device, threads)
        self.current: _BackendBase = first
        self.fallback_reason = "optimising for this CPU in the background"
        self.export_done.clear()
        self._spec = spec
        self._started = threading.Lock()
        self._thread: threading.Thread | None = None
        self._timer = threading.Timer(self.START_DELAY_S, self._start_export)
        self._timer.daemon = True
        self._timer.start()

    def _start_export(self) -> None:
        with self._started, _START_LOCK:
            if self._thread is not None or _EXITING:
                return
            self._timer.cancel()
            t = threading.Thread(target=self._work, args=(self._spec,), name="cnndesk-onnx-export", daemon=True)
            _EXPORT_DONE.append(self.export_done)
            self._thread = t
            t.start()

    name = property(lambda self: self.current.name)
    runtime = property(lambda self: self.current.runtime)
    onnx_path = property(lambda self: self.current.onnx_path)

    def _work(self, spec: ModelSpec) -> None:
        try:
            entry = resolve(spec, "logits").entry  # finds an export another thread finished meanwhile
            if entry.ok:
                self.current = OnnxBackend(entry.path, self.threads, self.device)
                self.fallback_reason = ""
            else:
                self.fallback_reason = entry.record.get("reason", "ONNX export failed")
        except Exception as exc:  # the PyTorch model keeps answering
            self.fallback_reason = f"{type(exc).__name__}: {exc}"
            log.warning("background ONNX export of %s failed: %s", spec.name, self.fallback_reason)
        finally:
            self.export_done.set()

    def run(self, batch: np.ndarray) -> np.ndarray:
        try:
            return self.current.run(batch)
        finally:
            if self._thread is None:
                self._start_export()


def _bundled_head(spec: ModelSpec):
    """The lite build ships the default model as its features export plus the classifier as a
    numpy head (smaller than a second full export); the same math as the logits export."""
    from cnndesk.core.common.paths import resource_path

    path = resource_path("onnx", f"{spec.name}-head.npz")
    if not path.is_file():
        return None
    with np.load(path) as z:
        return z["weight"].astype(np.float32), z["bias"].astype(np.float32)


def open_backend(
    spec: ModelSpec,
    variant: str | None = None,
    device: str = "auto",
    backend: str = "auto",
    *,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    background_export: bool = False,
    trust=None,
):
    """A backend running ``spec``. ``variant`` None: the classifier's logits, with novelty scores
    where the model has a detector (``trust``: its ``core.trust.ModelTrust``, read when None);
    "features"/"multi": that embedding of ``spec`` itself. ``backend``: "auto" (ONNX Runtime on
    the CPU, PyTorch when that fails, the reason in ``fallback_reason``), "onnx" (fail instead)
    or "torch". ``background_export``: on a cache miss PyTorch answers at once and the export is
    built in the background (the app's first answer: about 2 s instead of 12-24 s)."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend '{backend}' (choose auto, onnx or torch)")
    info = resolve_device(device)
    threads = max(1, threads or system.physical_cores())
    network, head, novelty, whole = spec, None, None, variant is None
    if whole:
        if trust is None:
            from cnndesk.core.trust.scores import load_trust

            trust = load_trust(spec)
        novelty = trust.novelty
        if spec.head is not None:  # quick-trained: the base network's embeddings, then the head
            network, variant, head = spec.base, spec.head.variant, read_head(spec)
        elif trust.head is not None:  # a full model with a novelty detector: one pass, two outputs
            variant, head = trust.variant, trust.head  # "multi": its multi-stage features (newer files)
        else:
            variant = "logits"
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}")
    reason = ""
    r = None
    if info.device == "cpu" and backend in ("auto", "onnx"):
        background = background_export and backend == "auto" and variant == "logits" and system.has_torch()
        r = resolve(network, variant, progress, cancel, export=system.has_torch() and not background)
        entry = r.entry
        if entry is None and head is None and variant == "logits" and not system.has_torch():
            bundled = _bundled_head(network)
            features = resolve(network, "features", lookup=True, export=False).entry if bundled else None
            if features is not None and features.ok:
                entry, head = features, bundled
        if background and (entry is None or (entry is r.entry and r.retryable())):  # a miss, or a failure to retry
            first = TorchBackend(r.model or _first_answer_network(spec, r.weights, progress, cancel), info, threads)
            out = UpgradingBackend(first, network, threads)
            out.resolved = r
            return out
        if entry is None:
            raise ModelError(f"{spec.title}: preparing this model {system.FULL_ONLY}")
        if entry.ok:
            try:
                out = OnnxBackend(entry.path, threads, info)
                out.resolved = r
                if head is None:
                    return out
                check_head_width(spec, head[0], out.output_width)  # refuse now, not per image
                return HeadBackend(out, head[0], head[1], novelty)
            except _onnx_unavailable() as exc:
                reason = str(exc)
        else:
            reason = entry.record.get("reason", "ONNX export failed")
        if backend == "onnx":
            raise ModelError(f"ONNX Runtime is unavailable for {spec.title}: {reason}")
        log.warning("using PyTorch for %s: %s", spec.name, reason)
    out = _open_torch(spec, network, variant, head, novelty, info, threads, r, progress, cancel)
    out.fallback_reason = reason
    return out


def _first_answer_network(spec: ModelSpec, weights, progress, cancel):
    """The network that answers while the export is built: the default model as plain PyTorch
    (no timm import: about a second sooner, core.networks.lite0), any other through timm."""
    from cnndesk.core.networks.lite0 import first_answer_network

    return first_answer_network(spec, weights) or build_network(spec, "logits", weights, progress, cancel)


def _onnx_unavailable():
    from cnndesk.core.runtime.export_cache import OnnxUnavailable

    return OnnxUnavailable


def _open_torch(spec, network, variant, head, novelty, info, threads, r, progress, cancel):
    """PyTorch: the whole network, or (with a novelty detector) its embeddings plus the numpy head
    so that one pass gives both the logits and the novelty score."""
    if r is None:
        r = resolve(network, variant, progress, cancel, lookup=False)
    if head is not None and novelty is not None:
        base = TorchBackend(r.model or build_network(network, variant, r.weights, progress, cancel), info, threads)
        base.resolved = r
        return HeadBackend(base, head[0], head[1], novelty)
    if head is not None:  # no detector: the quick model's whole network (base + head) in torch
        out = TorchBackend(build_network(spec, "logits", r.weights, progress, cancel), info, threads)
    else:
        out = TorchBackend(r.model or build_network(network, variant, r.weights, progress, cancel), info, threads)
    out.resolved = r
    return out
