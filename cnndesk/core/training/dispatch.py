"""Fine-tuning on the user's folders: :func:`train`, the one entry point (the command line, the app
and the labelling workspace call it).

* quick (:mod:`.quick`): the base network stays frozen; its embeddings feed a softmax-regression
  head fitted in numpy. No torch on the CPU. The model file holds only the head.
* full (:mod:`.full_loop`): PyTorch fine-tunes the last N blocks (or everything) with augmentation,
  AdamW + cosine schedule, label smoothing, class weights, mixed precision on CUDA, early stopping;
  the best epoch's weights are kept. The model file holds the whole network.

Both report per-epoch statistics through ``on_epoch`` and stop within a batch when cancelled,
keeping the best model so far.
"""

from __future__ import annotations

from cnndesk.core.common.progress import CancelToken, ProgressCallback
from cnndesk.core.training.config import EpochCallback, TrainConfig, TrainedModel, TrainingError
from cnndesk.core.training.datasets import Dataset
from cnndesk.core.training.quick import train_quick


def train(
    ds: Dataset,
    config: TrainConfig,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainedModel:
    if config.mode == "quick":
        return train_quick(ds, config, progress, cancel, on_epoch)
    if config.mode == "full":
        return train_full(ds, config, progress, cancel, on_epoch)
    raise TrainingError(f"unknown training mode '{config.mode}' (quick or full)")


def train_full(ds, config, progress=None, cancel=None, on_epoch=None) -> TrainedModel:
    """Full training (PyTorch, imported here only): see :mod:`cnndesk.core.training.full_loop`."""
    from cnndesk.core.training.full_loop import train_full as run

    return run(ds, config, progress, cancel, on_epoch)
