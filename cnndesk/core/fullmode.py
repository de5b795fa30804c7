"""Full mode's defaults, chosen from the data and the machine, and its trust data (imports torch
only inside functions that train).

* resolution: from the images' sizes (small source images gain nothing from 224 px and cost
  3x the time): the median shorter side rounded up to a multiple of 32, between 64 and 224
  (32 px icons train at 64 px: measured as accurate as 96 px at less than half the time);
* how much of the network to train: the whole network when there are enough images per class
  (measured: whole network 0.985 vs last two blocks 0.948 on small unusual images), otherwise the
  last two blocks;
* epochs: a time budget (``TrainConfig.time_budget_s``, 150 s): the first epoch is timed and as
  many epochs as fit the budget are run (3 to 15), with early stopping (patience 2); before the
  first epoch, an estimate of about 6000 image passes;
* the images are decoded once into memory when they fit (decoding every step cost more than the
  network on small images);
* bfloat16 autocast on CPUs with native bf16 (AMX or AVX512-BF16), checked against fp32 on a
  batch before training: if they disagree, fp32; then a speed probe times a training step with
  each candidate (fp32/bf16, one thread/all threads) and keeps the fastest (measured here: bf16 2x
  slower than fp32 at 64 px; on a busy machine one thread 5-8x faster than two);
* horizontal flips off (they change the meaning of text, digits, arrows); an option.

After training, the network's penultimate embeddings of the training images (no augmentation)
and the validation images give the novelty detector (threshold from the validation images,
held out) and the validation logits give the temperature (core.trust).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from cnndesk.core import trust

SIZE_MIN, SIZE_MAX = 64, 224
WHOLE_NETWORK_MIN_PER_CLASS = 30
EPOCH_BUDGET_IMAGES = 6000
MIN_EPOCHS, MAX_EPOCHS = 3, 15


@dataclass
class FullChoices:
    image_size: int
    unfrozen_blocks: int
    epochs: int
    cpu_bf16: bool
    reasons: dict
    measured: bool = False  # epochs set from the timed first epoch
    probed: bool = False  # precision and threads set from timed training steps

    def describe(self) -> str:
        net = "the whole network" if self.unfrozen_blocks <= 0 else f"the last {self.unfrozen_blocks} blocks"
        prec = "bfloat16" if self.cpu_bf16 else "float32"
        if self.cpu_bf16 and not self.probed:
            prec = "bfloat16 where it is faster"
        budget = self.reasons.get("time_budget")
        epochs = f"as many epochs as fit {budget}" if budget and not self.measured else f"up to {self.epochs} epochs"
        return f"{self.image_size} px · {net} · {epochs} · {prec}"


def cpu_has_native_bf16() -> bool:
    """AMX-BF16 or AVX512-BF16 in the CPU flags (Linux); elsewhere assume not."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            flags = set()
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        return False
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def median_short_side(paths: list[str], sample: int = 64) -> int | None:
    from cnndesk.core.images import open_image

    rng = np.random.default_rng(0)
    pick = [paths[i] for i in rng.choice(len(paths), min(sample, len(paths)), replace=False)] if paths else []
    sides = []
    for p in pick:
        try:
            with open_image(p) as im:  # header only
                sides.append(min(im.size))
        except Exception:
            continue
    return int(np.median(sides)) if sides else None


def choose(ds, config, device: str = "cpu") -> FullChoices:
    """Resolve every full-mode setting left on automatic (None) in ``config``."""
    reasons = {}
    paths = [p for p, _ in ds.train]
    size = config.image_size
    if not size:
        side = median_short_side(paths)
        size = SIZE_MAX if side is None else int(min(SIZE_MAX, max(SIZE_MIN, -(-side // 32) * 32)))
        reasons["image_size"] = f"images are about {side} px" if side else "default"
    blocks = config.unfrozen_blocks
    per_class = len(ds.train) / max(1, len(ds.classes))
    if blocks is None:
        blocks = 0 if per_class >= WHOLE_NETWORK_MIN_PER_CLASS else 2
        reasons["unfrozen_blocks"] = f"{per_class:.0f} images per class"
    epochs = config.epochs
    if not epochs:
        epochs = int(min(12, max(MIN_EPOCHS, round(EPOCH_BUDGET_IMAGES / max(1, len(ds.train))))))
        reasons["epochs"] = f"{len(ds.train)} training images"
        budget = getattr(config, "time_budget_s", 0) or 0
        if budget > 0:
            reasons["time_budget"] = f"{budget:.0f} s"
            reasons["epochs"] = f"as many as fit {budget:.0f} s of training (timed on the first epoch)"
    bf16 = config.cpu_bf16
    if bf16 is None:
        bf16 = device == "cpu" and cpu_has_native_bf16() and os.environ.get("CNNDESK_NO_BF16") != "1"
        reasons["cpu_bf16"] = "native bfloat16 on this CPU" if bf16 else "no native bfloat16"
    return FullChoices(int(size), int(blocks), int(epochs), bool(bf16), reasons)


def epochs_for_budget(budget_s: float, epoch_s: float) -> int:
    """How many epochs of ``epoch_s`` seconds fit ``budget_s`` (at least MIN_EPOCHS, at most MAX_EPOCHS)."""
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, budget_s // max(epoch_s, 1e-3))))


def bf16_agrees(model, head, batch) -> tuple[bool, float]:
    """Forward ``batch`` in fp32 and under bf16 autocast and compare the embeddings the head sees
    (the new head is still random, so its logits say nothing yet): every image's embedding must
    keep a cosine similarity of at least 0.99. Returns (ok, lowest cosine similarity)."""
    import torch

    seen = []
    handle = head.register_forward_pre_hook(lambda _m, inp: seen.append(inp[0].detach().float().flatten(1)))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(batch)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                model(batch)
    finally:
        handle.remove()
        model.train(was_training)
    ref, got = seen
    cos = float(torch.nn.functional.cosine_similarity(ref, got, dim=1).min())
    return cos >= 0.99, cos


def speed_probe(model, head, x, y, loss_fn, prec, choices, steps: int = 1) -> None:
    """On the CPU, time a few training steps (forward + backward) of the first batch with each
    candidate setting and keep the fastest: bfloat16 autocast only where it agrees with fp32 and is
    faster here (on small images it is not: measured 2x slower at 64 px), and one thread instead of
    all when that is faster (a busy machine: thread synchronisation costs more than it gains).
    The network's weights and batch-norm statistics are left as they were."""
    import time

    import torch

    from cnndesk.core.fulltrain import train_mode

    xb, yb = x.contiguous(memory_format=torch.channels_last), y
    if prec.use_amp:  # bf16 checked against fp32 first
        ok, cos = bf16_agrees(model, head, xb[:16])
        choices.reasons["bf16_check"] = f"{'agrees' if ok else 'DISAGREES'} with fp32 (embedding cosine ≥ {cos:.4f})"
        if not ok:
            prec.use_amp = choices.cpu_bf16 = False
    threads = torch.get_num_threads()
    candidates = [(t, amp) for t in dict.fromkeys((1, threads)) for amp in dict.fromkeys((False, prec.use_amp))]
    if len(candidates) == 1:
        return
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    timings = {}
    train_mode(model)
    try:
        for t, amp in candidates:
            torch.set_num_threads(t)
            best = float("inf")
            so_far = min(timings.values(), default=float("inf"))
            for i in range(steps + 1):
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=prec.amp_dtype, enabled=amp):
                    loss = loss_fn(model(xb).float(), yb)
                loss.backward()
                model.zero_grad(set_to_none=True)
                took = time.perf_counter() - t0
                if i:  # the first step warms up
                    best = min(best, took)
                elif took > 3 * so_far:  # clearly slower even counting warm-up: not worth timing
                    best = took
                    break
            timings[(t, amp)] = best
    finally:
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
    (t, amp), _fastest = min(timings.items(), key=lambda kv: kv[1])
    choices.probed = True
    torch.set_num_threads(t)
    prec.use_amp = choices.cpu_bf16 = amp
    per_image = {f"{'bf16' if a else 'fp32'}/{n} thread{'s' if n > 1 else ''}": round(v / len(yb) * 1000, 1)
                 for (n, a), v in timings.items()}
    choices.reasons["speed_probe_ms_per_image"] = per_image
    choices.reasons["threads"] = t


def embeddings_and_logits(model, head, loader, device, use_amp, amp_dtype):
    """(penultimate embeddings = the head's input, logits, labels, load errors) for every image of
    ``loader`` (batches of ``core.fulltrain.collate``)."""
    import torch

    feats, logits, ys, errors = [], [], [], []
    handle = head.register_forward_pre_hook(lambda _m, inp: feats.append(inp[0].detach().float().flatten(1).cpu()))
    model.eval()
    try:
        with torch.inference_mode():
            for batch in loader:
                errors += batch.errors
                if batch.x is None:
                    continue
                xb = batch.x.to(device).contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    logits.append(model(xb).float().cpu())
                ys.append(batch.y.numpy())
    finally:
        handle.remove()
    if not logits:
        return np.zeros((0, 1), np.float32), np.zeros((0, 1), np.float32), np.zeros(0, int), errors
    return torch.cat(feats).numpy(), torch.cat(logits).numpy(), np.concatenate(ys), errors


def head_keys(model, head) -> tuple[str, str] | None:
    for name, m in model.named_modules():
        if m is head:
            return f"{name}.weight", f"{name}.bias"
    return None


def fit_trust(train_feats, val_feats, val_logits, y_val, seed=0):
    """(novelty, temperature, calibration dict, validation novelty scores)."""
    with trust.one_blas_thread():
        return _fit_trust(train_feats, val_feats, val_logits, y_val, seed)


def _fit_trust(train_feats, val_feats, val_logits, y_val, seed=0):
    temperature = trust.fit_temperature(val_logits, y_val) if len(y_val) >= 10 else 1.0
    calib = {}
    if len(y_val):
        calib = {"ece_before": round(trust.ece(trust.softmax(val_logits), y_val), 4),
                 "ece_after": round(trust.ece(trust.softmax(val_logits, temperature), y_val), 4),
                 "temperature_fitted_on": "validation"}
    if len(val_feats) >= 10:
        novelty, held = trust.fit_novelty_heldout(train_feats, val_feats, features="penultimate", seed=seed)
    else:  # no held-out images: out-of-fold within the training images
        folds = np.arange(len(train_feats)) % 5
        novelty, _ = trust.fit_novelty_oof(train_feats, folds, features="penultimate", seed=seed)
        held = None
    return novelty, temperature, calib, held
