"""Fine-tuning on the user's folders.

* quick: the base network stays frozen; its embeddings (ONNX Runtime on the CPU, cached on disk)
  feed a softmax-regression head fitted in numpy. No torch on the CPU. The model file holds only
  the head and names its base model.
* full: PyTorch fine-tunes the last N blocks (or everything) with augmentation, AdamW + cosine
  schedule, label smoothing, class weights, mixed precision on CUDA, early stopping; the best
  epoch's weights are kept. The model file holds the whole network.

Both report per-epoch statistics through ``on_epoch`` and stop within a batch when cancelled,
keeping the best model so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cnndesk.core.datasets import Dataset, class_weights
from cnndesk.core.errors import CnndeskError
from cnndesk.core.evaluation import Evaluation, evaluate
from cnndesk.core.models.registry import (
    DEFAULT_MODEL,
    ModelSpec,
    get_spec,
)
from cnndesk.core.progress import CancelToken, ProgressCallback, report


class TrainingError(CnndeskError):
    pass


@dataclass
class TrainConfig:
    """Every training setting, with its default: the one source of training defaults (the command
    line and the training dialog take theirs from here; ``None`` = chosen by the core)."""

    mode: str = "quick"  # "quick" | "full"
    base: str = DEFAULT_MODEL
    epochs: int | None = None  # None: DEFAULT_EPOCHS (quick); full: as many as fit time_budget_s (fullmode)
    lr: float | None = None  # None: DEFAULT_LR[mode]
    batch_size: int = 16
    val_split: float = 0.2
    seed: int = 0
    unfrozen_blocks: int | None = None  # full mode; 0 or less = the whole network; None: chosen (fullmode)
    image_size: int | None = None  # full mode; None: chosen from the images' sizes (fullmode)
    augment_crop: bool = True
    augment_flip: bool = False  # flips change the meaning of text, digits, arrows
    augment_color: bool = True
    label_smoothing: float = 0.1
    weight_decay: float = 1e-4
    patience: int = 2
    device: str = "auto"
    cpu_bf16: bool | None = None  # None: on CPUs with native bfloat16, checked against fp32
    num_workers: int = 0
    time_budget_s: float = 150.0  # full mode with automatic epochs: as many as fit (measured on the first); 0: no budget
    cache_images: bool = True  # full mode: decode the images once into memory when they fit
    init_from: str | None = None  # continue from an existing model file (more images, same or new classes)
    features: str = "multi"  # quick mode: "multi" (several stages, one pass) or "last" (the pooled last layer)

    def resolved_epochs(self) -> int:
        return self.epochs or DEFAULT_EPOCHS.get(self.mode, DEFAULT_EPOCHS["full"])

    def resolved_lr(self) -> float:
        return self.lr or DEFAULT_LR.get(self.mode, DEFAULT_LR["full"])


# the mode-dependent defaults (full mode's epochs: a first estimate, then the time budget decides)
DEFAULT_EPOCHS = {"quick": 200, "full": 8}
DEFAULT_LR = {"quick": 0.01, "full": 5e-4}


@dataclass
class EpochStats:
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float


@dataclass
class TrainedModel:
    """The outcome of training: everything needed to save, evaluate and use it."""

    mode: str
    base: ModelSpec
    classes: list[str]
    config: TrainConfig
    history: list[EpochStats]
    evaluation: Evaluation | None
    dataset_summary: dict
    head: tuple[np.ndarray, np.ndarray] | None = None  # quick
    state_dict: dict | None = None  # full
    cancelled: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    temperature: float = 1.0  # calibration (core.trust); 1 = none
    novelty: object = None  # core.trust.Novelty: "not one of my classes"
    extra: dict = field(default_factory=dict)  # calibration, chosen settings
    val_novelty: np.ndarray | None = None  # held-out novelty scores of the validation images
    head_keys: tuple[str, str] | None = None  # full mode: the classifier's weight/bias tensors

    def metrics(self) -> dict:
        # quick mode records every 10th epoch: the epochs run is the last recorded epoch number
        epochs_run = self.history[-1].epoch if self.history else 0
        m = {"mode": self.mode, "epochs_run": epochs_run, "seconds": round(self.seconds, 2),
             "classes": len(self.classes), "skipped_files": len(self.skipped), "cancelled": self.cancelled}
        if self.evaluation is not None:
            m["val_accuracy"] = round(self.evaluation.accuracy, 4)
            m["val_images"] = len(self.evaluation.y_true)
        if self.history:
            m["best_epoch"] = max(self.history, key=lambda h: (h.val_acc, -h.val_loss)).epoch
        m.update(self.extra)
        if self.val_novelty is not None and self.novelty is not None and len(self.val_novelty):
            m["val_flagged_unknown"] = round(float((self.val_novelty > self.novelty.threshold).mean()), 4)
        return m

    def preprocess(self):
        """What the model expects: the base's preprocessing, or full mode's training resolution."""
        if self.mode == "full" and self.config.image_size and self.config.image_size != self.base.preprocess.crop:
            from dataclasses import replace

            size = self.config.image_size
            return replace(self.base.preprocess, resize=int(size * 256 / 224), crop=size)
        return self.base.preprocess

    def evaluation_record(self, limit: int = 5000) -> dict | None:
        """The validation predictions (path, true, predicted, confidence), kept in the model file
        so its evaluation can be shown again later."""
        ev = self.evaluation
        if ev is None:
            return None
        n = min(limit, len(ev.paths))
        record = {"paths": ev.paths[:n], "true": [int(v) for v in ev.y_true[:n]], "pred": [int(v) for v in ev.y_pred[:n]],
                  "confidence": [round(float(ev.probs[i, ev.y_pred[i]]), 6) for i in range(n)]}
        if self.val_novelty is not None and len(self.val_novelty) >= n:
            record["novelty"] = [round(float(v), 5) for v in self.val_novelty[:n]]
        return record

    def save(self, path: str | Path, name: str | None = None, overwrite: bool = False) -> Path:
        """Write the model file (safetensors + JSON metadata) atomically through the one writer,
        ``models.files.save_model_file``; never overwrites unless asked. No torch for quick models."""
        from cnndesk.core.models.files import save_model_file

        info = {
            "kind": "head" if self.mode == "quick" else "full",
            "base": self.base.name,
            "training": asdict(self.config),
            "metrics": self.metrics(),
            "dataset": self.dataset_summary,
            "evaluation": self.evaluation_record(),
        }
        if self.mode == "quick":
            tensors = {"head.weight": self.head[0].astype(np.float32), "head.bias": self.head[1].astype(np.float32)}
            info["features"] = self.config.features  # (read by older versions)
            info["head"] = {"features": self.config.features}
        else:
            tensors = dict(self.state_dict)
        info["temperature"] = round(float(self.temperature), 6)
        if self.novelty is not None:
            info["novelty"] = self.novelty.info()
            tensors.update(self.novelty.tensors())
            if self.head_keys:
                info["head_keys"] = list(self.head_keys)
        return save_model_file(path, tensors, arch=self.base.arch, labels=list(self.classes),
                               preprocess=self.preprocess(), name=name, extra=info, overwrite=overwrite)


EpochCallback = Callable[[EpochStats], None]


def train(
    ds: Dataset,
    config: TrainConfig,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainedModel:
    if config.mode == "quick":
        return train_quick(ds, config, progress, cancel, on_epoch)
    if config.mode == "full":
        return train_full(ds, config, progress, cancel, on_epoch)
    raise TrainingError(f"unknown training mode '{config.mode}' (quick or full)")


def _starting_point(config: TrainConfig) -> tuple[ModelSpec, ModelSpec | None]:
    """(base network, model to continue from or None)."""
    if not config.init_from:
        return get_spec(config.base), None
    previous = get_spec(config.init_from)
    if previous.source != "user":
        return previous, None
    base_name = previous.metadata.get("base") or config.base
    return get_spec(base_name), previous


# -- quick ------------------------------------------------------------------------------------


def train_quick(ds, config, progress=None, cancel=None, on_epoch=None) -> TrainedModel:
    from cnndesk.core.features import EmbeddingCache, FeatureExtractor

    t0 = time.perf_counter()
    base, previous = _starting_point(config)
    init = None
    if previous is not None and previous.metadata.get("kind") == "head" and list(previous.labels) == list(ds.classes):
        from cnndesk.core.models.registry import read_head

        init = read_head(previous)
    report(progress, 0, None, f"Loading {base.title}")
    stages = config.features
    if init is not None and previous.metadata.get("features", "last") != stages:
        init = None  # a head on other features cannot be continued
    fx = FeatureExtractor(base, device=config.device, progress=progress, cancel=cancel, stages=stages)
    cache = EmbeddingCache(fx.key)
    paths = [p for p, _ in ds.train + ds.val]
    feats, errors = fx.embed_paths(paths, cache, progress=progress, cancel=cancel)
    train = [(p, yy) for p, yy in ds.train if p in feats]
    val = [(p, yy) for p, yy in ds.val if p in feats]
    if len({yy for _, yy in train}) < 2:
        raise TrainingError("too few readable images to train (need images of at least two classes)")
    items = train + val
    x = np.stack([feats[p] for p, _ in items]).astype(np.float32)
    y = np.array([yy for _, yy in items])
    val_mask = np.arange(len(items)) >= len(train)
    cw = class_weights(list(y[~val_mask]), len(ds.classes))
    report(progress, 0, None, "Training the head")
    from cnndesk.core import quickfit, trust

    n_ep = config.resolved_epochs()

    fit = quickfit.fit_quick(x, y, len(ds.classes), val_mask, epochs=n_ep, lr=config.resolved_lr(),
                             smoothing=config.label_smoothing, class_w=cw, seed=config.seed, init=init,
                             features=stages, progress=progress, cancel=cancel,
                             on_epoch=(lambda h: on_epoch(_stats(h, n_ep))) if on_epoch else None)
    history = [_stats(h, n_ep) for h in fit.history]
    evaluation = None
    if val and fit.val_logits is not None:
        evaluation = evaluate([p for p, _ in val], y[val_mask], trust.softmax(fit.val_logits, fit.temperature),
                              ds.classes)
        if fit.novelty is not None:
            evaluation.novelty, evaluation.novelty_threshold = fit.val_novelty, fit.novelty.threshold
    config.weight_decay = fit.weight_decay  # the one chosen on the validation split
    model = TrainedModel("quick", base, ds.classes, config, history, evaluation, ds.summary(),
                         head=(fit.weight, fit.bias), cancelled=fit.cancelled, skipped=list(ds.unreadable) + errors,
                         temperature=fit.temperature, novelty=fit.novelty,
                         extra={**fit.calibration, "weight_decay": fit.weight_decay},
                         val_novelty=fit.val_novelty)
    model.seconds = time.perf_counter() - t0
    model.cache_hits = cache.hits  # type: ignore[attr-defined]
    return model


def _stats(h: tuple, epochs: int) -> EpochStats:
    return EpochStats(h[0], epochs, *h[1:])


# -- full -------------------------------------------------------------------------------------


def train_full(ds, config, progress=None, cancel=None, on_epoch=None) -> TrainedModel:
    """Full training (PyTorch): see ``core.fulltrain``."""
    from cnndesk.core.fulltrain import train_full as run

    return run(ds, config, progress, cancel, on_epoch)
