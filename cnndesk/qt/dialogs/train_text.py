"""The Train dialog's words: the default model name, what quick mode will take, the time left and
why a training stopped when it did. Plain functions (no widgets), so each can be tested alone."""

from __future__ import annotations

import os
from pathlib import Path

# folder names that say nothing about what is in them: the model is named after the folder above
GENERIC_NAMES = frozenset({"train", "training", "trainset", "train_set", "data", "dataset", "datasets",
                           "images", "imgs", "img", "pictures", "photos", "classes", "all"})

# quick mode: decoding and one forward pass per image, then the head (seconds); measured on a busy
# 2-core CPU (docs/benchmarks.md: 1000 images in 77 s at load 12, 300 in 1 s when idle)
QUICK_S_PER_IMAGE = 0.06
QUICK_FIXED_S = 3.0


def default_model_name(root: str | os.PathLike) -> str:
    """The dataset folder's name, or its parent's for a generic one (``…/pets/train`` → "pets")."""
    p = Path(os.path.abspath(os.fspath(root)))
    name = p.name
    if name.lower() in GENERIC_NAMES and p.parent.name:
        name = p.parent.name
    return name or "model"


def _duration(s: float) -> str:
    s = max(1, int(round(s)))
    if s < 60:
        return f"{s} s"
    m = int(round(s / 60))
    return f"{m} min"


def _span(lo: float, hi: float) -> str:
    a, b = _duration(lo), _duration(hi)
    if a == b:
        return a
    if a.split()[1] == b.split()[1]:  # same unit: "2–9 s"
        return f"{a.split()[0]}–{b}"
    return f"{a} – {b}"


def quick_estimate(n_images: int) -> tuple[float, float]:
    """(low, high) seconds a quick training of ``n_images`` takes on this kind of machine."""
    typical = QUICK_FIXED_S + QUICK_S_PER_IMAGE * n_images
    return max(1.0, typical / 4), typical


def quick_time(n_images: int) -> str:
    """ "about 5–21 s for 300 images" """
    lo, hi = quick_estimate(n_images)
    return f"about {_span(lo, hi)} for {n_images:,} images"


def quick_label(n_images: int | None) -> str:
    """The Quick radio button's text: honest about the time, from the number of images."""
    if not n_images:  # short: a radio button cannot wrap (1280x720 at 200 % leaves ~560 px)
        return "Quick — keep the network, learn a new last layer"
    return f"Quick — {quick_time(n_images)}: learn a new last layer"


QUICK_TIP = ("Keeps the network as it is and learns a new last layer on its features. Time grows with the "
             "number of images; the first time takes longer (each image's features are computed once, then cached).")


def eta_seconds(elapsed: float, done: int, total: int, budget_s: float = 0.0) -> float:
    """Seconds left, from the rate so far; never more than the time budget still allows."""
    eta = elapsed / max(done, 1) * max(total - done, 0)
    if budget_s > 0:
        eta = min(eta, max(0.0, budget_s - elapsed))
    return eta


def stop_reason(model) -> str:
    """Why training ended after the epochs it ran (empty when it simply ran them all)."""
    history = getattr(model, "history", None) or []
    if not history:
        return ""
    last = history[-1]
    cfg = model.config
    if model.cancelled:
        return f"Stopped by you after {last.epoch} of {last.epochs} epochs; the best model so far is kept."
    if model.mode != "full":
        return ""
    best = max(history, key=lambda h: (h.val_acc, -h.val_loss)).epoch
    if last.epoch < last.epochs:
        return (f"Stopped early after {last.epoch} of {last.epochs} epochs: validation accuracy had not improved "
                f"for {cfg.patience} epochs (early stopping); the best one, epoch {best}, is kept.")
    if cfg.time_budget_s and "epochs" in (model.extra or {}) and "budget" in str(model.extra.get("epochs")):
        return (f"Ran {last.epochs} epochs: as many as fit the {cfg.time_budget_s:.0f} s time budget "
                f"(best: epoch {best}).")
    return ""
