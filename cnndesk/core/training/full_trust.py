"""Full mode's trust data: the penultimate embeddings and logits of a trained network over a
loader, and the novelty detector and temperature fitted on them (:mod:`cnndesk.core.trust`).
Imports torch only inside functions."""

from __future__ import annotations

import numpy as np

from cnndesk.core.trust import scores as trust


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
