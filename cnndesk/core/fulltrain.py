"""Full training (PyTorch), split by responsibility as torchvision's reference scripts are:
:func:`setup` (device, precision), :func:`prepare_model` (head surgery, which layers train),
:func:`load_data` (transforms, datasets, loaders), :func:`make_optimizer`, :func:`train_one_epoch`,
:func:`evaluate`; :func:`train_full` runs them, with early stopping and a time budget, and fits the
trust data (temperature, novelty) on the best epoch's network. Distributed set-up lives in
``core.distributed``. The settings chosen from the data come from ``core.fullmode``.

Loader errors survive worker processes: a file that cannot be read becomes an error marker in its
batch and is collected here, in the main process.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from dataclasses import replace as _replace

from cnndesk.core import fullmode
from cnndesk.core.datasets import class_weights
from cnndesk.core.errors import Cancelled, CnndeskError
from cnndesk.core.evaluation import evaluate as evaluate_predictions
from cnndesk.core.progress import report


@dataclass
class Precision:
    device: object  # torch.device
    use_amp: bool
    amp_dtype: object  # torch.dtype
    scaler: object = None  # torch.amp.GradScaler


def setup(config):
    """The device and the precision (bf16 autocast on CPUs with native bf16, AMP on CUDA)."""
    import torch

    from cnndesk.core.runtime import resolve_device

    torch.manual_seed(config.seed)
    device = torch.device(resolve_device(config.device).device)
    use_amp = device.type == "cuda" or (device.type == "cpu" and bool(config.cpu_bf16))
    amp_dtype = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and amp_dtype == torch.float16)
    return Precision(device, use_amp, amp_dtype, scaler)


def prepare_model(model, arch: str, num_classes: int, unfrozen_blocks: int, keep_head: bool = False):
    """A new head for ``num_classes`` (unless continuing with the same classes) and the layers to
    train, through the family's adapter. Returns (model, head module)."""
    from cnndesk.core.models.adapters import adapter_for

    adapter = adapter_for(arch)
    if not keep_head:
        model = adapter.new_head(model, num_classes)
    adapter.unfreeze(model, unfrozen_blocks)
    return model, adapter.head(model)


def train_mode(model) -> None:
    """Train mode, except batch-norm layers whose weights are frozen: they keep their pretrained
    statistics (small batches would otherwise overwrite them and wreck the frozen features)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    model.train()
    for m in model.modules():
        if isinstance(m, _BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


# -- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadError:
    """What ``Images.__getitem__`` returns for an unreadable file (picklable: crosses worker processes)."""

    path: str
    reason: str


class Images:
    """(image tensor, label) per item; an unreadable file gives a :class:`LoadError` instead.
    ``cache``: path -> decoded image (or LoadError) from :func:`decode_all`, used when given."""

    def __init__(self, items, transform, min_side, cache=None):
        self.items, self.transform, self.min_side, self.cache = items, transform, min_side, cache

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, y = self.items[i]
        img = self.cache.get(path) if self.cache is not None else None
        if img is None:
            img = _decode(path, self.min_side)
        if isinstance(img, LoadError):
            return img
        return self.transform(img), y


def _decode(path: str, min_side: int):
    from cnndesk.core.images import load_image

    try:
        return load_image(path, min_side=min_side)
    except CnndeskError as exc:
        return LoadError(path, str(exc))


@dataclass
class Batch:
    x: object  # tensor or None when every image of the batch failed
    y: object
    errors: list[LoadError] = field(default_factory=list)


def collate(items) -> Batch:
    import torch

    errors = [b for b in items if isinstance(b, LoadError)]
    good = [b for b in items if not isinstance(b, LoadError)]
    if not good:
        return Batch(None, None, errors)
    return Batch(torch.stack([b[0] for b in good]), torch.tensor([b[1] for b in good]), errors)


MEMORY_CACHE_BYTES = 1 << 30  # decode the whole set once when its decoded images take less than this


def decode_all(items, min_side: int, max_bytes: int = MEMORY_CACHE_BYTES, cancel=None) -> dict | None:
    """Every image decoded once, kept in memory (small images: decoding and resizing every step
    otherwise costs more than the network); None when the set would not fit in ``max_bytes``."""
    from cnndesk.core.images import open_image

    est = 0
    for path, _ in items[:: max(1, len(items) // 32)]:  # headers of a sample: the decoded size
        try:
            with open_image(path) as im:
                w, h = im.size
        except Exception:
            continue
        scale = min(1.0, 4 * min_side / max(1, min(w, h)))  # load_image reduces big images
        est += int(w * h * scale * scale * 3)
    sampled = len(items[:: max(1, len(items) // 32)]) or 1
    if est * len(items) / sampled > max_bytes:
        return None
    cache = {}
    for path, _ in items:
        if cancel is not None and cancel.cancelled:
            return None
        cache[path] = _decode(path, min_side)
    return cache


@dataclass
class Data:
    train_set: Images
    val_set: Images
    loader: object
    val_loader: object
    plain_loader: object  # the training images without augmentation (trust data)
    sampler: object = None
    in_memory: bool = False


def transforms(pre, size: int, config):
    """(training transform with augmentation, validation transform = the app's preprocessing)."""
    import torch
    from torchvision.transforms import v2

    norm = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(pre.mean), list(pre.std))]
    aug = [v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True) if config.augment_crop
           else v2.Compose([v2.Resize(int(size * 256 / 224), antialias=True), v2.CenterCrop(size)])]
    if config.augment_flip:
        aug.append(v2.RandomHorizontalFlip())
    if config.augment_color:
        aug.append(v2.ColorJitter(0.2, 0.2, 0.2))
    train_tf = v2.Compose(aug + norm)
    # validation sees exactly what the app will feed the saved model: the same Preprocess code
    val_pre = _replace(pre, resize=int(size * 256 / 224), crop=size) if size != pre.crop else pre

    def val_tf(img):
        return torch.from_numpy(val_pre(img))

    return train_tf, val_tf


def load_data(ds, config, pre, size: int, rank: int = 0, world: int = 1, cancel=None) -> Data:
    import torch

    train_tf, val_tf = transforms(pre, size, config)
    min_side = int(size * 1.15)
    cache = decode_all(ds.train + ds.val, min_side, cancel=cancel) if config.cache_images else None
    train_set = Images(ds.train, train_tf, min_side, cache)
    val_set = Images(ds.val, val_tf, min_side, cache)
    g = torch.Generator().manual_seed(config.seed)
    sampler = None
    if world > 1:
        sampler = torch.utils.data.distributed.DistributedSampler(train_set, num_replicas=world, rank=rank,
                                                                  shuffle=True, seed=config.seed)
    workers = config.num_workers
    loader = torch.utils.data.DataLoader(train_set, batch_size=config.batch_size, shuffle=sampler is None,
                                         generator=g if sampler is None else None, sampler=sampler,
                                         collate_fn=collate, num_workers=workers, drop_last=len(train_set) > config.batch_size * 4)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.batch_size * 2, collate_fn=collate,
                                             num_workers=workers)
    plain = torch.utils.data.DataLoader(Images(ds.train, val_tf, min_side, cache), batch_size=config.batch_size * 2,
                                        collate_fn=collate, num_workers=workers)
    return Data(train_set, val_set, loader, val_loader, plain, sampler, cache is not None)


# -- optimisation -----------------------------------------------------------------------------


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


def train_one_epoch(net, loader, opt, sched, loss_fn, prec: Precision, cancel=None, on_step=None) -> EpochResult:
    """One pass over ``loader``; ``on_step(images)`` after every batch."""
    import torch

    device = prec.device
    tl = tc = tn = 0.0
    errors: list[LoadError] = []
    for batch in loader:
        if cancel is not None and cancel.cancelled:
            return EpochResult(tl / max(tn, 1), tc / max(tn, 1), int(tn), True, errors)
        errors += batch.errors
        if batch.x is None:
            continue
        xb = batch.x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        yb = batch.y.to(device)
        with torch.autocast(device.type, dtype=prec.amp_dtype, enabled=prec.use_amp):
            out = net(xb)
            loss = loss_fn(out.float(), yb)
        opt.zero_grad(set_to_none=True)
        prec.scaler.scale(loss).backward()
        prec.scaler.step(opt)
        prec.scaler.update()
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


# -- the whole run ----------------------------------------------------------------------------


def calibrate(model, head, data, prec: Precision, ds, seed: int, errors: dict, extra: dict):
    """The trust data of the trained network, in fp32 as the app will run the saved model (so the
    evaluation, temperature and threshold match it): (evaluation, novelty, validation novelty,
    temperature, head tensor names). Adds load errors to ``errors`` and calibration to ``extra``."""
    from cnndesk.core import trust

    evaluation = novelty = held = keys = None
    temperature = 1.0
    f_tr, _, _, e_tr = fullmode.embeddings_and_logits(model, head, data.plain_loader, prec.device, False, prec.amp_dtype)
    f_v, l_v, y_v, e_v = fullmode.embeddings_and_logits(model, head, data.val_loader, prec.device, False, prec.amp_dtype)
    errors.update((e.path, e.reason) for e in e_tr + e_v)
    if len(f_tr) >= 2:
        novelty, temperature, calib, held = fullmode.fit_trust(f_tr, f_v, l_v, y_v, seed=seed)
        extra.update(calib)
        keys = fullmode.head_keys(model, head)
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

    from cnndesk.core.distributed import current
    from cnndesk.core.models.build import build_model
    from cnndesk.core.training import EpochStats, TrainedModel, _starting_point

    t0 = time.perf_counter()
    base, previous = _starting_point(config)
    rank, world = current()
    device_type = setup(_replace(config, cpu_bf16=False)).device.type
    choices = fullmode.choose(ds, config, device_type)
    auto_epochs = not config.epochs
    config = _replace(config, image_size=choices.image_size, unfrozen_blocks=choices.unfrozen_blocks,
                      epochs=choices.epochs, cpu_bf16=choices.cpu_bf16)
    prec = setup(config)
    device = prec.device
    report(progress, 0, None, f"Loading {(previous or base).title}")
    model = build_model(previous or base, progress, cancel)
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
            fullmode.speed_probe(model, head, probe.x, probe.y, loss_fn, prec, choices)
        config = _replace(config, cpu_bf16=prec.use_amp)
    history: list = []
    best = (-1.0, math.inf, None)
    bad_epochs = 0
    cancelled = False
    errors: dict[str, str] = {}
    budget = config.time_budget_s if auto_epochs else 0
    done = [0]

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
        res = train_one_epoch(net, data.loader, opt, sched, loss_fn, prec, cancel, on_step)
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
            epochs = fullmode.epochs_for_budget(budget, seconds)
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
    if best[2] is None:
        if cancelled:
            raise Cancelled("training cancelled before the first epoch finished")
        best = (0.0, 0.0, _snapshot(model))
    model.load_state_dict(best[2])
    extra = {"defaults": choices.describe(), **choices.reasons, "images_in_memory": data.in_memory}
    evaluation, novelty, held, temperature, keys = None, None, None, 1.0, None
    if rank == 0 and not cancelled:
        report(progress, 0, None, "Calibrating and learning what your classes look like")
        evaluation, novelty, held, temperature, keys = calibrate(model, head, data, prec, ds, config.seed, errors, extra)
    result = TrainedModel("full", base, ds.classes, config, history, evaluation, ds.summary(),
                          state_dict=best[2], cancelled=cancelled, skipped=list(ds.unreadable) + sorted(errors.items()),
                          temperature=temperature, novelty=novelty, extra=extra, val_novelty=held, head_keys=keys)
    result.seconds = time.perf_counter() - t0
    return result

