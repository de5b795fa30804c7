"""Fine-tuning: dataset scanning, quick and full training, model files, cancel, export, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from shapes import make_dataset

from cnndesk.core.common.errors import ModelError
from cnndesk.core.common.progress import CancelToken
from cnndesk.core.training.config import TrainConfig
from cnndesk.core.training.datasets import DatasetError, scan
from cnndesk.core.training.dispatch import train


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("shapes") / "data", (40, 40, 40))


@pytest.fixture(scope="module")
def quick_model(shapes, classifier):
    ds = scan(shapes, seed=1)
    return ds, train(ds, TrainConfig(mode="quick", seed=1))


def test_quick_mode_learns_generated_shapes(quick_model):
    ds, model = quick_model
    assert model.evaluation is not None and len(model.evaluation.y_true) == len(ds.val) == 24
    assert model.evaluation.accuracy >= 0.95
    assert model.history and model.history[-1].epoch == 200
    per = model.evaluation.per_class()
    assert [r["class"] for r in per] == ["circle", "square", "triangle"]
    assert model.evaluation.confusion().sum() == 24


def test_rerun_uses_the_embedding_cache(shapes, quick_model):
    ds = scan(shapes, seed=1)
    again = train(ds, TrainConfig(mode="quick", seed=1))
    assert again.cache_hits == 120  # nothing embedded twice
    np.testing.assert_allclose(again.head[0], quick_model[1].head[0], rtol=1e-5, atol=1e-6)


def test_saved_model_reloads_and_reproduces_predictions(quick_model, tmp_path):
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.predict.classifier import Classifier

    ds, model = quick_model
    path = model.save(tmp_path / "shapes.safetensors")
    assert path.stat().st_size < 1_000_000  # a head and the novelty detector, not a whole network (18 MB)
    spec = get_spec(str(path))
    assert spec.labels == ("circle", "square", "triangle") and spec.metadata["kind"] == "head"
    assert spec.metadata["metrics"]["val_accuracy"] >= 0.95 and spec.metadata["dataset"]["counts"]["circle"] == 40
    val_paths = [p for p, _ in ds.val]
    first = Classifier(spec).predict(val_paths, 3)
    second = Classifier(str(path)).predict(val_paths, 3)
    assert [p.scores for p in first] == [p.scores for p in second]  # exactly
    # the evaluation is of a head fitted without the validation images; the saved head then learned
    # from every image: they agree on (nearly) all validation images, not to the last digit
    probs = model.evaluation.probs
    agree_eval = [pred.indices[0] == int(row.argmax()) for pred, row in zip(first, probs, strict=True)]
    assert sum(agree_eval) >= 0.9 * len(agree_eval)
    torch_clf = Classifier(spec, backend="torch")
    agree = [a.indices[0] == b.indices[0] for a, b in zip(first, torch_clf.predict(val_paths, 1), strict=True)]
    assert all(agree)
    with pytest.raises(FileExistsError):
        model.save(path)  # never silently overwritten


def test_cancel_keeps_the_best_so_far(shapes, quick_model):
    ds = scan(shapes, seed=1)
    token = CancelToken()
    seen = []

    def on_epoch(s):
        seen.append(s.epoch)
        if len(seen) == 3:
            token.cancel()

    model = train(ds, TrainConfig(mode="quick", seed=1), cancel=token, on_epoch=on_epoch)
    assert model.cancelled and seen == [10, 20, 30]
    assert model.head is not None and model.metrics()["cancelled"] is True


def test_corrupt_files_are_skipped_and_reported(shapes, tmp_path, classifier):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(shapes, data)
    (data / "circle" / "empty.jpg").write_bytes(b"")
    good = (data / "square" / "square_000.jpg").read_bytes()
    (data / "square" / "cut.jpg").write_bytes(good[: len(good) - 300])  # header intact, data cut
    (data / "triangle" / ".DS_Store").write_bytes(b"junk")
    (data / "triangle" / "notes.txt").write_text("not an image")
    ds = scan(data, seed=1)
    assert [os.path.basename(p) for p, _ in ds.unreadable] == ["empty.jpg"]
    assert sum(ds.counts().values()) == 121  # the truncated one passes the header check
    model = train(ds, TrainConfig(mode="quick", seed=1))
    skipped = {os.path.basename(p): why for p, why in model.skipped}
    assert set(skipped) == {"empty.jpg", "cut.jpg"} and "truncated" in skipped["cut.jpg"]
    assert model.evaluation.accuracy >= 0.9


def test_imbalance_and_tiny_classes_warn(tmp_path):
    data = make_dataset(tmp_path / "imb", (40, 40, 3))
    ds = scan(data, check_files=False)
    text = " ".join(ds.warnings)
    assert "imbalanced" in text and "fewer than 5" in text
    from cnndesk.core.training.datasets import class_weights

    w = class_weights([y for _, y in ds.train], 3)
    assert w[2] > 5 * w[0]


def test_explicit_train_val_folders_unicode_and_symlink_loops(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root / "train", (6, 6, 6))
    make_dataset(root / "val", (2, 2, 2), seed=5)
    (root / "train" / "circle" / "ünïcødé 猫.jpg").write_bytes((root / "train" / "circle" / "circle_000.jpg").read_bytes())
    os.symlink(root / "train" / "circle", root / "train" / "circle" / "loop")
    ds = scan(root)
    assert ds.explicit_split and len(ds.val) == 6 and len(ds.train) == 19
    assert any("ünïcødé" in p for p, _ in ds.train)


def test_bad_dataset_folders_give_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        scan(tmp_path / "nope")
    (tmp_path / "one" / "cats").mkdir(parents=True)
    make_dataset(tmp_path / "one2", (3, 0, 0))
    with pytest.raises(DatasetError, match="at least two"):
        scan(tmp_path / "one2")


def test_full_mode_trains_saves_and_reloads(shapes, tmp_path, classifier):
    from cnndesk.core.predict.classifier import Classifier

    ds = scan(shapes, seed=2, val_split=0.25)
    ds.train = ds.train[::3]  # keep the test short: about 30 images
    epochs = []
    model = train(ds, TrainConfig(mode="full", epochs=2, image_size=96, unfrozen_blocks=1, batch_size=8, seed=2),
                  on_epoch=epochs.append)
    assert [e.epoch for e in epochs] == [1, 2] and model.state_dict is not None
    path = model.save(tmp_path / "full.safetensors")
    clf = Classifier(str(path), backend="torch")
    assert clf.labels == ("circle", "square", "triangle")
    preds = clf.predict([p for p, _ in ds.val], 3)
    assert len(preds) == len(ds.val)


def test_full_mode_cancel_stops_within_a_batch(shapes):
    ds = scan(shapes, seed=2)
    token = CancelToken()
    calls = []

    def progress(done, total, text):
        calls.append(done)
        if done == 2:
            token.cancel()

    from cnndesk.core.common.errors import Cancelled

    with pytest.raises(Cancelled):  # no epoch finished: nothing to keep
        train(ds, TrainConfig(mode="full", epochs=3, image_size=64, batch_size=8), progress=progress, cancel=token)
    assert max(c for c in calls if isinstance(c, int)) <= 3


def test_export_parity_onnx_and_torchscript(quick_model, tmp_path):
    from cnndesk.core.export.network import ExportError, export_model
    from cnndesk.core.models.registry import get_spec

    _, model = quick_model
    path = model.save(tmp_path / "m.safetensors")
    spec = get_spec(str(path))
    onnx = export_model(spec, "onnx", tmp_path / "m.onnx")
    assert onnx.ok and onnx.top1_agreement == onnx.images >= 6 and (tmp_path / "m.onnx").is_file()
    assert onnx.unknown_agreement == onnx.images and onnx.novelty_max_diff < 1e-3  # the trust outputs
    ts = export_model(spec, "torchscript", tmp_path / "m.pt")
    assert ts.ok and ts.max_abs_diff < 1e-3
    with pytest.raises(ExportError, match="already exists"):
        export_model(spec, "onnx", tmp_path / "m.onnx")


def test_cli_train_prints_metrics_json_and_exit_codes(shapes, tmp_path, classifier):
    env = {**os.environ}
    run = lambda *a: subprocess.run([sys.executable, "-m", "cnndesk", *map(str, a)], capture_output=True, text=True, env=env, timeout=300)  # noqa: E731
    out = run("train", shapes, "--out", tmp_path / "cli", "--seed", "1")
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout.strip().splitlines()[-1])
    assert metrics["val_accuracy"] >= 0.95 and Path(metrics["model"]).is_file()
    assert "3 classes" in out.stderr and "epoch 200/200" in out.stderr
    again = run("train", shapes, "--out", tmp_path / "cli.safetensors")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert run("train", tmp_path / "missing", "--out", tmp_path / "x").returncode == 2
    assert run("train", shapes, "--out", tmp_path / "y", "--base", "nonsense").returncode == 2
    cls = run("classify", shapes / "circle" / "circle_001.jpg", "--model", metrics["model"], "-f", "json")
    assert json.loads(cls.stdout)[0]["predictions"][0]["label"] == "circle"
    exp = run("export", metrics["model"], "--format", "onnx", "--out", tmp_path / "cli-bundle")
    assert exp.returncode == 0 and "gives the app's answers" in exp.stdout
    assert (tmp_path / "cli-bundle" / "predict.py").is_file()


def test_quick_training_needs_no_torch_once_exports_are_cached(shapes, quick_model, tmp_path):
    code = (
        "import sys\n"
        "from cnndesk.core.training.datasets import scan\n"
        "from cnndesk.core.training.dispatch import TrainConfig, train\n"
        f"m = train(scan({str(shapes)!r}, seed=1), TrainConfig(mode='quick', seed=1))\n"
        f"m.save({str(tmp_path / 'nt.safetensors')!r})\n"
        "print(round(m.evaluation.accuracy, 3), 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    acc, torch_loaded = out.stdout.split()
    assert float(acc) >= 0.95 and torch_loaded == "False"


def test_model_errors_for_damaged_head_files(tmp_path, quick_model):
    from safetensors.numpy import save_file

    _, model = quick_model
    path = model.save(tmp_path / "h.safetensors")
    from cnndesk.core.models.registry import (
        MODEL_FORMAT,
        get_spec,
        read_head,
        read_model_file_metadata,
    )

    meta = read_model_file_metadata(path)
    bad = tmp_path / "bad.safetensors"
    save_file({"head.weight": np.zeros((2, 1280), np.float32), "head.bias": np.zeros(2, np.float32)}, str(bad),
              metadata={MODEL_FORMAT: json.dumps(meta)})
    with pytest.raises(ModelError, match="does not match"):
        read_head(get_spec(str(bad)))
    _ = threading


def test_continue_from_an_existing_model(shapes, quick_model, tmp_path):
    import shutil

    from cnndesk.core.models.registry import get_spec

    _, model = quick_model
    first = model.save(tmp_path / "v1.safetensors")
    grown = tmp_path / "grown"
    shutil.copytree(shapes, grown)
    make_dataset(tmp_path / "extra", (5, 5, 5), seed=9)
    for c in ("circle", "square", "triangle"):
        for f in (tmp_path / "extra" / c).iterdir():
            shutil.copy(f, grown / c / f"extra_{f.name}")
    ds = scan(grown, seed=1)
    more = train(ds, TrainConfig(mode="quick", seed=1, init_from=str(first)))
    assert more.evaluation.accuracy >= 0.9 and more.base.name == "efficientnet-lite0"
    saved = get_spec(str(more.save(tmp_path / "v2.safetensors")))
    assert saved.metadata["training"]["init_from"] == str(first)
    # a new class: the old head cannot be reused, the base is
    (grown / "star").mkdir()
    for i, f in enumerate(sorted((grown / "circle").iterdir())[:8]):
        shutil.copy(f, grown / "star" / f"s{i}.jpg")
    ds4 = scan(grown, seed=1)
    four = train(ds4, TrainConfig(mode="quick", seed=1, init_from=str(first)))
    assert four.head[0].shape[0] == 4 and "star" in four.classes


def test_full_mode_continues_from_a_full_model(shapes, tmp_path, classifier):
    ds = scan(shapes, seed=3, val_split=0.25)
    ds.train = ds.train[::4]
    cfg = TrainConfig(mode="full", epochs=1, image_size=64, unfrozen_blocks=1, batch_size=8, seed=3)
    first = train(ds, cfg).save(tmp_path / "f1.safetensors")
    cont = train(ds, TrainConfig(**{**cfg.__dict__, "init_from": str(first)}))
    assert cont.state_dict is not None and cont.history
