"""Full mode's network set-up (imports torch inside functions): device and precision, head
surgery and which layers train, train mode that keeps frozen batch-norm statistics, and the speed
probe that picks precision and threads from timed training steps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Precision:
    device: object  # torch.device
    use_amp: bool
    amp_dtype: object  # torch.dtype
    scaler: object = None  # torch.amp.GradScaler


def setup(config):
    """The device and the precision (bf16 autocast on CPUs with native bf16, AMP on CUDA)."""
    import torch

    from cnndesk.core.runtime.devices import resolve_device

    torch.manual_seed(config.seed)
    device = torch.device(resolve_device(config.device).device)
    use_amp = device.type == "cuda" or (device.type == "cpu" and bool(config.cpu_bf16))
    amp_dtype = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and amp_dtype == torch.float16)
    return Precision(device, use_amp, amp_dtype, scaler)


def prepare_model(model, arch: str, num_classes: int, unfrozen_blocks: int, keep_head: bool = False):
    """A new head for ``num_classes`` (unless continuing with the same classes) and the layers to
    train, through the family's adapter. Returns (model, head module)."""
    from cnndesk.core.networks.adapters import adapter_for

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
