"""Full training split by responsibility: the adapter registry (one entry per architecture family),
loader errors that survive worker processes, images decoded once, the time budget and the speed
probe, distributed set-up in one place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trust_data

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from cnndesk.core.common.errors import ModelError  # noqa: E402
from cnndesk.core.networks import adapters  # noqa: E402
from cnndesk.core.networks.build import create_architecture  # noqa: E402
from cnndesk.core.networks.surgery import attach_head, feature_extractor  # noqa: E402
from cnndesk.core.training import full_data, full_model  # noqa: E402
from cnndesk.core.training import full_loop as fulltrain  # noqa: E402
from cnndesk.core.training import full_settings as fullmode  # noqa: E402


def _trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _prefixes(model, *names) -> set[str]:
    return {n for n, _ in model.named_parameters() if n.startswith(names)}


@pytest.mark.parametrize("arch, unfrozen, taps", [
    ("timm:tf_efficientnet_lite0", ("blocks.5.", "blocks.6.", "conv_head.", "bn2.", "classifier."), ["blocks.4", "blocks.5", "blocks.6"]),
    ("torchvision:resnet18", ("layer3.", "layer4.", "fc."), ["layer2", "layer3", "layer4"]),
    ("torchvision:mobilenet_v3_small", ("features.11.", "features.12.", "classifier."), ["features.9", "features.10", "features.11"]),
])
def test_built_in_families_keep_their_layout(arch, unfrozen, taps):
    model = create_architecture(arch, 10)
    ad = adapters.adapter_for(arch)
    names = {id(m): n for n, m in model.named_modules()}
    assert [names[id(m)] for m in ad.tap_modules(model)] == taps
    model, head = full_model.prepare_model(model, arch, 4, 2)
    assert isinstance(head, nn.Linear) and head.out_features == 4
    assert _trainable(model) == _prefixes(model, *unfrozen)
    full_model.prepare_model(model, arch, 4, 0, keep_head=True)
    assert all(p.requires_grad for p in model.parameters())  # 0: the whole network
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 4)
    body, dim = feature_extractor(model, arch)
    assert body(torch.zeros(2, 3, 64, 64)).shape == (2, dim)
    again = attach_head(body, arch, torch.ones(3, dim), torch.zeros(3))
    assert again(torch.zeros(1, 3, 64, 64)).shape == (1, 3)


def test_a_new_family_is_one_registry_entry():
    """RegNet keeps its stages in `trunk_output` and its classifier in `fc`: no built-in family
    knows it (the generic torchvision one looks for `classifier`); one entry makes it trainable,
    explainable and usable for multi-stage features."""
    from cnndesk.core.networks.multistage import multistage_extractor
    from cnndesk.core.predict.explain import stage_modules

    arch = "torchvision:regnet_x_400mf"
    model = create_architecture(arch, 10)
    with pytest.raises(ModelError):
        full_model.prepare_model(model, arch, 3, 1)
    adapters.register(adapters.Adapter("regnet", lambda a: a.startswith("torchvision:regnet"), classifier="fc",
                                       stages=("trunk_output",), first_conv="stem.0"))
    try:
        assert adapters.adapter_for(arch).family == "regnet"
        model, head = full_model.prepare_model(model, arch, 3, 1)
        assert head is model.fc and head.out_features == 3
        assert _trainable(model) == _prefixes(model, "trunk_output.block4.", "fc.")
        assert "trunk_output.block4" in dict(stage_modules(model))  # the explainer lists its stages
        # a few real training steps move the trained layers only
        frozen = next(model.trunk_output.block1.parameters()).detach().clone()
        before = model.fc.weight.detach().clone()
        prec = full_model.Precision(torch.device("cpu"), False, torch.bfloat16, torch.amp.GradScaler("cuda", enabled=False))
        opt, sched = fulltrain.make_optimizer(model, head, fulltrain_config(), 4)
        x, y = torch.randn(8, 3, 64, 64), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
        loader = [full_data.Batch(x, y), full_data.Batch(None, None, [full_data.LoadError("bad.png", "damaged")])]
        full_model.train_mode(model)
        res = fulltrain.train_one_epoch(model, loader, opt, sched, nn.CrossEntropyLoss(), prec)
        assert res.images == 8 and [e.path for e in res.errors] == ["bad.png"]
        assert not torch.equal(before, model.fc.weight) and torch.equal(frozen, next(model.trunk_output.block1.parameters()))
        ms = multistage_extractor(create_architecture(arch, 10), arch)
        assert ms(torch.zeros(1, 3, 64, 64)).shape[1] > 400  # pooled stages + penultimate
    finally:
        adapters.unregister("regnet")
    assert adapters.adapter_for(arch).family == "torchvision"


def fulltrain_config(**kw):
    from cnndesk.core.training.config import TrainConfig

    return TrainConfig(mode="full", **kw)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """3 classes of genuinely small (32 px) symbols and two files that cannot be read."""
    root = tmp_path_factory.mktemp("small")
    trust_data.make_set(root, "symbols", 7, 0, size=32)
    for name in list(trust_data.SYMBOLS)[3:]:
        for f in (root / name).iterdir():
            f.unlink()
        (root / name).rmdir()
    good = next((root / "circle").iterdir()).read_bytes()
    (root / "circle" / "cut.png").write_bytes(good[: len(good) // 2])  # header intact, data cut
    (root / "square" / "cut2.png").write_bytes(good[: len(good) // 2])
    return root


def test_loader_errors_survive_worker_processes(small_set):
    items = [(str(p), 0) for p in sorted(small_set.rglob("*.png"))]
    from cnndesk.core.models.registry import default_model

    tf, _ = full_data.transforms(default_model().preprocess, 64, fulltrain_config())
    loader = torch.utils.data.DataLoader(full_data.Images(items, tf, 73), batch_size=4, num_workers=2,
                                         collate_fn=full_data.collate)
    seen, errors = 0, {}
    for batch in loader:  # each batch built in a worker process
        seen += 0 if batch.x is None else len(batch.x)
        errors.update((e.path, e.reason) for e in batch.errors)
    assert seen == len(items) - 2
    assert {Path(p).name for p in errors} == {"cut.png", "cut2.png"} and all("truncated" in r for r in errors.values())


def test_decode_once_into_memory(small_set):
    items = [(str(p), 0) for p in sorted(small_set.rglob("*.png"))]
    cache = full_data.decode_all(items, 73)
    assert len(cache) == len(items)
    assert sum(isinstance(v, full_data.LoadError) for v in cache.values()) == 2
    assert max(v.size for v in cache.values() if not isinstance(v, full_data.LoadError)) == (32, 32)
    assert full_data.decode_all(items, 73, max_bytes=1000) is None  # would not fit: read every step


def test_resolution_and_time_budget_choices(small_set):
    from cnndesk.core.training.datasets import scan

    ds = scan(small_set, val_split=0.3)
    ch = fullmode.choose(ds, fulltrain_config(), "cpu")
    # the earlier stages stay pretrained: the network's own 224 px, where they tell unknown images apart
    assert ch.image_size == fullmode.SIZE_MAX == 224 and ch.unfrozen_blocks == fullmode.EARLY_KEPT_BLOCKS
    whole = fullmode.choose(ds, fulltrain_config(unfrozen_blocks=0), "cpu")
    assert whole.image_size == fullmode.SIZE_MIN == 64  # the whole network trained: 32 px icons at 64 px
    assert fullmode.choose(ds, fulltrain_config(image_size=96), "cpu").image_size == 96  # the user's choice
    assert "as many epochs as fit 150 s" in ch.describe()
    assert "up to 5 epochs" in fullmode.choose(ds, fulltrain_config(epochs=5), "cpu").describe()
    assert fullmode.epochs_for_budget(150, 10) == 15 and fullmode.epochs_for_budget(150, 40) == 3
    assert fullmode.epochs_for_budget(150, 500) == fullmode.MIN_EPOCHS
    assert fullmode.epochs_for_budget(10_000, 1) == fullmode.MAX_EPOCHS


def test_full_training_with_workers_budget_and_probe(small_set):
    """A real full training: two loader worker processes (errors reach the model's skipped list),
    the time budget decides the epochs after the first, the speed probe picks precision/threads
    and leaves the thread count as it was."""
    torch.set_num_threads(max(2, torch.get_num_threads()))  # an earlier test may have left one thread
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train

    ds = scan(small_set, val_split=0.3, seed=0)
    threads = torch.get_num_threads()
    epochs = []
    model = train(ds, fulltrain_config(num_workers=2, cache_images=False, time_budget_s=0.01, unfrozen_blocks=1,
                                       image_size=64),
                  on_epoch=epochs.append)
    assert torch.get_num_threads() == threads
    assert {Path(p).name for p, _ in model.skipped} == {"cut.png", "cut2.png"}
    assert epochs[0].epochs == fullmode.MIN_EPOCHS and len(epochs) <= fullmode.MIN_EPOCHS  # 0.01 s: the fewest
    m = model.metrics()
    assert m["defaults"].startswith("64 px · the last 1 blocks · up to 3 epochs")
    assert "fit the 0 s budget" in m["epochs"] and m["images_in_memory"] is False
    assert m["threads"] in (1, threads) and m["speed_probe_ms_per_image"]
    assert model.config.image_size == 64 and model.evaluation is not None


def test_distributed_setup_in_one_place(monkeypatch):
    from cnndesk.core.training import distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_distributed("cpu") == distributed.DistInfo(0, 1, "cpu")
    assert distributed.current() == (0, 1)
    import torch.distributed as dist

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(29500 + os.getpid() % 1000))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        assert distributed.current() == (0, 1) and dist.is_initialized()
    finally:
        distributed.shutdown_distributed()
    assert not dist.is_initialized()


def test_outlier_exposure_copies_and_loss():
    """Outlier exposure (issue 23): a quarter of a batch again as content-free copies (same size,
    same mean colour, reproducible from the generator), trained towards the uniform softmax in the
    same pass; the epoch's images and accuracy are the batch's own."""
    import math

    from cnndesk.core.training import full_trust

    x = torch.randn(8, 3, 32, 32) + torch.tensor([1.0, -1.0, 0.5])[None, :, None, None]
    a = full_trust.exposure_outliers(x, torch.Generator().manual_seed(3))
    b = full_trust.exposure_outliers(x, torch.Generator().manual_seed(3))
    assert a.shape == (2, 3, 32, 32) and torch.equal(a, b) and torch.isfinite(a).all()
    assert torch.allclose(a.mean(dim=(2, 3)).mean(0), x[:2].mean(dim=(2, 3)).mean(0), atol=0.15)
    assert not any(torch.allclose(o, s, atol=0.1) for o in a for s in x)  # no copy of an image
    assert math.isclose(float(full_trust.uniform_loss(torch.zeros(4, 5))), math.log(5), rel_tol=1e-6)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    seen = []
    model.register_forward_hook(lambda _m, inp, _o: seen.append(len(inp[0])))
    prec = full_model.Precision(torch.device("cpu"), False, torch.bfloat16, torch.amp.GradScaler("cuda", enabled=False))
    opt, sched = fulltrain.make_optimizer(model, model[3], fulltrain_config(), 2)
    gen = torch.Generator().manual_seed(0)
    res = fulltrain.train_one_epoch(model, [full_data.Batch(x, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))], opt, sched,
                                    nn.CrossEntropyLoss(), prec, exposure=lambda xb: full_trust.exposure_outliers(xb, gen))
    assert seen == [10] and res.images == 8 and math.isfinite(res.loss) and 0 <= res.acc <= 1
    assert fulltrain_config().outlier_exposure  # on by default for full training


def test_keep_pretrained_pulls_towards_the_start_or_the_teacher():
    """TrainConfig.keep_pretrained (issue 23): "l2sp" moves the pretrained layers back towards
    their starting weights after every step (the head is free); "distill" adds a loss pulling the
    tapped stages towards a frozen copy of the starting network (zero before any step), and the
    teacher's hooks and copy go away on close."""
    import math

    from cnndesk.core.training import full_keep

    def run(keep_mode):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                              nn.Linear(4, 3))
        start = [p.detach().clone() for p in model.parameters()]
        keep = None
        if keep_mode == "l2sp":
            keep = full_keep.Anchor(model, model[5])
        elif keep_mode == "distill":
            keep = full_keep.Distiller(model, [model[0], model[2]])
            x0 = torch.randn(4, 3, 12, 12)
            model(x0)
            assert float(keep.loss(x0, 4)) < 1e-9  # the student is still the teacher
        prec = full_model.Precision(torch.device("cpu"), False, torch.bfloat16,
                                    torch.amp.GradScaler("cuda", enabled=False))
        opt, sched = fulltrain.make_optimizer(model, model[5], fulltrain_config(), 20)
        gen = torch.Generator().manual_seed(1)
        batches = [full_data.Batch(torch.randn(8, 3, 12, 12, generator=gen), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
                   for _ in range(20)]
        res = fulltrain.train_one_epoch(model, batches, opt, sched, nn.CrossEntropyLoss(), prec, keep=keep)
        assert math.isfinite(res.loss) and res.images == 160
        if keep is not None:
            keep.close()
        body = [float((p.detach() - s).norm()) for p, s in zip(list(model.parameters())[:4], start[:4], strict=True)]
        return sum(body)

    free, anchored, distilled = run(None), run("l2sp"), run("distill")
    assert anchored < 0.85 * free and distilled < free
    with pytest.raises(ValueError):
        full_keep.keeper("nope", nn.Linear(2, 2), nn.Linear(2, 2), "")
