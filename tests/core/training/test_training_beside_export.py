"""A full training's steps and an export never run at once. While torch.export runs (the background
first-answer export, a bundle's) ``torch.compiler.is_exporting()`` is true for every thread, and the
optimizer's dynamo-disabled methods (``zero_grad``, ``step``) then edit torch.fx's global trace
metadata beside the export's own edits: once in CI a quit during full training hung with
``KeyError: 'custom'`` in ``fx.traceback.annotate``. Each training step now takes the process-wide
export lock (exports already did)."""

from __future__ import annotations

import threading
import time

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from cnndesk.core.runtime.export_cache import EXPORT_LOCK  # noqa: E402
from cnndesk.core.training import full_data, full_model  # noqa: E402
from cnndesk.core.training import full_loop as fulltrain  # noqa: E402
from cnndesk.core.training.config import TrainConfig  # noqa: E402


def test_a_training_step_waits_for_an_export_and_goes_on_after_it():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    prec = full_model.Precision(torch.device("cpu"), False, torch.bfloat16, torch.amp.GradScaler("cuda", enabled=False))
    opt, sched = fulltrain.make_optimizer(model, model[3], TrainConfig(mode="full", epochs=1), 3)
    gen = torch.Generator().manual_seed(0)
    batches = [full_data.Batch(torch.randn(4, 3, 16, 16, generator=gen), torch.tensor([0, 1, 2, 0])) for _ in range(3)]
    steps: list[int] = []
    done = threading.Event()

    def train():
        fulltrain.train_one_epoch(model, batches, opt, sched, nn.CrossEntropyLoss(), prec, on_step=steps.append)
        done.set()

    with EXPORT_LOCK:  # "an export is running"
        t = threading.Thread(target=train)
        t.start()
        time.sleep(0.5)
        assert steps == [], "no training step while an export holds the lock"
    assert done.wait(30) and steps == [4, 4, 4]  # then every step runs
    t.join()
