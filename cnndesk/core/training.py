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

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cnndesk.core.datasets import Dataset, class_weights
from cnndesk.core.errors import Cancelled, CnndeskError
from cnndesk.core.evaluation import Evaluation, evaluate
from cnndesk.core.models.registry import (
    ModelSpec,
    get_spec,
)
from cnndesk.core.progress import CancelToken, ProgressCallback, report


class TrainingError(CnndeskError):
    pass


@dataclass
class TrainConfig:
    mode: str = "quick"  # "quick" | "full"
    base: str = "efficientnet-lite0"
    epochs: int | None = None  # quick: head epochs (default 300); full: default 8
    lr: float | None = None  # quick default 0.01, full default 5e-4
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
    init_from: str | None = None  # continue from an existing model file (more images, same or new classes)
    features: str = "multi"  # quick mode: "multi" (several stages, one pass) or "last" (the pooled last layer)

    def resolved_epochs(self) -> int:
        return self.epochs or (200 if self.mode == "quick" else 8)

    def resolved_lr(self) -> float:
        return self.lr or (0.01 if self.mode == "quick" else 5e-4)


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


def _unfreeze(model, arch: str, blocks: int) -> None:
    import torch.nn as nn

    params = list(model.parameters())
    if blocks <= 0:
        for p in params:
            p.requires_grad = True
        return
    for p in params:
        p.requires_grad = False
    family, _, name = arch.partition(":")
    parts: list[nn.Module] = []
    if family == "timm" and hasattr(model, "blocks"):
        parts += list(model.blocks)[-blocks:]
        parts += [getattr(model, n) for n in ("conv_head", "bn2", "classifier") if hasattr(model, n)]
    elif name.startswith("resnet"):
        layers = [model.layer1, model.layer2, model.layer3, model.layer4]
        parts += layers[-blocks:] + [model.fc]
    else:
        parts += list(model.features)[-blocks:] + [model.classifier]
    for m in parts:
        for p in m.parameters():
            p.requires_grad = True


def _train_mode(model) -> None:
    """Train mode, except batch-norm layers whose weights are frozen: they keep their pretrained
    statistics (small batches would otherwise overwrite them and wreck the frozen features)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    model.train()
    for m in model.modules():
        if isinstance(m, _BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


def _head_module(model, arch: str):
    family, _, name = arch.partition(":")
    if family == "timm":
        return model.classifier
    if name.startswith("resnet"):
        return model.fc
    return model.classifier[-1]


class _Images:
    def __init__(self, items, transform, min_side):
        self.items, self.transform, self.min_side = items, transform, min_side
        self.errors: list[tuple[str, str]] = []

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from cnndesk.core.images import load_image

        path, y = self.items[i]
        try:
            img = load_image(path, min_side=self.min_side)
        except CnndeskError as exc:
            self.errors.append((path, str(exc)))
            return None
        return self.transform(img), y


def _collate(batch):
    import torch

    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    return torch.stack([b[0] for b in batch]), torch.tensor([b[1] for b in batch])


def train_full(ds, config, progress=None, cancel=None, on_epoch=None) -> TrainedModel:
    import torch
    from torch import nn
    from torchvision.transforms import v2

    from cnndesk.core.inference import resolve_device
    from cnndesk.core.models.build import build_model

    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    base, previous = _starting_point(config)
    device = torch.device(resolve_device(config.device).device)
    from dataclasses import replace as _replace

    from cnndesk.core import fullmode

    choices = fullmode.choose(ds, config, device.type)
    config = _replace(config, image_size=choices.image_size, unfrozen_blocks=choices.unfrozen_blocks,
                      epochs=choices.epochs, cpu_bf16=choices.cpu_bf16)
    report(progress, 0, None, f"Loading {(previous or base).title}")
    model = build_model(previous or base, progress, cancel)
    k = len(ds.classes)
    family = base.arch.partition(":")[0]
    keep_head = previous is not None and list(previous.labels) == list(ds.classes)
    if keep_head:
        pass  # same classes: continue with the trained head too
    elif family == "timm":
        model.reset_classifier(k)
    else:
        from cnndesk.core.models.build import attach_head, feature_extractor

        model, dim = feature_extractor(model, base.arch)
        w = torch.empty(k, dim)
        nn.init.normal_(w, std=0.01)
        model = attach_head(model, base.arch, w, torch.zeros(k))
    _unfreeze(model, base.arch, config.unfrozen_blocks)
    model = model.to(device).to(memory_format=torch.channels_last)
    # under torchrun: DistributedDataParallel (NCCL on GPUs, gloo on CPUs), each rank its share
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank = torch.distributed.get_rank() if distributed else 0
    world = torch.distributed.get_world_size() if distributed else 1
    size = config.image_size
    pre = base.preprocess
    norm = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(pre.mean), list(pre.std))]
    aug = []
    aug.append(v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True) if config.augment_crop
               else v2.Compose([v2.Resize(int(size * 256 / 224), antialias=True), v2.CenterCrop(size)]))
    if config.augment_flip:
        aug.append(v2.RandomHorizontalFlip())
    if config.augment_color:
        aug.append(v2.ColorJitter(0.2, 0.2, 0.2))
    train_tf = v2.Compose(aug + norm)
    # validation sees exactly what the app will feed the saved model: the same Preprocess code
    val_pre = _replace(pre, resize=int(size * 256 / 224), crop=size) if size != pre.crop else pre

    def val_tf(img):
        return torch.from_numpy(val_pre(img))

    min_side = int(size * 1.15)
    train_set = _Images(ds.train, train_tf, min_side)
    val_set = _Images(ds.val, val_tf, min_side)
    g = torch.Generator().manual_seed(config.seed)
    sampler = None
    if distributed:
        sampler = torch.utils.data.distributed.DistributedSampler(train_set, num_replicas=world, rank=rank,
                                                                  shuffle=True, seed=config.seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=config.batch_size, shuffle=sampler is None,
                                         generator=g if sampler is None else None, sampler=sampler,
                                         collate_fn=_collate, num_workers=config.num_workers)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.batch_size * 2, collate_fn=_collate,
                                             num_workers=config.num_workers)
    cw = torch.tensor(class_weights([y for _, y in ds.train], k), dtype=torch.float32, device=device)
    loss_fn = nn.CrossEntropyLoss(weight=cw, label_smoothing=config.label_smoothing)
    eval_loss = nn.CrossEntropyLoss()
    # the new head starts from random weights: it learns 10x faster than the pretrained blocks
    head = _head_module(model, base.arch)
    head_ids = {id(p) for p in head.parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    lr = config.resolved_lr()
    groups = [{"params": list(head.parameters()), "lr": lr * 10}]
    if body:
        groups.append({"params": body, "lr": lr})
    opt = torch.optim.AdamW(groups, weight_decay=max(config.weight_decay, 0.01))
    net = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    epochs = config.resolved_epochs()
    steps = max(1, epochs * len(loader))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    use_amp = device.type == "cuda" or (device.type == "cpu" and config.cpu_bf16)
    amp_dtype = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    if use_amp and device.type == "cpu" and len(val_set):  # bf16 checked against fp32 first
        probe = _collate([val_set[i] for i in range(min(16, len(val_set)))])
        if probe is not None:
            ok, cos = fullmode.bf16_agrees(model, _head_module(model, base.arch),
                                           probe[0].contiguous(memory_format=torch.channels_last))
            choices.reasons["bf16_check"] = f"{'agrees' if ok else 'DISAGREES'} with fp32 (embedding cosine ≥ {cos:.4f})"
            if not ok:
                use_amp = False
                config = _replace(config, cpu_bf16=False)
                choices.cpu_bf16 = False
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and amp_dtype == torch.float16)
    history: list[EpochStats] = []
    best = (-1.0, math.inf, None)
    bad_epochs = 0
    cancelled = False
    total_batches = epochs * len(loader)
    done_batches = 0
    for epoch in range(1, epochs + 1):
        e0 = time.perf_counter()
        _train_mode(model)
        if sampler is not None:
            sampler.set_epoch(epoch)
        tl = tc = tn = 0.0
        for batch in loader:
            if cancel is not None and cancel.cancelled:
                cancelled = True
                break
            if batch is None:
                continue
            xb, yb = batch
            xb = xb.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            yb = yb.to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                out = net(xb)
                loss = loss_fn(out.float(), yb)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            tl += float(loss.detach()) * len(yb)
            tc += float((out.argmax(1) == yb).sum())
            tn += len(yb)
            done_batches += 1
            report(progress, done_batches, total_batches, f"Epoch {epoch}/{epochs}")
        if cancelled:
            break
        if distributed:  # training metrics over all ranks
            sums = torch.tensor([tl, tc, tn], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(sums)
            tl, tc, tn = (float(v) for v in sums)
        # every rank validates on the whole (small) validation set: identical early-stopping decisions
        vl, va, _ = _run_eval(model, val_loader, device, eval_loss, use_amp, amp_dtype)
        stats = EpochStats(epoch, epochs, tl / max(tn, 1), tc / max(tn, 1), vl, va, time.perf_counter() - e0)
        history.append(stats)
        if on_epoch:
            on_epoch(stats)
        if (va, -vl) > (best[0], -best[1]):
            best = (va, vl, copy.deepcopy({k_: v.detach().cpu() for k_, v in model.state_dict().items()}))
            bad_epochs = 0
        else:
            bad_epochs += 1
            if bad_epochs >= config.patience:
                break
    if best[2] is None:
        if cancelled:
            raise Cancelled("training cancelled before the first epoch finished")
        best = (0.0, 0.0, {k_: v.detach().cpu() for k_, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    evaluation = novelty = held = None
    temperature, extra, keys = 1.0, {"defaults": choices.describe(), **choices.reasons}, None
    if rank == 0 and not cancelled:
        report(progress, 0, None, "Calibrating and learning what your classes look like")
        plain = torch.utils.data.DataLoader(_Images(ds.train, val_tf, min_side), batch_size=config.batch_size * 2,
                                            collate_fn=_collate, num_workers=config.num_workers)
        # in fp32, as the app will run the saved model: evaluation, temperature and threshold match it
        f_tr, _, _ = fullmode.embeddings_and_logits(model, head, plain, device, False, amp_dtype)
        f_v, l_v, y_v = fullmode.embeddings_and_logits(model, head, val_loader, device, False, amp_dtype)
        if len(f_tr) >= 2:
            novelty, temperature, calib, held = fullmode.fit_trust(f_tr, f_v, l_v, y_v, seed=config.seed)
            extra.update(calib)
            keys = fullmode.head_keys(model, head)
        if len(y_v):
            from cnndesk.core import trust

            bad = {e for e, _ in val_set.errors}
            paths = [p for p, _ in ds.val if p not in bad]
            evaluation = evaluate(paths, y_v, trust.softmax(l_v, temperature), ds.classes)
            if novelty is not None and held is not None:
                evaluation.novelty, evaluation.novelty_threshold = held, novelty.threshold
    result = TrainedModel("full", base, ds.classes, config, history, evaluation, ds.summary(),
                          state_dict=best[2], cancelled=cancelled,
                          skipped=list(ds.unreadable) + train_set.errors + val_set.errors,
                          temperature=temperature, novelty=novelty, extra=extra, val_novelty=held, head_keys=keys)
    result.seconds = time.perf_counter() - t0
    return result


def _run_eval(model, loader, device, loss_fn, use_amp, amp_dtype, keep=False):
    import torch

    model.eval()
    total = correct = 0
    loss_sum = 0.0
    probs_all, ys = [], []
    with torch.inference_mode():
        for batch in loader:
            if batch is None:
                continue
            xb, yb = batch
            xb = xb.to(device).contiguous(memory_format=torch.channels_last)
            yb = yb.to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                out = model(xb).float()
            loss_sum += float(loss_fn(out, yb)) * len(yb)
            correct += int((out.argmax(1) == yb).sum())
            total += len(yb)
            if keep:
                probs_all.append(torch.softmax(out, 1).cpu().numpy())
                ys.append(yb.cpu().numpy())
    vl = loss_sum / total if total else float("nan")
    va = correct / total if total else float("nan")
    extra = None
    if keep:
        paths = [p for p, _ in loader.dataset.items if p not in {e for e, _ in loader.dataset.errors}]
        extra = (paths, np.concatenate(ys) if ys else np.array([], int),
                 np.concatenate(probs_all) if probs_all else np.zeros((0, 1)))
    return vl, va, extra
