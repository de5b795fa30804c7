"""Full mode's trust data: the penultimate embeddings and logits of a trained network over a
loader, and the novelty detector and temperature fitted on them (:mod:`cnndesk.core.trust`).
Imports torch only inside functions."""

from __future__ import annotations

import numpy as np

from cnndesk.core.trust import scores as trust


def embeddings_and_logits(model, head, loader, device, use_amp, amp_dtype, taps=(), widths=None):
    """(embeddings, logits, labels, load errors) for every image of ``loader`` (batches of
    ``core.fulltrain.collate``). The embeddings are the head's input (the penultimate layer); with
    ``taps`` (``networks.multistage.tap_modules``) the multi-stage features of the same pass, in
    the order of ``networks.multistage.MultiStage`` (mean and max of each stage, then the head's
    input): what the model's "multi" export gives the app. ``widths``: a list that receives the
    channels of each tap (once)."""
    import torch

    feats, logits, ys, errors = [], [], [], []
    stages: list = []

    def keep_stage(_m, _inp, out):
        if widths is not None and len(widths) < len(taps):
            widths.append(int(out.shape[1]))
        stages.append(out.float().mean(dim=(2, 3)))
        stages.append(out.float().amax(dim=(2, 3)))

    def keep_input(_m, inp):
        feats.append(torch.cat(stages + [inp[0].detach().float().flatten(1)], dim=1).cpu())
        stages.clear()

    handles = [head.register_forward_pre_hook(keep_input)] + [t.register_forward_hook(keep_stage) for t in taps]
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
        for h in handles:
            h.remove()
    if not logits:
        return np.zeros((0, 1), np.float32), np.zeros((0, 1), np.float32), np.zeros(0, int), errors
    return torch.cat(feats).numpy(), torch.cat(logits).numpy(), np.concatenate(ys), errors


SYNTH_SOURCES = 60  # training images whose content-free versions are the synthesised outliers


def synthetic_outliers(loader, n_train: int, seed: int = 0) -> list:
    """Batches (``full_data.Batch``) of outliers synthesised from up to SYNTH_SOURCES training
    images of ``loader`` (preprocessed tensors): each image low-passed to 2-4 px and back (smooth
    gradients and blobs with its colours), blurred (a 1/12-size version scaled back up) and flattened to
    its mean colour with a little noise: the user's own look without its content. All three
    operations are linear and per channel, so on normalized tensors they equal the same
    operations on the pixels."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    from cnndesk.core.training.full_data import Batch

    gen = torch.Generator().manual_seed(seed)
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
        h, w = x.shape[-2:]
        k = int(torch.randint(2, 5, (1,), generator=gen))
        low = F.interpolate(F.interpolate(x, size=(k, k), mode="bilinear", antialias=True), size=(h, w),
                            mode="bicubic", align_corners=False)
        small = (max(2, h // 12), max(2, w // 12))
        blur = F.interpolate(F.interpolate(x, size=small, mode="bilinear", antialias=True), size=(h, w),
                             mode="bilinear", align_corners=False)
        flat = x.mean(dim=(2, 3), keepdim=True) + 0.07 * torch.randn(x.shape, generator=gen)
        y = torch.zeros(len(idx), dtype=torch.long)
        out += [Batch(low, y), Batch(blur, y), Batch(flat, y)]
    return out


EXPOSURE_SHARE = 4  # outlier exposure: one content-free copy per this many images of a training batch
EXPOSURE_WEIGHT = 0.5  # its loss (cross-entropy to the uniform distribution) next to the classification loss


def exposure_outliers(x, gen):
    """Outlier exposure while fine-tuning (Hendrycks et al. 2019): content-free copies of a quarter
    of a training batch ``x`` (normalized tensors), half of them phase-scrambled (the spectrum and
    colours of the image with random phases: its texture statistics without its structure), half
    low-passed to 2-4 px and scaled back up (its colours as smooth gradients). The loop pushes their
    softmax towards uniform, so the fine-tuned features keep what tells "not one of my classes"
    apart (bench/exp_full_stats.py, full textures models of two training draws, "tune2" look of
    other textures and noise: 0.83 / 0.85 -> 0.95 / 0.92 flagged; end to end, report look, seeds
    0-3: 0.84-0.92 -> 0.92-0.96; phase-scrambled copies alone did worse on a fresh seed: 0.89 ->
    0.89; docs/benchmarks.md). Both operations are linear per channel (the phase one
    with one random phase for every channel), so on normalized tensors they equal the same on
    the pixels."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    m = max(2, len(x) // EXPOSURE_SHARE)
    x = x[:m].float()
    h, w = x.shape[-2:]
    phase = torch.exp(1j * torch.angle(torch.fft.fft2(torch.rand((m, 1, h, w), generator=gen))))
    scrambled = torch.fft.ifft2(torch.fft.fft2(x) * phase).real
    scrambled = scrambled - scrambled.mean(dim=(2, 3), keepdim=True) + x.mean(dim=(2, 3), keepdim=True)
    k = int(torch.randint(2, 5, (1,), generator=gen))
    low = F.interpolate(F.interpolate(x, size=(k, k), mode="bilinear", antialias=True), size=(h, w),
                        mode="bicubic", align_corners=False)
    both = torch.cat([scrambled, low])
    return both[torch.randperm(len(both), generator=gen)[:m]]


def uniform_loss(logits):
    """Cross-entropy of ``logits`` against the uniform distribution (outlier exposure's loss)."""
    import torch.nn.functional as F  # noqa: N812

    return -F.log_softmax(logits.float(), dim=1).mean(dim=1).mean()


def widen_threshold(novelty, held, run, val_loader, n_val: int, seed: int) -> bool:
    """``core.trust.novelty.widen_if_separated`` with outliers synthesised from the validation
    images (``run(batches)`` gives their features, as for the training images). ``held``:
    :func:`fit_trust`'s held-out scores (the first ``n_val`` the validation images': the gap test;
    with cross-fitted ones after them, the threshold is the larger of the two upper bounds)."""
    from cnndesk.core.trust import novelty as novelty_fit

    if novelty is None or held is None or n_val < 10:
        return False
    feats = run(synthetic_outliers(val_loader, n_val, seed + 1))[0]
    if not len(feats):
        return False
    pool = held if len(held) > n_val else None
    with trust.one_blas_thread():
        return novelty_fit.widen_if_separated(novelty, held[:n_val], novelty.score(feats), pool=pool)


def head_keys(model, head) -> tuple[str, str] | None:
    for name, m in model.named_modules():
        if m is head:
            return f"{name}.weight", f"{name}.bias"
    return None


def fit_trust(train_feats, val_feats, val_logits, y_val, seed=0, y_train=None, features="penultimate",
              outliers=None, early=None, cross_folds=None):
    """(novelty, temperature, calibration dict, held-out novelty scores: the validation images',
    then, for "multi_early" rows, the cross-fitted training images' (:func:`cross_fitted_scores`),
    which the threshold also comes from). ``features`` "multi"
    (multi-stage rows, ``y_train`` given): the "knn+maha" detector of ``core.trust.novelty``, with
    the "+synth" term when ``outliers`` (features of ``synthetic_outliers``) are given;
    "penultimate": the nearest-neighbour detector on the head's input (older versions).
    ``early``: (lead, early width) for "multi_early" rows (``networks.multistage.early_tap_modules``:
    ``lead`` columns of earlier stages before the "multi" row; the early detector reads the first
    ``early width`` columns). ``cross_folds``: folds of the cross-fitted scores (default
    CROSS_FOLDS; 0: the validation images' scores alone, the rule before)."""
    folds = CROSS_FOLDS if cross_folds is None else int(cross_folds)
    with trust.one_blas_thread():
        return _fit_trust(train_feats, val_feats, val_logits, y_val, seed, y_train, features, outliers, early, folds)


def _fit_trust(train_feats, val_feats, val_logits, y_val, seed=0, y_train=None, features="penultimate",
               outliers=None, early=None, folds=0):
    temperature = trust.fit_temperature(val_logits, y_val) if len(y_val) >= 10 else 1.0
    calib = {}
    if len(y_val):
        calib = {"ece_before": round(trust.ece(trust.softmax(val_logits), y_val), 4),
                 "ece_after": round(trust.ece(trust.softmax(val_logits, temperature), y_val), 4),
                 "temperature_fitted_on": "validation"}
    if features in ("multi", "multi_early") and y_train is not None:
        early = early if features == "multi_early" else None
        x_tr, y_tr, y_v = np.asarray(train_feats), np.asarray(y_train), np.asarray(y_val)
        novelty, held = _fit_multi(x_tr, y_tr, val_feats, y_v, seed, outliers, early)
        if early and held is not None and folds >= 2 and len(x_tr) >= 2 * folds and len(y_v) < CROSS_FIT_BELOW:
            held = np.concatenate([held, cross_fitted_scores(x_tr, y_tr, val_feats, y_v, seed, outliers, early, folds)])
            novelty.threshold = float(np.quantile(held, novelty.quantile))
            novelty.table = trust.threshold_table(held)
            calib["novelty_held_out"] = f"{len(val_feats)} validation + {len(x_tr)} cross-fitted training images"
        return novelty, temperature, calib, held
    if len(val_feats) >= 10:
        novelty, held = trust.fit_novelty_heldout(train_feats, val_feats, features="penultimate", seed=seed)
    else:  # no held-out images: out-of-fold within the training images
        folds = np.arange(len(train_feats)) % 5
        novelty, _ = trust.fit_novelty_oof(train_feats, folds, features="penultimate", seed=seed)
        held = None
    return novelty, temperature, calib, held


CROSS_FOLDS = 5  # folds of the training images' cross-fitted scores (full models' threshold, issue 23 sixth step)
# with this many validation images their 95th percentile alone is precise (the share of new own
# images above it over 10 % one time in 10,000, distribution-free simulation; 42 scores: one in five,
# 210: one in 170), and the folds' fits grow with the square of the images (4,000 training images:
# 21 CPU s instead of 4; 168: 0.18 instead of 0.07): from here the validation scores alone
CROSS_FIT_BELOW = 400


def cross_fitted_scores(x_train, y_train, x_val, y_val, seed, outliers, early, folds: int = CROSS_FOLDS):
    """Each training image's score by a detector fitted as the final one is (:func:`_fit_multi`:
    normalised on the validation images' held-out scores) on the validation images and the
    training images of the other ``folds`` - 1 folds (every ``folds``-th image: the rows come class
    by class). With the validation images' scores they set a full model's threshold: 42 validation
    images alone put a 95th percentile above 10 % of new own images about one time in five
    (simulated); with 5x more held-out scores the own flags' spread over 36 full models halved
    (sd 0.039 -> 0.022 on the seeds chosen on, 0.061 -> 0.034 on the others; max 0.211 -> 0.122;
    bench/exp_heldout_scores.py, docs/benchmarks.md). The late stages were fine-tuned on these
    images, so their part runs a little low; the pretrained early stages' part is honest; measured
    on the pooled 95th percentile, no correction did better than none. Kept since full training
    runs at 224 px (issue 23, seventh step: the separation is there, the 42-image threshold's noise
    was what was left): 17 new full models at the target 12 -> 15, own flags' max 0.222 -> 0.078."""
    out = np.zeros(len(x_train), np.float32)
    fold = np.arange(len(x_train)) % folds
    for k in range(folds):
        fit = fold != k
        nov, _ = _fit_multi(x_train[fit], y_train[fit], x_val, y_val, seed, outliers, early)
        out[~fit] = nov.score(x_train[~fit])
    return out


def _fit_multi(x_train, y_train, x_val, y_val, seed, outliers=None, early=None):
    """The "knn+maha(+synth)" detector on multi-stage features: held out on the validation images
    (at least 10), else "knn+maha" out of fold within the training images. ``early`` (lead, width):
    "multi_early" rows, a second detector on the early stages (``core.trust.novelty.with_early``)."""
    from cnndesk.core.trust import novelty as novelty_fit

    lead = early[0] if early else 0
    if len(x_val) >= 10:
        fit = lambda cols: novelty_fit.fit_novelty_heldout(  # noqa: E731
            x_train[:, cols], y_train, x_val[:, cols], features="multi_early" if early else "multi", seed=seed,
            y_held=y_val, outliers=None if outliers is None else outliers[:, cols])
        novelty, held = fit(slice(lead, None))
        if early:
            novelty, held = novelty_fit.with_early(novelty, held, *fit(slice(0, early[1])), lead)
        return novelty, held
    # too few validation images: the "multi" detector out of fold (its tail columns when early)
    x = np.concatenate([x_train, x_val]) if len(x_val) else x_train
    y = np.concatenate([y_train, y_val]) if len(x_val) else y_train
    novelty, _ = novelty_fit.fit_novelty_oof(x[:, lead:], y, np.arange(len(x)) % 5, features="multi", seed=seed)
    return novelty, None
