"""Quick mode: the base network stays frozen; its embeddings (ONNX Runtime on the CPU, cached on
disk) feed a softmax-regression head fitted in numpy (:mod:`cnndesk.core.training.head`). No torch
on the CPU. The model file holds only the head and names its base model."""

from __future__ import annotations

import time

import numpy as np

from cnndesk.core.common.progress import report
from cnndesk.core.training.config import EpochStats, TrainedModel, TrainingError, starting_point
from cnndesk.core.training.datasets import class_weights
from cnndesk.core.training.evaluation import evaluate


def train_quick(ds, config, progress=None, cancel=None, on_epoch=None) -> TrainedModel:
    from cnndesk.core.predict.embeddings import EmbeddingCache, FeatureExtractor

    t0 = time.perf_counter()
    base, previous = starting_point(config)
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
    x = stack_rows([feats[p] for p, _ in items])
    y = np.array([yy for _, yy in items])
    cache_hits = cache.hits
    del feats, cache  # the cache's copy of every embedding (500 MB at 50,000 images) goes now
    val_mask = np.arange(len(items)) >= len(train)
    cw = class_weights(list(y[~val_mask]), len(ds.classes))
    from cnndesk.core.training import synth

    report(progress, 0, None, "Learning what your classes do not look like")
    outliers = synth.quick_outliers(fx, [p for p, _ in train], seed=config.seed)  # the "+synth" term
    report(progress, 0, None, "Training the head")
    from cnndesk.core.training import head as quickfit
    from cnndesk.core.trust import scores as trust

    n_ep = config.resolved_epochs()

    fit = quickfit.fit_quick(x, y, len(ds.classes), val_mask, epochs=n_ep, lr=config.resolved_lr(),
                             smoothing=config.label_smoothing, class_w=cw, seed=config.seed, init=init,
                             features=stages, progress=progress, cancel=cancel, outliers=outliers,
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
    model.cache_hits = cache_hits  # type: ignore[attr-defined]
    return model


def stack_rows(rows: list) -> np.ndarray:
    """One float32 array of the rows, filled in place (np.stack + astype made two full copies)."""
    x = np.empty((len(rows), len(rows[0])), np.float32)
    for i, r in enumerate(rows):
        x[i] = r
    return x


def _stats(h: tuple, epochs: int) -> EpochStats:
    return EpochStats(h[0], epochs, *h[1:])


