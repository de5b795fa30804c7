"""``Classifier``: load a model once, predict batches of images (top-k labels with probabilities)
on the best device.

Device choice ("auto"): CUDA, then Apple MPS, then the CPU. torch is imported only when a GPU may
be present or when the CPU fast path is unavailable. On the CPU the model runs in ONNX Runtime
(about 5x PyTorch eager for these depthwise-convolution networks), from a verified export cached by
:mod:`cnndesk.core.onnx_cache`; if export or its check fails, PyTorch is used and the reason
logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from cnndesk.core import system
from cnndesk.core.errors import DeviceUnavailableError, ModelError
from cnndesk.core.images import load_image
from cnndesk.core.models.registry import ModelSpec, get_spec
from cnndesk.core.progress import CancelToken, ProgressCallback, check, report

log = logging.getLogger("cnndesk")

DEVICES = ("auto", "cpu", "cuda", "mps")
BACKENDS = ("auto", "onnx", "torch")


@dataclass(frozen=True)
class Prediction:
    labels: tuple[str, ...]
    scores: tuple[float, ...]
    indices: tuple[int, ...]
    novelty: float | None = None  # user models with a novelty detector (core.trust); else None
    unknown: bool = False  # "not one of my classes": novelty above the model's threshold

    @property
    def label(self) -> str:
        return self.labels[0]

    @property
    def score(self) -> float:
        return self.scores[0]

    def as_list(self) -> list[dict]:
        return [{"label": lab, "score": round(s, 6)} for lab, s in zip(self.labels, self.scores, strict=False)]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def top_k(probs: np.ndarray, labels: Sequence[str], k: int) -> list[Prediction]:
    k = max(1, min(int(k), probs.shape[1]))
    out = []
    for row in probs:
        idx = np.argpartition(-row, k - 1)[:k]
        idx = idx[np.argsort(-row[idx], kind="stable")]
        out.append(
            Prediction(
                labels=tuple(labels[i] for i in idx),
                scores=tuple(float(row[i]) for i in idx),
                indices=tuple(int(i) for i in idx),
            )
        )
    return out


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # "cpu", "cuda", "mps"
    name: str  # "CPU", GPU name
    note: str = ""  # e.g. "an NVIDIA GPU is present but this torch build is CPU-only"


def resolve_device(requested: str = "auto") -> DeviceInfo:
    """Pick the device without importing torch unless a GPU may be there."""
    requested = (requested or "auto").lower()
    if requested not in DEVICES:
        raise ModelError(f"unknown device '{requested}' (choose auto, cpu, cuda or mps)")
    if requested == "cpu":
        return DeviceInfo("cpu", "CPU")
    if requested != "auto" and not system.has_torch():
        raise DeviceUnavailableError(f"device '{requested}' is not available: this lite version of cnndesk runs on the CPU only")
    if requested == "auto" and not system.gpu_may_be_present():
        return DeviceInfo("cpu", "CPU")
    import torch

    note = ""
    if torch.cuda.is_available() and requested in ("auto", "cuda"):
        return DeviceInfo("cuda", torch.cuda.get_device_name(0))
    if system.nvidia_driver_present() and torch.version.cuda is None:
        note = "an NVIDIA GPU is present but this PyTorch build is CPU-only"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available() and requested in ("auto", "mps"):
        return DeviceInfo("mps", "Apple GPU (MPS)", note)
    if requested != "auto":
        why = note or ("no usable CUDA GPU was found" if requested == "cuda" else "MPS is not available")
        raise DeviceUnavailableError(f"device '{requested}' is not available: {why}")
    return DeviceInfo("cpu", "CPU", note)


def _bundled_head(spec: ModelSpec):
    from cnndesk.core.paths import resource_path

    path = resource_path("onnx", f"{spec.name}-head.npz")
    if not path.is_file():
        return None
    with np.load(path) as z:
        return z["weight"].astype(np.float32), z["bias"].astype(np.float32)


class Classifier:
    """Load a model once; ``predict`` images or ``predict_arrays`` preprocessed batches.

    Thread-safe for prediction (one call at a time, serialized by a lock).
    """

    def __init__(
        self,
        model: str | ModelSpec | None = None,
        *,
        device: str = "auto",
        backend: str = "auto",
        threads: int | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        background_export: bool = False,
    ):
        """``background_export``: when the verified ONNX export is not cached yet, answer with
        PyTorch at once and build the export on a background thread, switching to ONNX Runtime
        when it is ready (the app's first answer: about 2 s instead of 12-24 s)."""
        if backend not in BACKENDS:
            raise ModelError(f"unknown backend '{backend}' (choose auto, onnx or torch)")
        self.spec = model if isinstance(model, ModelSpec) else get_spec(model)
        if not self.spec.runnable:  # before any download
            raise ModelError(f"{self.spec.title} {system.FULL_ONLY}")
        self.labels = self.spec.labels
        self.preprocess = self.spec.preprocess
        self.device_info = resolve_device(device)
        self.threads = max(1, threads or system.physical_cores())
        self.fallback_reason = ""
        self._lock = threading.Lock()
        self._session = None
        self.onnx_path = None  # the ONNX file this classifier runs (export bundles copy it)
        self._torch_model = None
        self._background = background_export and backend == "auto"
        self._pending_export = None
        self.export_done = threading.Event()
        # a quick-trained model: the base network's features, then a linear head (numpy)
        self._base = self.spec.metadata.get("base_spec")
        self._head = None
        from cnndesk.core.trust import load_trust

        self.trust = load_trust(self.spec)
        self.temperature = self.trust.temperature
        self.novelty = self.trust.novelty
        self.novelty_threshold = self.novelty.threshold if self.novelty is not None else None
        # full models with a novelty detector run as "features export + numpy head" (one pass)
        self._features_head = self._base is None and self.trust.head is not None
        if self._features_head:
            self._head = self.trust.head
        if self._base is not None:
            from cnndesk.core.models.registry import read_head

            self._head = read_head(self.spec)
        report(progress, 0, None, f"Loading {self.spec.title}")
        if self.device_info.device == "cpu" and backend in ("auto", "onnx"):
            self._init_onnx(progress, cancel, required=backend == "onnx")
        if self._session is None:
            self._init_torch(progress, cancel)
        if self._pending_export is not None:
            self._start_background_export(self._pending_export)
        else:
            self.export_done.set()
        report(progress, 1, 1, f"{self.spec.title} ready")

    # -- set-up ---------------------------------------------------------------------------
    def _init_onnx(self, progress, cancel, required: bool) -> None:
        from cnndesk.core import onnx_cache
        from cnndesk.core.models.download import ensure_weights

        spec = self._base or self.spec
        variant = "features" if self._base is not None or self._features_head else "logits"
        if self._base is not None and self.spec.metadata.get("features") == "multi":
            variant = "multi"
        ensure_weights(spec, progress, cancel)
        check(cancel)
        entry, _, _ = onnx_cache.lookup(spec, variant)
        if entry is None and self._base is None and not system.has_torch():
            # the lite build ships the features export plus the classifier as a numpy head
            # (smaller than a second full export); the same math as the logits export
            head = _bundled_head(spec)
            features, _, _ = onnx_cache.lookup(spec, "features")
            if head is not None and features is not None and features.ok:
                entry, self._head = features, head
        if entry is None and self._background and variant == "logits" and system.has_torch():
            self._pending_export = spec  # PyTorch answers meanwhile
            self.fallback_reason = "optimising for this CPU in the background"
            return
        if entry is None:
            entry, model = onnx_cache.export_and_verify(
                spec, progress=progress, cancel=cancel, variant=variant
            )
            self._torch_model = model if variant == "logits" else None
            if variant != "logits" and self._base is None and model is not None:
                self._torch_model = None  # (a features-only module: build the whole model if needed)
        if entry.ok:
            try:
                self._session = onnx_cache.make_session(entry.path, self.threads)
                self._input_name = self._session.get_inputs()[0].name
                self.onnx_path = entry.path
                if self._head is not None:  # a head of the wrong width: refuse now, not per image
                    from cnndesk.core.models.registry import check_head_width

                    dim = self._session.get_outputs()[0].shape[-1]
                    check_head_width(self.spec, self._head[0], dim if isinstance(dim, int) else None)
                self._torch_model = None  # not needed any more
                return
            except onnx_cache.OnnxUnavailable as exc:
                self.fallback_reason = str(exc)
        else:
            self.fallback_reason = entry.record.get("reason", "ONNX export failed")
        if required:
            raise ModelError(f"ONNX Runtime is unavailable for {self.spec.title}: {self.fallback_reason}")
        log.warning("using PyTorch for %s: %s", self.spec.name, self.fallback_reason)

    def _start_background_export(self, spec: ModelSpec) -> None:
        from cnndesk.core import onnx_cache

        def work():
            try:
                entry, _ = onnx_cache.export_and_verify(spec, variant="logits")
                if entry.ok:
                    session = onnx_cache.make_session(entry.path, self.threads)
                    with self._lock:
                        self._session = session
                        self._input_name = session.get_inputs()[0].name
                        self._torch_model = None
                        self.fallback_reason = ""
                else:
                    self.fallback_reason = entry.record.get("reason", "ONNX export failed")
            except Exception as exc:  # the PyTorch model keeps answering
                self.fallback_reason = f"{type(exc).__name__}: {exc}"
                log.warning("background ONNX export of %s failed: %s", spec.name, self.fallback_reason)
            finally:
                self.export_done.set()

        threading.Thread(target=work, name="cnndesk-onnx-export", daemon=True).start()

    def _init_torch(self, progress, cancel) -> None:
        import torch

        from cnndesk.core.models.build import build_model

        if torch.get_num_threads() > self.threads:
            torch.set_num_threads(self.threads)
        model = self._torch_model or build_model(self.spec, progress, cancel)
        if self.novelty is not None:  # embeddings for the novelty score: the network minus its head
            from cnndesk.core.models.build import feature_extractor

            if self._base is not None:
                model = build_model(self._base, progress, cancel)
                if self.spec.metadata.get("features") == "multi":
                    from cnndesk.core.models.multistage import multistage_extractor

                    model = multistage_extractor(model, self._base.arch)
                else:
                    model = feature_extractor(model, self._base.arch)[0]
            else:
                model = feature_extractor(model, self.spec.arch)[0]
                self._features_head = True
            self._torch_features = True
        dev = torch.device(self.device_info.device)
        model = model.to(dev)
        if self.device_info.device in ("cpu", "cuda"):
            model = model.to(memory_format=torch.channels_last)
        self._torch_model = model.eval()
        self._torch_device = dev

    # -- facts ----------------------------------------------------------------------------
    @property
    def preferred_batch(self) -> int:
        """Batch size for folders: GPUs want big batches; on the CPU small batches cost the least
        CPU per image (ONNX Runtime, 1 thread: 4.7 ms/image at batch 1-2, 5.2 at batch 8)."""
        if self.device_info.device in ("cuda", "mps"):
            return 32
        return 2 if self._session is not None else 8

    @property
    def backend(self) -> str:
        return "onnx" if self._session is not None else "torch"

    def describe(self) -> str:
        """Status-bar text, e.g. "CPU · ONNX Runtime · 2 threads" or "CUDA · NVIDIA H100"."""
        d = self.device_info
        if d.device == "cuda":
            text = f"CUDA · {d.name}"
        elif d.device == "mps":
            text = "Apple GPU (MPS)"
        else:
            runtime = "ONNX Runtime" if self._session is not None else "PyTorch"
            n = self.threads
            text = f"CPU · {runtime} · {n} thread{'s' if n != 1 else ''}"
        return f"{text} ({d.note})" if d.note else text

    # -- prediction -----------------------------------------------------------------------
    def prepare(self, image: Image.Image) -> np.ndarray:
        return self.preprocess(image)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw logits for a float32 NCHW batch (already preprocessed)."""
        return self.run(batch)[0]

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(raw logits, novelty scores or None) for a preprocessed batch: one forward pass."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with self._lock:
            if self._session is not None:
                out = self._session.run(None, {self._input_name: batch})[0]
            else:
                import torch

                with torch.inference_mode():
                    x = torch.from_numpy(batch).to(self._torch_device)
                    if self.device_info.device in ("cpu", "cuda"):
                        x = x.contiguous(memory_format=torch.channels_last)
                    out = self._torch_model(x).float().cpu().numpy()
                if not getattr(self, "_torch_features", False):
                    return out, None
            if self._head is None:
                return out, None
            weight, bias = self._head
            scores = self.novelty.score(out) if self.novelty is not None else None
            return out @ weight.T + bias, scores

    def set_flag_rate(self, fraction: float) -> None:
        """Move the "not one of my classes" threshold so that about ``fraction`` of held-out
        in-class images are flagged (0: never flag). No-op for models without a detector."""
        if self.novelty is not None:
            self.novelty_threshold = self.novelty.threshold_for(fraction)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Softmax with the model's calibration temperature (1 unless the file has one)."""
        return softmax(logits / np.float32(self.temperature)) if self.temperature != 1.0 else softmax(logits)

    def predict_arrays(self, batch: np.ndarray, top_k_: int = 5) -> list[Prediction]:
        logits, scores = self.run(batch)
        preds = top_k(self.probabilities(logits), self.labels, top_k_)
        if scores is None:
            return preds
        from dataclasses import replace

        thr = self.novelty_threshold
        return [replace(p, novelty=float(s), unknown=bool(s > thr)) for p, s in zip(preds, scores, strict=True)]

    def predict(self, images: Sequence, top_k_: int = 5) -> list[Prediction]:
        """Images may be PIL images or paths (paths go through the one loader)."""
        if not images:
            return []
        arrays = []
        for img in images:
            if not isinstance(img, Image.Image):
                img = load_image(img, min_side=self.preprocess.resize)
            arrays.append(self.prepare(img))
        return self.predict_arrays(np.stack(arrays), top_k_)

    def predict_one(self, image, top_k_: int = 5) -> Prediction:
        return self.predict([image], top_k_)[0]
