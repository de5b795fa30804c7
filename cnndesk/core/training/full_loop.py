"""Full training (PyTorch), split by responsibility as torchvision's reference scripts are:
:mod:`.full_model` (device, precision, head surgery, the speed probe), :mod:`.full_data`
(transforms, datasets, loaders), here :func:`make_optimizer`, :func:`train_one_epoch`,
:func:`evaluate`; :func:`train_full` runs them, with early stopping and a time budget, and fits the
trust data (:mod:`.full_trust`) on the best epoch's network. Distributed set-up lives in
:mod:`.distributed`; the settings chosen from the data come from :mod:`.full_settings`.
Loader errors are collected here, in the main process.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from dataclasses import replace as _replace

from cnndesk.core.common.errors import Cancelled
from cnndesk.core.common.progress import report
from cnndesk.core.training import full_keep, full_settings, full_trust
from cnndesk.core.training.datasets import class_weights
from cnndesk.core.training.evaluation import evaluate as evaluate_predictions
from cnndesk.core.training.full_data import LoadError, collate, load_data
from cnndesk.core.training.full_model import (
    Precision,
    prepare_model,
    setup,
    speed_probe,
    train_mode,
)


class Schedule:
    """Cosine decay over ``total`` steps; ``total`` may change once the time budget is known."""

    def __init__(self, opt, total: int):
        import torch

        self.total = max(1, total)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, self.total) / self.total)))

    def step(self):
        self.sched.step()


def make_optimizer(model, head, config, total_steps: int):
    """AdamW with the new head learning 10x faster than the pretrained layers, cosine schedule."""
    import torch

    head_ids = {id(p) for p in head.parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    lr = config.resolved_lr()
    groups = [{"params": list(head.parameters()), "lr": lr * 10}]
    if body:
        groups.append({"params": body, "lr": lr})
    opt = torch.optim.AdamW(groups, weight_decay=max(config.weight_decay, 0.01))
    return opt, Schedule(opt, total_steps)


@dataclass
class EpochResult:
    loss: float
    acc: float
    images: int
    cancelled: bool
    errors: list[LoadError]


def train_one_epoch(net, loader, opt, sched, loss_fn, prec: Precision, cancel=None, on_step=None,
                    exposure=None, keep=None) -> EpochResult:
    """One pass over ``loader``; ``on_step(images)`` after every batch. ``exposure(x)``: outliers
    made from each batch (``full_trust.exposure_outliers``), run in the same forward pass with their
    softmax pushed towards uniform (weight ``full_trust.EXPOSURE_WEIGHT``); the reported loss and
    accuracy are the batch's own images'. ``keep`` (``full_keep.keeper``): keeps the pretrained
    features (a distillation loss on the batch's own images, a pull towards the starting weights
    after each step)."""
    import torch

    from cnndesk.core.runtime.export_cache import EXPORT_LOCK

    device = prec.device
    tl = tc = tn = 0.0
    errors: list[LoadError] = []
    for batch in loader:
        if cancel is not None and cancel.cancelled:
            return EpochResult(tl / max(tn, 1), tc / max(tn, 1), int(tn), True, errors)
        errors += batch.errors
        if batch.x is None:
            continue
        xo = exposure(batch.x) if exposure is not None else None
        xb = (batch.x if xo is None else torch.cat([batch.x, xo.to(batch.x.dtype)])).to(device, non_blocking=True)
        xb = xb.contiguous(memory_format=torch.channels_last)
        yb = batch.y.to(device)
        if keep is not None:
            keep.clear()
        # one step at a time beside an export: while torch.export runs (the background first-answer
        # export, a bundle's) torch.compiler.is_exporting() is true for every thread, and the
        # optimizer's dynamo-disabled methods (zero_grad, step) then edit torch.fx's global trace
        # metadata beside the export's own edits (a KeyError 'custom' in fx.traceback.annotate, and a
        # hung quit, seen once in CI). Exports wait for the step; the step waits for an export.
        with EXPORT_LOCK:
            with torch.autocast(device.type, dtype=prec.amp_dtype, enabled=prec.use_amp):
                out = net(xb)
                if xo is not None:
                    out, out_o = out[:len(yb)], out[len(yb):]
                loss = loss_fn(out.float(), yb)
                if xo is not None:
                    loss = loss + full_trust.EXPOSURE_WEIGHT * full_trust.uniform_loss(out_o)
                extra = keep.loss(xb, len(yb)) if keep is not None else None
                if extra is not None:
                    loss = loss + extra
            opt.zero_grad(set_to_none=True)
            prec.scaler.scale(loss).backward()
            prec.scaler.step(opt)
            prec.scaler.update()
            if keep is not None:
                keep.after_step(opt)
            sched.step()
        tl += float(loss.detach()) * len(yb)
        tc += float((out.argmax(1) == yb).sum())
        tn += len(yb)
        if on_step is not None:
            on_step(len(yb))
    return EpochResult(tl / max(tn, 1), tc / max(tn, 1), int(tn), False, errors)


def evaluate(model, loader, prec: Precision, loss_fn) -> tuple[float, float, list[LoadError]]:
    """(mean loss, accuracy, load errors) over ``loader``."""
    import torch

    model.eval()
    total = correct = 0
    loss_sum = 0.0
    errors: list[LoadError] = []
    with torch.inference_mode():
        for batch in loader:
            errors += batch.errors
            if batch.x is None:
                continue
            xb = batch.x.to(prec.device).contiguous(memory_format=torch.channels_last)
            yb = batch.y.to(prec.device)
            with torch.autocast(prec.device.type, dtype=prec.amp_dtype, enabled=prec.use_amp):
                out = model(xb).float()
            loss_sum += float(loss_fn(out, yb)) * len(yb)
            correct += int((out.argmax(1) == yb).sum())
            total += len(yb)
    return (loss_sum / total if total else float("nan")), (correct / total if total else float("nan")), errors


def calibrate(model, head, data, prec: Precision, ds, seed: int, errors: dict, extra: dict, arch: str = ""):
    """The trust data of the trained network, in fp32 as the app will run the saved model (so the
    evaluation, temperature and threshold match it): (evaluation, novelty, validation novelty,
    temperature, head tensor names). The detector reads the network's multi-stage features (its
    "multi" export) where ``arch`` has them. Adds load errors to ``errors`` and calibration to
    ``extra``."""
    from cnndesk.core.common.errors import ModelError
    from cnndesk.core.networks.multistage import early_tap_modules
    from cnndesk.core.trust import scores as trust

    evaluation = novelty = held = keys = None
    temperature = 1.0
    try:  # the late stages and up to two earlier ones ("multi_early", issue 23)
        taps, lead = early_tap_modules(model, arch) if arch else ([], 0)
    except ModelError:
        taps, lead = [], 0
    widths: list[int] = []
    run = lambda loader: full_trust.embeddings_and_logits(  # noqa: E731
        model, head, loader, prec.device, False, prec.amp_dtype, taps, widths)
    f_tr, _, y_tr, e_tr = run(data.plain_loader)
    f_v, l_v, y_v, e_v = run(data.val_loader)
    errors.update((e.path, e.reason) for e in e_tr + e_v)
    outliers = None
    if taps and len(f_v) >= 10:  # the user's images with their content removed (full_trust)
        outliers = run(full_trust.synthetic_outliers(data.plain_loader, len(f_tr), seed))[0]
    features = ("multi_early" if lead and len(widths) == len(taps) else "multi") if taps else "penultimate"
    early = (2 * sum(widths[:lead]), 2 * sum(widths[:lead + 1])) if features == "multi_early" else None
    if len(f_tr) >= 2:
        novelty, temperature, calib, held = full_trust.fit_trust(f_tr, f_v, l_v, y_v, seed=seed, y_train=y_tr,
                                                                 features=features, outliers=outliers, early=early)
        extra.update(calib)
        keys = full_trust.head_keys(model, head)
        if outliers is not None and full_trust.widen_threshold(novelty, held, run, data.val_loader, len(f_v), seed):
            extra["novelty_threshold"] = "upper bound of the 95th percentile (far from synthesised outliers)"
    if held is not None:  # the validation images' (cross-fitted training images' follow: the threshold's)
        held = held[:len(f_v)]
    if len(y_v):
        paths = [p for p, _ in ds.val if p not in errors]
        evaluation = evaluate_predictions(paths, y_v, trust.softmax(l_v, temperature), ds.classes)
        if novelty is not None and held is not None:
            evaluation.novelty, evaluation.novelty_threshold = held, novelty.threshold
    return evaluation, novelty, held, temperature, keys


def _snapshot(model) -> dict:
    return copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})


def train_full(ds, config, progress=None, cancel=None, on_epoch=None):
    """Train, calibrate and fit the novelty detector; the thread count the speed probe chose holds
    until the end (the trust data's forward passes too) and is then restored."""
    import torch

    threads = torch.get_num_threads()
    try:
        return _train_full(ds, config, progress, cancel, on_epoch)
    finally:
        torch.set_num_threads(threads)


def _train_full(ds, config, progress=None, cancel=None, on_epoch=None):
    import torch
    from torch import nn

    from cnndesk.core.runtime.resolve import torch_model
    from cnndesk.core.training.config import EpochStats, TrainedModel, starting_point
    from cnndesk.core.training.distributed import current

    t0 = time.perf_counter()
    base, previous = starting_point(config)
    rank, world = current()
    device_type = setup(_replace(config, cpu_bf16=False)).device.type
    choices = full_settings.choose(ds, config, device_type)
    auto_epochs = not config.epochs
    config = _replace(config, image_size=choices.image_size, unfrozen_blocks=choices.unfrozen_blocks,
                      epochs=choices.epochs, cpu_bf16=choices.cpu_bf16)
    prec = setup(config)
    device = prec.device
    report(progress, 0, None, f"Loading {(previous or base).title}")
    model = torch_model(previous or base, "logits", progress, cancel)
    k = len(ds.classes)
    keep_head = previous is not None and list(previous.labels) == list(ds.classes)
    model, head = prepare_model(model, base.arch, k, config.unfrozen_blocks, keep_head)
    model = model.to(device).to(memory_format=torch.channels_last)
    size = config.image_size
    report(progress, 0, None, "Reading the images")
    data = load_data(ds, config, base.preprocess, size, rank, world, cancel)
    if cancel is not None and cancel.cancelled:
        raise Cancelled("training cancelled before the first epoch finished")
    cw = torch.tensor(class_weights([y for _, y in ds.train], k), dtype=torch.float32, device=device)
    loss_fn = nn.CrossEntropyLoss(weight=cw, label_smoothing=config.label_smoothing)
    eval_loss = nn.CrossEntropyLoss()
    epochs = config.resolved_epochs()
    per_epoch = max(1, len(data.loader))
    opt, sched = make_optimizer(model, head, config, epochs * per_epoch)
    net = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if device.type == "cpu" and world == 1:
        probe = collate([data.train_set[i] for i in range(min(len(data.train_set), data.loader.batch_size))])
        if probe.x is not None:
            speed_probe(model, head, probe.x, probe.y, loss_fn, prec, choices)
        config = _replace(config, cpu_bf16=prec.use_amp)
    history: list = []
    best = (-1.0, math.inf, None)
    bad_epochs = 0
    cancelled = False
    errors: dict[str, str] = {}
    budget = config.time_budget_s if auto_epochs else 0
    done = [0]
    exposure = None
    if config.outlier_exposure:  # content-free copies of each batch pushed to "none of my classes"
        gen = torch.Generator().manual_seed(config.seed + rank)
        exposure = lambda x: full_trust.exposure_outliers(x, gen)  # noqa: E731
    keep = full_keep.keeper(config.keep_pretrained, model, head, base.arch)  # the pretrained features

    def on_step(_n):
        done[0] += 1
        report(progress, done[0], epochs * per_epoch, f"Epoch {epoch}/{epochs}")

    epoch = 0
    while epoch < epochs:
        epoch += 1
        e0 = time.perf_counter()
        train_mode(model)
        if data.sampler is not None:
            data.sampler.set_epoch(epoch)
        res = train_one_epoch(net, data.loader, opt, sched, loss_fn, prec, cancel, on_step, exposure, keep)
        errors.update((e.path, e.reason) for e in res.errors)
        if res.cancelled:
            cancelled = True
            break
        tl, tc, tn = res.loss * res.images, res.acc * res.images, res.images
        if world > 1:  # training metrics over all ranks
            sums = torch.tensor([tl, tc, tn], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(sums)
            tl, tc, tn = (float(v) for v in sums)
        # every rank validates on the whole (small) validation set: identical early-stopping decisions
        vl, va, val_errors = evaluate(model, data.val_loader, prec, eval_loss)
        errors.update((e.path, e.reason) for e in val_errors)
        seconds = time.perf_counter() - e0
        if epoch == 1 and budget:  # the time budget: as many epochs as fit, measured on the first
            epochs = full_settings.epochs_for_budget(budget, seconds)
            if world > 1:  # every rank runs the same number of epochs
                n = torch.tensor([epochs], device=device)
                torch.distributed.all_reduce(n, op=torch.distributed.ReduceOp.MIN)
                epochs = int(n)
            sched.total = epochs * per_epoch
            choices.epochs, choices.measured = epochs, True
            config = _replace(config, epochs=epochs)
            choices.reasons["epochs"] = (f"{epochs} epochs of {seconds:.1f} s fit the {budget:.0f} s budget"
                                         f" ({len(ds.train)} training images)")
        stats = EpochStats(epoch, epochs, tl / max(tn, 1), tc / max(tn, 1), vl, va, seconds)
        history.append(stats)
        if on_epoch:
            on_epoch(stats)
        if (va, -vl) > (best[0], -best[1]):
            best, bad_epochs = (va, vl, _snapshot(model)), 0
        else:
            bad_epochs += 1
            if bad_epochs >= config.patience:
                break
    if keep is not None:
        keep.close()
    if best[2] is None:
        if cancelled:
            raise Cancelled("training cancelled before the first epoch finished")
        best = (0.0, 0.0, _snapshot(model))
    model.load_state_dict(best[2])
    extra = {"defaults": choices.describe(), **choices.reasons, "images_in_memory": data.in_memory}
    evaluation, novelty, held, temperature, keys = None, None, None, 1.0, None
    if rank == 0 and not cancelled:
        report(progress, 0, None, "Calibrating and learning what your classes look like")
        evaluation, novelty, held, temperature, keys = calibrate(model, head, data, prec, ds, config.seed, errors, extra,
                                                                       base.arch)
    result = TrainedModel("full", base, ds.classes, config, history, evaluation, ds.summary(),
                          state_dict=best[2], cancelled=cancelled, skipped=list(ds.unreadable) + sorted(errors.items()),
                          temperature=temperature, novelty=novelty, extra=extra, val_novelty=held, head_keys=keys)
    result.seconds = time.perf_counter() - t0
    return result
