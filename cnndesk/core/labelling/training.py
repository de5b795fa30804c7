"""Train a model straight from a labelling session's answers ("Train now", ``cnndesk label
--train``): no dataset folder is written. The labelled images become an in-memory
:class:`~cnndesk.core.training.datasets.Dataset` (the same stratified train/validation split as a
scanned class-folder dataset) and go through :func:`cnndesk.core.training.dispatch.train`, the one
training entry point, so the model is a normal quick (or full) model: the same file format,
calibrated temperature, novelty detector and evaluation, saved in the user's models folder where
the model picker lists it. Quick mode reuses the embeddings the session already cached.

Qt-free; torch only for full mode (imported by the trainer).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from cnndesk.core.common.progress import CancelToken, ProgressCallback
from cnndesk.core.labelling.folder import NONE, SKIPPED, LabelError, quoted
from cnndesk.core.training.config import EpochCallback, TrainConfig, TrainedModel
from cnndesk.core.training.datasets import IMBALANCE_RATIO, MIN_PER_CLASS, Dataset

MIN_TO_TRAIN = 2  # labelled images per class: one to learn from and one to check it on


def labels_of(session) -> dict[str, str]:
    """{absolute path: class} of the session's labelled images (skipped / none of these left out)."""
    return {session.paths[i]: session.state(i) for i in session.labelled}


def dataset_from_labels(root: str | os.PathLike, labels: Mapping[str, str | None], val_split: float = 0.2,
                        seed: int = 0) -> Dataset:
    """The labelled images as a Dataset: classes sorted, a stratified split like
    :func:`~cnndesk.core.training.datasets.scan`. ``labels``: path -> class (None, skipped and
    "none of these" are ignored). Raises LabelError, with what to do, when there are fewer than
    two classes or a class has fewer than :data:`MIN_TO_TRAIN` labelled images."""
    per: dict[str, list[str]] = {}
    for path, label in labels.items():
        if label in (None, "", SKIPPED, NONE):
            continue
        per.setdefault(label, []).append(os.fspath(path))
    if len(per) < 2:
        have = f"only {quoted(next(iter(per)))} so far" if per else "none so far"
        raise LabelError(f"Training needs labelled images of at least two classes ({have}): label a few more images first")
    few = sorted((c for c in per if len(per[c]) < MIN_TO_TRAIN), key=str.casefold)
    if few:
        names = ", ".join(f"{quoted(c)} ({len(per[c])})" for c in few[:5]) + (" …" if len(few) > 5 else "")
        raise LabelError(f"Every class needs at least {MIN_TO_TRAIN} labelled images to train; too few in {names}. "
                         "Label more images of those classes (or undo them)")
    classes = sorted(per)
    index = {c: i for i, c in enumerate(classes)}
    rng = random.Random(seed)
    train, val = [], []
    for c in classes:
        files = sorted(per[c])
        rng.shuffle(files)
        n_val = int(round(len(files) * val_split))
        n_val = min(max(n_val, 1 if val_split > 0 and len(files) >= 3 else 0), len(files) - 1)
        val += [(f, index[c]) for f in files[:n_val]]
        train += [(f, index[c]) for f in files[n_val:]]
    ds = Dataset(Path(os.fspath(root)), classes, train, val)
    counts = Counter({c: len(per[c]) for c in classes})
    small = [c for c in classes if counts[c] < MIN_PER_CLASS]
    if small:
        ds.warnings.append(f"{len(small)} class(es) have fewer than {MIN_PER_CLASS} labelled images "
                           f"({', '.join(small[:5])}): the model will be unreliable; label more of them.")
    most, least = max(counts.values()), min(counts.values())
    if most / least >= IMBALANCE_RATIO:
        ds.warnings.append(f"The classes are imbalanced ({most} vs {least} images); training weights the rare "
                           "classes up, but more labels of them would help more.")
    return ds


def train_from_labels(ds: Dataset, mode: str = "quick", config: TrainConfig | None = None,
                      progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                      on_epoch: EpochCallback | None = None) -> TrainedModel:
    """Train ``ds`` (from :func:`dataset_from_labels`) through the one training entry point."""
    from cnndesk.core.training.dispatch import train

    cfg = config or TrainConfig(mode=mode)
    cfg.mode = mode
    return train(ds, cfg, progress=progress, cancel=cancel, on_epoch=on_epoch)


def model_name(root: str | os.PathLike) -> str:
    """A model name from the labelled folder's name (a valid file name)."""
    from cnndesk.core.organize.sorting import folder_name

    return folder_name(f"{Path(os.fspath(root)).name or 'labels'}-labels")


def save_model(model: TrainedModel, name: str, folder: str | os.PathLike | None = None) -> Path:
    """Save in the user's models folder (or ``folder``) under a new file name (``name``, else ``name (1)``,
    …): never overwrites. Returns the file's path."""
    from cnndesk.core.common.paths import user_models_dir
    from cnndesk.core.common.safeio import unique_path
    from cnndesk.core.organize.sorting import folder_name

    base = Path(folder) if folder is not None else user_models_dir()
    base.mkdir(parents=True, exist_ok=True)
    target, _ = unique_path(base / f"{folder_name(name)}.safetensors")
    return model.save(target, name=target.stem)
