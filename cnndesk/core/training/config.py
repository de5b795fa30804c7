"""Training settings and outcomes: :class:`TrainConfig` (the one source of training defaults),
per-epoch statistics, :class:`TrainedModel` (saved through the one model-file writer) and where
training starts from (a base network, or a model to continue)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cnndesk.core.common.errors import CnndeskError
from cnndesk.core.models.registry import (
    DEFAULT_MODEL,
    ModelSpec,
    get_spec,
)
from cnndesk.core.training.evaluation import Evaluation


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
    outlier_exposure: bool = True  # full mode: content-free copies of each batch trained towards "none" (issue 23)
    keep_pretrained: str = ""  # full mode: "" | "l2sp" | "distill": keep the pretrained features (training.full_keep)
    # full mode, unfrozen_blocks chosen: train the last blocks only (full_settings.EARLY_KEPT_BLOCKS), whatever
    # the number of images, so the stages the novelty detector reads stay pretrained (issue 23); False: the
    # whole network from 30 images per class (before)
    keep_early_stages: bool = True

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
            # detectors older versions would misread go under their own key, which they do not read
            # (they then classify without one instead of failing or flagging wrongly): a full model's
            # on multi-stage features (they ran it on the penultimate layer), the "+synth" term
            newer = self.novelty.metric == "knn+maha+synth" or (self.mode != "quick" and self.novelty.features == "multi")
            key = "novelty3" if getattr(self.novelty, "early", None) is not None else "novelty2" if newer else "novelty"
            info[key] = self.novelty.info()  # novelty3: the early-stage detector (older versions read novelty2)
            tensors.update(self.novelty.tensors())
            if self.head_keys:
                info["head_keys"] = list(self.head_keys)
        return save_model_file(path, tensors, arch=self.base.arch, labels=list(self.classes),
                               preprocess=self.preprocess(), name=name, extra=info, overwrite=overwrite)


def starting_point(config: TrainConfig) -> tuple[ModelSpec, ModelSpec | None]:
    """(base network, model to continue from or None)."""
    if not config.init_from:
        return get_spec(config.base), None
    previous = get_spec(config.init_from)
    if previous.source != "user":
        return previous, None
    base_name = previous.metadata.get("base") or config.base
    return get_spec(base_name), previous


EpochCallback = Callable[[EpochStats], None]
