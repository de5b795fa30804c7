"""Full models' "not one of my classes" detector (issue 23): fitted on the fine-tuned network's
multi-stage features (one pass: the pooled stages and the penultimate layer the classifier reads;
since the early-stage detector, two earlier stages lead the row and have a detector of their own),
stored as tensors + JSON in the model file, and giving the same scores and flags through the app
(ONNX Runtime and PyTorch), the CLI, an ONNX export and export bundles. Older full-model files keep
their nearest-neighbour detector on the penultimate layer."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from shapes import make_dataset

from cnndesk.core.export.bundle import export_bundle
from cnndesk.core.images.load import load_image
from cnndesk.core.models.registry import get_spec, read_model_file_metadata
from cnndesk.core.predict.classifier import Classifier
from cnndesk.core.training.config import TrainConfig
from cnndesk.core.training.datasets import scan
from cnndesk.core.training.dispatch import train
from cnndesk.core.trust import scores as trust

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def full_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fullnov")
    ds = scan(make_dataset(tmp / "data", (20, 20, 20), seed=5), seed=5, val_split=0.25)
    model = train(ds, TrainConfig(mode="full", epochs=1, image_size=64, unfrozen_blocks=1, batch_size=8, seed=5))
    return ds, model, model.save(tmp / "full")


def _batch(spec, paths):
    pre = spec.preprocess
    return np.stack([pre(load_image(p, min_side=pre.resize)) for p in paths])


def _header(path: Path) -> dict:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n])


def test_full_detector_is_fitted_on_multistage_features_and_stored_as_data(full_model):
    import torch

    from cnndesk.core.runtime.resolve import torch_model

    ds, model, path = full_model
    meta = read_model_file_metadata(path)
    # not "novelty" (older versions would run it on the penultimate layer) nor "novelty2" (the
    # versions before the early-stage detector would run it on the late stages alone)
    info = meta["novelty3"]
    assert "novelty" not in meta and "novelty2" not in meta
    # trained with outlier exposure (issue 23, third step): a training change only, the detector
    # and the file's layout are those of the files without it (and the parity checks below hold)
    assert model.config.outlier_exposure
    assert info["features"] == "multi_early" and info["metric"] == "knn+maha+synth" and len(info["norm"]) == 6
    assert info["early"]["metric"] == "knn+maha+synth" and info["lead"] > 0
    header = _header(path)  # safetensors: a JSON header, then raw numbers (nothing to unpickle)
    for name in ("mean", "scale", "bank", "proj", "means", "icov", "outliers"):
        assert header[f"novelty.{name}"]["dtype"] in ("F32", "F16")
        assert header[f"novelty.early_{name}"]["dtype"] in ("F32", "F16")
    json.loads(header["__metadata__"]["cnndesk-model"])
    spec = get_spec(str(path))
    t = trust.load_trust(spec)
    assert t.variant == "multi_early" and t.novelty.features == "multi_early"
    x = _batch(spec, [p for p, _ in ds.val[:12]])
    with torch.inference_mode():
        multi = torch_model(spec, "multi_early")(torch.from_numpy(x)).numpy()
        late = torch_model(spec, "multi")(torch.from_numpy(x)).numpy()
        logits = torch_model(spec)(torch.from_numpy(x)).numpy()
    lead = t.novelty.lead
    width = model.state_dict[info_head(model)].shape[1]
    # the early stages lead the row, then exactly the "multi" row (late stages, penultimate layer)
    assert multi.shape[1] == lead + len(t.novelty.mean) and len(t.novelty.mean) == late.shape[1] > width
    assert np.abs(multi[:, lead:] - late).max() < 1e-4
    assert lead < len(t.novelty.early.mean) < multi.shape[1] - width  # the early detector: no penultimate
    assert t.head[0].shape == (3, multi.shape[1]) and not t.head[0][:, :-width].any()
    want = t.novelty.score(multi)
    both = (t.novelty._score(multi[:, lead:]) + t.novelty.early.score(multi[:, :len(t.novelty.early.mean)])) / 2
    np.testing.assert_allclose(want, both, rtol=1e-6)
    for backend in ("onnx", "torch"):
        clf = Classifier(str(path), backend=backend)
        got_logits, got = clf.run(x)
        assert np.abs(got - want).max() < 1e-3 and np.abs(got_logits - logits).max() < 1e-3, backend
    # fitted on these features of the training images: its centring is their mean
    f_tr = Classifier(str(path)).engine.features.run(_batch(spec, [p for p, _ in ds.train]))
    assert f_tr.shape[1] == multi.shape[1]
    f_tr = f_tr[:, lead:]
    assert np.abs(t.novelty.mean - f_tr.mean(0)).max() < 0.05 * float(np.abs(f_tr).max())
    assert (np.abs(t.novelty.mean - f_tr.mean(0)) / t.novelty.scale).max() < 0.05


def info_head(model) -> str:
    return model.head_keys[0]


def test_full_model_flags_agree_app_cli_onnx_export_and_bundles(full_model, tmp_path):
    from cnndesk.core.export.network import export_model

    ds, _, path = full_model
    spec = get_spec(str(path))
    rep = export_bundle(spec, "onnx", tmp_path / "onnx")
    parity = json.loads((tmp_path / "onnx" / "parity.json").read_text())
    assert rep.ok and parity["same_unknown"] == parity["images"] == len(ds.val), rep.describe()
    assert json.loads((tmp_path / "onnx" / "model.json").read_text())["unknown"]["features"] == "multi_early"
    samples = sorted(str(p) for p in (REPO / "resources" / "samples").glob("*.jpg"))
    images = [str(p) for p, _ in ds.val[:8]] + samples
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, str(tmp_path / "onnx" / "predict.py"), *images], capture_output=True,
                         text=True, cwd=tmp_path, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    app = subprocess.run([sys.executable, "-m", "cnndesk", "classify", "--model", str(path), "-f", "json", *images],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    got, want = json.loads(run.stdout), json.loads(app.stdout)
    assert [r["unknown"] for r in got] == [r["unknown"] for r in want]
    assert all(abs(g["novelty"] - w["novelty"]) < 1e-3 for g, w in zip(got, want, strict=True))
    assert export_model(spec, "onnx", tmp_path / "whole.onnx").ok  # logits, probabilities, novelty, unknown
    ts = export_bundle(spec, "torchscript", tmp_path / "ts", max_images=12)
    assert ts.parity["checked"] and ts.parity["same_label"] == ts.parity["images"], ts.describe()
    assert ts.parity.get("same_unknown", ts.parity["images"]) == ts.parity["images"]


def test_old_full_model_files_keep_the_penultimate_detector(full_model, tmp_path):
    ds, model, path = full_model
    spec = get_spec(str(path))
    feats = Classifier(str(path)).engine.features.run
    width = model.state_dict[info_head(model)].shape[1]
    pen = lambda items: feats(_batch(spec, [p for p, _ in items]))[:, -width:]  # noqa: E731
    old_nov, _ = trust.fit_novelty_heldout(pen(ds.train), pen(ds.val), features="penultimate")
    old = replace(model, novelty=old_nov).save(tmp_path / "old")
    assert read_model_file_metadata(old)["novelty"]["features"] == "penultimate"
    t = trust.load_trust(get_spec(str(old)))
    assert t.variant == "features" and t.head[0].shape[1] == width and t.novelty.metric == "cosine-nn"
    x = _batch(spec, [p for p, _ in ds.val[:6]] + [str(p) for p in (REPO / "resources" / "samples").glob("*.jpg")])
    want = old_nov.score(feats(x)[:, -width:])
    for backend in ("onnx", "torch"):
        clf = Classifier(str(old), backend=backend)
        logits, got = clf.run(x)
        assert np.abs(got - want).max() < 1e-3, backend
        assert (logits.argmax(1) == Classifier(str(path), backend=backend).run(x)[0].argmax(1)).all()


def test_full_model_files_before_the_early_stage_detector_score_as_before(full_model, tmp_path):
    """A file of the previous version (its detector on the late stages alone, under "novelty2",
    features "multi") runs the "multi" export and that detector, unchanged."""
    import copy

    ds, model, path = full_model
    late = copy.copy(model.novelty)
    late.early, late.lead, late.features = None, 0, "multi"
    old = replace(model, novelty=late).save(tmp_path / "late")
    meta = read_model_file_metadata(old)
    assert "novelty3" not in meta and meta["novelty2"]["features"] == "multi" and "early" not in meta["novelty2"]
    spec = get_spec(str(old))
    t = trust.load_trust(spec)
    assert t.variant == "multi" and t.novelty.early is None and t.head[0].shape[1] == len(late.mean)
    x = _batch(spec, [p for p, _ in ds.val[:6]] + [str(p) for p in (REPO / "resources" / "samples").glob("*.jpg")])
    new = Classifier(str(path))
    row = new.engine.features.run(x)
    want = late.score(row[:, model.novelty.lead:])
    logits, got = Classifier(str(old)).run(x)
    assert np.abs(got - want).max() < 1e-3
    assert np.abs(logits - new.run(x)[0]).max() < 1e-3


def test_full_trust_fallbacks_and_synthesised_outliers():
    """Fewer than 10 validation images: the multi-stage detector is fitted out of fold, without the
    "+synth" term; the synthesised outliers keep each image's mean colour and lose its detail."""
    torch = pytest.importorskip("torch")
    from cnndesk.core.training import full_data, full_trust

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (60, 40)).astype(np.float32)
    y = np.arange(60) % 3
    nov, _, _, held = full_trust.fit_trust(x[:55], x[55:], rng.normal(0, 1, (5, 3)), y[55:], y_train=y[:55],
                                           features="multi", outliers=x[:10] + 5)
    assert nov.features == "multi" and nov.metric == "knn+maha" and held is None
    nov, _, _, held = full_trust.fit_trust(x[:40], x[40:], rng.normal(0, 1, (20, 3)), y[40:], y_train=y[:40],
                                           features="multi", outliers=x[:10] + 5)
    assert nov.metric == "knn+maha+synth" and held.shape == (20,)
    imgs = torch.from_numpy(rng.normal(0, 1, (7, 3, 48, 48)).astype(np.float32))
    loader = [full_data.Batch(imgs[:4], torch.zeros(4)), full_data.Batch(None, None), full_data.Batch(imgs[4:], torch.zeros(3))]
    out = full_trust.synthetic_outliers(loader, 7)
    assert sum(len(b.x) for b in out) == 3 * 7 and all(b.x.shape[1:] == imgs.shape[1:] for b in out)
    means = imgs.mean(dim=(2, 3))
    for b, src in zip(out, [imgs[:4]] * 3 + [imgs[4:]] * 3, strict=True):
        assert torch.allclose(b.x.mean(dim=(2, 3)), src.mean(dim=(2, 3)), atol=0.1)
        assert b.x.std() < 0.5 * float(src.std())  # the detail is gone
    assert means.shape == (7, 3)


def test_quick_outliers_are_the_same_content_free_images_in_numpy():
    from cnndesk.core.training import synth

    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (3, 40, 56)).astype(np.float32)
    made = synth.content_free(x, rng)
    assert len(made) == 3 and all(a.shape == x.shape and a.dtype == np.float32 for a in made)
    for a in made:
        np.testing.assert_allclose(a.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=0.1)
        assert a.std() < 0.5 * x.std()
    assert synth.sources([str(i) for i in range(130)]) == [str(i) for i in range(0, 130, 3)][:60]


def test_threshold_is_the_95th_percentile_or_its_upper_bound_where_outliers_are_far(full_model):
    """The threshold comes from held-out scores — the validation images' and the cross-fitted
    training images' (``full_trust.cross_fitted_scores``; the model keeps the validation images'
    alone): their 95th percentile, or (where outliers synthesised from the validation images score
    far beyond them) the larger 80 % upper confidence bound of the two sets
    (``core.trust.novelty.widen_if_separated``); the app's flag-rate table gives the same
    threshold at its default 5 %."""
    from cnndesk.core.trust.novelty import upper_quantile

    ds, model, path = full_model
    held, nov = model.val_novelty, model.novelty
    assert len(held) == len(ds.val)
    assert model.extra["novelty_held_out"] == f"{len(ds.val)} validation + {len(ds.train)} cross-fitted training images"
    if "novelty_threshold" in model.extra:
        assert nov.threshold >= upper_quantile(held, 0.95) - 1e-6
    clf = Classifier(str(path))
    assert abs(clf.novelty_threshold - nov.threshold) < 1e-5
    assert abs(clf.novelty.threshold_for(0.05) - nov.threshold) < 1e-5
