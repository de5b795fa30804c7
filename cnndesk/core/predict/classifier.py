"""``Classifier``: a model's backend (:mod:`cnndesk.core.runtime.backends`) plus its labels, top-k,
calibration temperature and novelty detector: predict batches of images (top-k labels with
probabilities).

Where and how the model runs (device, ONNX Runtime or PyTorch, the fallback and its reason, the
first answer while the export is built) is decided by ``runtime.open_backend``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from cnndesk.core.common import system
from cnndesk.core.common.errors import ModelError
from cnndesk.core.common.progress import CancelToken, ProgressCallback, report
from cnndesk.core.images.load import load_image
from cnndesk.core.models.registry import ModelSpec, get_spec
from cnndesk.core.runtime.backends import BACKENDS, open_backend
from cnndesk.core.runtime.devices import DeviceInfo
from cnndesk.core.trust.scores import softmax  # noqa: F401  (the one softmax; re-exported)


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
        self._lock = threading.Lock()
        from cnndesk.core.trust.scores import load_trust

        self.trust = load_trust(self.spec)
        self.temperature = self.trust.temperature
        self.novelty = self.trust.novelty
        self.novelty_threshold = self.novelty.threshold if self.novelty is not None else None
        report(progress, 0, None, f"Loading {self.spec.title}")
        self.engine = open_backend(self.spec, None, device, backend, threads=threads, progress=progress,
                                   cancel=cancel, background_export=background_export, trust=self.trust)
        report(progress, 1, 1, f"{self.spec.title} ready")

    # -- facts ----------------------------------------------------------------------------
    @property
    def device_info(self) -> DeviceInfo:
        return self.engine.device

    @property
    def threads(self) -> int:
        return self.engine.threads

    @property
    def fallback_reason(self) -> str:
        return self.engine.fallback_reason

    @property
    def onnx_path(self):
        """The ONNX file this classifier runs (export bundles copy it), or None."""
        return self.engine.onnx_path

    @property
    def export_done(self) -> threading.Event:
        """Set once the background export (if any) has finished, either way."""
        return self.engine.export_done

    @property
    def head(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(weight, bias) of the numpy head the backend runs after the features, or None."""
        head = getattr(self.engine, "weight", None)
        return (head, self.engine.bias) if head is not None else None

    @property
    def preferred_batch(self) -> int:
        return self.engine.preferred_batch

    @property
    def backend(self) -> str:
        """"onnx" or "torch": the runtime answering now."""
        return self.engine.name

    def describe(self) -> str:
        """Status-bar text, e.g. "CPU · ONNX Runtime · 2 threads" or "CUDA · NVIDIA H100"."""
        return self.engine.describe()

    # -- prediction -----------------------------------------------------------------------
    def prepare(self, image: Image.Image) -> np.ndarray:
        return self.preprocess(image)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw logits for a float32 NCHW batch (already preprocessed)."""
        return self.run(batch)[0]

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(raw logits, novelty scores or None) for a preprocessed batch: one forward pass."""
        with self._lock:
            return self.engine.run_scored(batch)

    def set_flag_rate(self, fraction: float) -> None:
        """Move the "not one of my classes" threshold so that about ``fraction`` of held-out
        in-class images are flagged (0: never flag). No-op for models without a detector."""
        if self.novelty is not None:
            self.novelty_threshold = self.novelty.threshold_for(fraction)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Softmax with the model's calibration temperature (1 unless the file has one)."""
        if self.temperature != 1.0:
            logits = logits / np.float32(self.temperature)
        return softmax(logits).astype(np.float32)

    def predict_arrays(self, batch: np.ndarray, top_k_: int = 5) -> list[Prediction]:
        logits, scores = self.run(batch)
        preds = top_k(self.probabilities(logits), self.labels, top_k_)
        if scores is None:
            return preds
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
