"""Experiment helper for issue 23 (third step): trains a full model through the app's API on a
bench_unknown user set and dumps, for every image, the pooled mean, max *and standard deviation*
of every stage of the fine-tuned network plus its penultimate layer, for: training, validation,
test, unrelated (tune and report looks), the synthesised outliers of ``full_trust``, phase-scrambled
copies of the same source images (same spectrum, content gone) and augmented copies of the
validation images (small crops, shifts, contrast: same content) for the threshold, and the
"tune2" look (unknown_data.make_tune2). Offline detectors are then compared on these
(bench/exp_full_stats_detectors.py). ``--oe off``: trained without outlier exposure (the training
before it; the docs' "no exposure" dumps); ``--oe both --oe-weight W``: this script's own exposure
loop (the same copies as ``full_trust.exposure_outliers``) with another weight.

Usage: python bench/exp_full_stats.py --kinds digits,textures,objects --out DIR [--train-seed 0] [--oe off]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import unknown_data  # noqa: E402
from bench_unknown import SIZES  # noqa: E402

CAPTURE: dict = {}


def stage_stats(model, head, batches, stages):
    """Rows [mean(s), max(s), std(s) for every stage] + penultimate, logits, labels."""
    import torch

    rows, logits, ys, cur = [], [], [], []

    def keep(_m, _i, out):
        o = out.float()
        cur.extend([o.mean(dim=(2, 3)), o.amax(dim=(2, 3)), o.std(dim=(2, 3))])

    def pre(_m, inp):
        rows.append(torch.cat(cur + [inp[0].float().flatten(1)], 1))
        cur.clear()

    hs = [head.register_forward_pre_hook(pre)] + [s.register_forward_hook(keep) for s in stages]
    model.eval()
    try:
        with torch.inference_mode():
            for b in batches:
                if b.x is None:
                    continue
                logits.append(model(b.x.float()).float())
                ys.append(b.y.numpy())
    finally:
        for h in hs:
            h.remove()
    return torch.cat(rows).numpy(), torch.cat(logits).numpy(), np.concatenate(ys)


def phase_scrambled(loader, n_train, seed):
    """Each of the synth source images with the phases of its spectrum randomised (the same random
    phase for every channel): same spectrum and colours, no content."""
    import torch

    from cnndesk.core.training.full_data import Batch
    from cnndesk.core.training.full_trust import SYNTH_SOURCES

    gen = torch.Generator().manual_seed(seed + 7)
    stride = max(1, -(-n_train // SYNTH_SOURCES))
    out, seen = [], 0
    for batch in loader:
        if batch.x is None:
            continue
        idx = [i for i in range(len(batch.x)) if (seen + i) % stride == 0]
        seen += len(batch.x)
        if not idx:
            continue
        x = batch.x[idx].float()
        f = torch.fft.fft2(x)
        noise = torch.fft.fft2(torch.rand((len(idx), 1) + tuple(x.shape[-2:]), generator=gen))
        ph = torch.exp(1j * torch.angle(noise))
        y = torch.fft.ifft2(f * ph).real
        y = y - y.mean(dim=(2, 3), keepdim=True) + x.mean(dim=(2, 3), keepdim=True)
        out.append(Batch(y, torch.zeros(len(idx), dtype=torch.long)))
    return out


def augmented(loader, copies, seed, lo=0.8, jitter=0.1):
    """``copies`` augmented versions of every image: a random crop of 80-100 % of the side scaled
    back, contrast x 0.9-1.1 around the mean and a small brightness shift (normalized units)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    from cnndesk.core.training.full_data import Batch

    gen = torch.Generator().manual_seed(seed + 11)
    out = []
    for batch in loader:
        if batch.x is None:
            continue
        x = batch.x.float()
        h, w = x.shape[-2:]
        for _ in range(copies):
            ys = []
            for img in x:
                s = float(lo + (1 - lo) * torch.rand(1, generator=gen))
                ch, cw = int(h * s), int(w * s)
                t = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
                left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
                c = F.interpolate(img[None, :, t:t + ch, left:left + cw], size=(h, w), mode="bilinear",
                                  antialias=True, align_corners=False)[0]
                a = float(1 - jitter + 2 * jitter * torch.rand(1, generator=gen))
                b = float(2 * jitter * torch.rand(1, generator=gen) - jitter)
                m = c.mean(dim=(1, 2), keepdim=True)
                ys.append(m + a * (c - m) + b)
            out.append(Batch(torch.stack(ys), batch.y))
    return out


def oe_epoch(kind: str, weight: float):
    """A ``full_loop.train_one_epoch`` with outlier exposure (Hendrycks et al. 2019): a quarter of
    every batch again as content-free copies (``kind``: "phase" phase-scrambled, "synth" low-passed
    to 2-4 px, "both" half each), whose softmax is pushed towards uniform (loss weight ``weight``)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    from cnndesk.core.training.full_loop import EpochResult

    gen = torch.Generator().manual_seed(5)

    def outliers(x):
        m = max(2, len(x) // 4)
        x = x[:m].float()
        outs = []
        if kind in ("phase", "both"):
            f = torch.fft.fft2(x)
            ph = torch.exp(1j * torch.angle(torch.fft.fft2(torch.rand((m, 1) + tuple(x.shape[-2:]), generator=gen))))
            y = torch.fft.ifft2(f * ph).real
            outs.append(y - y.mean(dim=(2, 3), keepdim=True) + x.mean(dim=(2, 3), keepdim=True))
        if kind in ("synth", "both"):
            h, w = x.shape[-2:]
            k = int(torch.randint(2, 5, (1,), generator=gen))
            outs.append(F.interpolate(F.interpolate(x, size=(k, k), mode="bilinear", antialias=True), size=(h, w),
                                      mode="bicubic", align_corners=False))
        out = torch.cat(outs)
        return out[torch.randperm(len(out), generator=gen)[:m]]

    def train_one_epoch(net, loader, opt, sched, loss_fn, prec, cancel=None, on_step=None, exposure=None):
        del exposure  # this experiment's own exposure replaces the training's
        device = prec.device
        tl = tc = tn = 0.0
        errors = []
        for batch in loader:
            if cancel is not None and cancel.cancelled:
                return EpochResult(tl / max(tn, 1), tc / max(tn, 1), int(tn), True, errors)
            errors += batch.errors
            if batch.x is None:
                continue
            xo = outliers(batch.x)
            xb = torch.cat([batch.x, xo]).to(device).contiguous(memory_format=torch.channels_last)
            yb = batch.y.to(device)
            n = len(yb)
            with torch.autocast(device.type, dtype=prec.amp_dtype, enabled=prec.use_amp):
                out_all = net(xb).float()
                out = out_all[:n]
                loss = loss_fn(out, yb) + weight * (-F.log_softmax(out_all[n:], 1).mean(1)).mean()
            opt.zero_grad(set_to_none=True)
            prec.scaler.scale(loss).backward()
            prec.scaler.step(opt)
            prec.scaler.update()
            sched.step()
            tl += float(loss.detach()) * n
            tc += float((out.argmax(1) == yb).sum())
            tn += n
            if on_step is not None:
                on_step(n)
        return EpochResult(tl / max(tn, 1), tc / max(tn, 1), int(tn), False, errors)

    return train_one_epoch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", default="digits,textures,objects")
    ap.add_argument("--out", required=True)
    ap.add_argument("--full-budget", type=float, default=40.0)
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--test-seed", type=int, default=1)
    ap.add_argument("--unrelated-seed", type=int, default=3)
    ap.add_argument("--aug-copies", type=int, default=4)
    ap.add_argument("--oe", default="", help="outlier exposure while fine-tuning: phase | synth | both (this "
                    "script's own loop), off (none: the training before it); default: the training's own")
    ap.add_argument("--oe-weight", type=float, default=0.5)
    args = ap.parse_args()
    import torch

    from cnndesk.core.networks.adapters import adapter_for
    from cnndesk.core.training import full_loop, full_trust
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train
    from cnndesk.core.training.full_data import Images, collate

    orig = full_loop.calibrate

    def spy(model, head, data, prec, ds, seed, errors, extra, arch=""):
        CAPTURE.update(model=model, head=head, data=data, arch=arch, seed=seed)
        return orig(model, head, data, prec, ds, seed, errors, extra, arch)

    full_loop.calibrate = spy
    if args.oe and args.oe != "off":
        full_loop.train_one_epoch = oe_epoch(args.oe, args.oe_weight)
    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-exp-stats-"))
    os.environ.setdefault("CNNDESK_CACHE_DIR", str(tmp / "cache"))
    os.environ["CNNDESK_DATA_DIR"] = str(tmp / "data")
    unrelated = {look: unknown_data.make_unrelated(tmp / f"unrelated-{look}", look, 30, seed=args.unrelated_seed)
                 for look in ("tune", "report")}
    unrelated["tune2"] = unknown_data.make_tune2(tmp / "unrelated-tune2", 30, seed=args.unrelated_seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for kind in args.kinds.split(","):
        n_tr, n_te = SIZES[kind]
        data_root = unknown_data.make_user_set(tmp / f"{kind}-train", kind, n_tr, seed=args.train_seed)
        test_root = unknown_data.make_user_set(tmp / f"{kind}-test", kind, n_te, seed=args.test_seed)
        ds = scan(data_root)
        cfg = TrainConfig(mode="full")
        cfg.time_budget_s = args.full_budget
        cfg.outlier_exposure = args.oe != "off"
        import time

        t0 = time.perf_counter()
        res = train(ds, cfg)
        print(kind, "trained", round(time.perf_counter() - t0, 1), "s", res.metrics(), flush=True)
        c = CAPTURE
        data, arch, model, head = c["data"], c["arch"], c["model"], c["head"]
        val_tf, min_side = data.val_set.transform, data.val_set.min_side

        def loader(items, val_tf=val_tf, min_side=min_side):
            return torch.utils.data.DataLoader(Images(items, val_tf, min_side), batch_size=32, collate_fn=collate)

        test = sorted(str(p) for p in test_root.rglob("*.png"))
        y_test = np.array([ds.classes.index(Path(p).parent.name) for p in test])
        sets = {"train": data.plain_loader, "val": data.val_loader, "test": loader(list(zip(test, y_test, strict=True)))}
        for look in ("tune", "report", "tune2"):
            for fam, ps in unrelated[look].items():
                sets[f"u_{look}_{fam}"] = loader([(p, 0) for p in ps])
        sets["synth"] = full_trust.synthetic_outliers(data.plain_loader, len(ds.train), c["seed"])
        sets["phase"] = phase_scrambled(data.plain_loader, len(ds.train), c["seed"])
        sets["val_aug"] = augmented(data.val_loader, args.aug_copies, c["seed"])
        sets["val_aug2"] = augmented(data.val_loader, 2, c["seed"] + 2, lo=0.9, jitter=0.05)
        stages = adapter_for(arch).stage_list(model)
        chans = []
        hooks = [s.register_forward_hook(lambda _m, _i, o, chans=chans: chans.append(o.shape[1])) for s in stages]
        with torch.inference_mode():
            model(next(iter(data.val_loader)).x[:1])
        for hk in hooks:
            hk.remove()
        arrays = {"classes": np.array(ds.classes), "chans": np.array(chans)}
        for name, ld in sets.items():
            f, lg, y = stage_stats(model, head, ld, stages)
            arrays[f"x_{name}"] = f.astype(np.float32)
            arrays[f"logits_{name}"] = lg
            arrays[f"y_{name}"] = y
        np.savez(out / f"{kind}.npz", **arrays)
        print(kind, "saved", {k: v.shape for k, v in arrays.items() if k.startswith("x_")}, flush=True)


if __name__ == "__main__":
    main()
