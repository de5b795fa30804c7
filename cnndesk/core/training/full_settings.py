"""Full mode's defaults, chosen from the data and the machine, and its trust data (imports torch
only inside functions that train).

* resolution: the base network's own input size (224 px) whenever the earlier stages keep their
  pretrained weights (the default, below): the novelty detector reads those stages, and their
  features separate unknown images best at the scale they were learned at (issue 23,
  bench/bench_unknown.py --full-size: full textures models from 96 px sources, the best recall
  on unrelated images at 5 % own flagged 0.93-0.97 at 96 px, 0.97-1.00 at 224 px; test accuracy
  as high or higher on textures, digits and objects; it costs training time on small images --
  the bench's digits at 64 px 12-27 s -> 62-169 s, 1,200 digits through the CLI 42 -> 282 s --
  and classifies at the cost of a quick model).
  When the whole network is trained (no pretrained stages left to read), from the images'
  sizes as before: the median shorter side rounded up to a multiple of 32, between 64 and 224
  (32 px icons train at 64 px: measured as accurate as 96 px at less than half the time);
* how much of the network to train: the last two blocks (EARLY_KEPT_BLOCKS), so that the
  earlier stages, which the novelty detector reads next to the late ones, keep their pretrained
  features (issue 23, bench/bench_unknown.py, six seeds: full textures models' other-textures
  AUROC up on all six, 0.85-0.95 -> 0.89-0.98 on the report seeds; test accuracy as high or
  higher on textures, digits and objects, training shorter; docs/benchmarks.md).
  ``TrainConfig.keep_early_stages = False``: the rule before, the whole network from
  WHOLE_NETWORK_MIN_PER_CLASS images per class (measured then: whole network 0.985 vs last two
  blocks 0.948 on small unusual images), otherwise the last two blocks;
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

SIZE_MIN, SIZE_MAX = 64, 224
WHOLE_NETWORK_MIN_PER_CLASS = 30  # keep_early_stages off: the whole network from this many images per class
EARLY_KEPT_BLOCKS = 2  # blocks trained by default (built-in families: the early detector's stages stay pretrained)
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
    from cnndesk.core.images.load import open_image

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
    blocks = config.unfrozen_blocks
    per_class = len(ds.train) / max(1, len(ds.classes))
    if blocks is None and config.keep_early_stages:
        blocks = EARLY_KEPT_BLOCKS
        reasons["unfrozen_blocks"] = "the earlier stages keep their pretrained features (unknown images)"
    elif blocks is None:
        blocks = 0 if per_class >= WHOLE_NETWORK_MIN_PER_CLASS else EARLY_KEPT_BLOCKS
        reasons["unfrozen_blocks"] = f"{per_class:.0f} images per class"
    size = config.image_size
    if not size and blocks > 0:  # the earlier stages stay pretrained: at the scale they were learned at
        size = SIZE_MAX
        reasons["image_size"] = "the network's own size (its pretrained stages tell unknown images apart best)"
    elif not size:
        side = median_short_side(paths)
        size = SIZE_MAX if side is None else int(min(SIZE_MAX, max(SIZE_MIN, -(-side // 32) * 32)))
        reasons["image_size"] = f"images are about {side} px" if side else "default"
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
