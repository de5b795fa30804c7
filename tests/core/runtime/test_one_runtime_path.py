"""The runtime layer: one path from a spec to a backend (core/runtime/), typed quick-model specs
and the one model-file writer/reader."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cnndesk.core.common.errors import ModelError
from cnndesk.core.models.registry import default_model, get_spec

ROOT = Path(__file__).resolve().parents[3] / "cnndesk"


def _count(monkeypatch, module, name, calls):
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls[name] = calls.get(name, 0) + 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


def test_a_cache_miss_downloads_once_looks_up_once_and_exports_once(isolated_dirs, monkeypatch, samples):
    from cnndesk.core.models import download
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.runtime import export_cache as onnx_cache

    calls: dict[str, int] = {}
    _count(monkeypatch, download, "ensure_weights", calls)
    _count(monkeypatch, onnx_cache, "lookup", calls)

    def failing_export(model, input_size, dest, output_names=("logits",)):
        calls["export"] = calls.get("export", 0) + 1
        raise RuntimeError("no exporter today")  # fast: the PyTorch fallback answers

    monkeypatch.setattr(onnx_cache, "export_onnx", failing_export)
    clf = Classifier()
    assert calls == {"ensure_weights": 1, "lookup": 1, "export": 1}
    assert clf.backend == "torch" and "no exporter today" in clf.fallback_reason
    assert clf.predict([samples["coffee"]])[0].label == "espresso"
    # the recorded failure is found and retried (a one-off failure must not pin the machine to
    # PyTorch) until EXPORT_ATTEMPTS tries in all; then no more exports
    for attempt in range(2, onnx_cache.EXPORT_ATTEMPTS + 1):
        calls.clear()
        again = Classifier()
        assert calls == {"ensure_weights": 1, "lookup": 1, "export": 1} and again.backend == "torch", attempt
    calls.clear()
    again = Classifier()
    assert calls == {"ensure_weights": 1, "lookup": 1} and again.backend == "torch"


def test_only_the_runtime_downloads_weights_looks_up_or_exports():
    """The call chain runs one way: nothing else in the package calls these."""
    pattern = re.compile(r"\b(ensure_weights|onnx_cache\.lookup|export_and_verify|lookup)\(")
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ("core/runtime/resolve.py", "core/models/download.py", "core/runtime/export_cache.py"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith(("def ", "#")):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []
    assert "_export" not in (ROOT / "core" / "export" / "network.py").read_text().replace("export_onnx", "")


def test_backends_share_one_protocol(classifier, samples):
    from cnndesk.core.images.load import load_image
    from cnndesk.core.runtime.backends import HeadBackend, OnnxBackend, TorchBackend, open_backend
    from cnndesk.core.runtime.resolve import torch_model

    spec = default_model()
    x = np.stack([spec.preprocess(load_image(p)) for p in samples.values()])
    onnx = open_backend(spec, "features", "cpu")
    torch_feats = TorchBackend(torch_model(spec, "features"), onnx.device, 1)
    assert isinstance(onnx, OnnxBackend) and onnx.preferred_batch == 2 and torch_feats.preferred_batch == 8
    assert onnx.describe().startswith("CPU · ONNX Runtime") and torch_feats.describe() == "CPU · PyTorch · 1 thread"
    a, b = onnx.run(x), torch_feats.run(x)
    assert a.shape == b.shape == (len(x), 1280) and np.abs(a - b).max() < 1e-3
    # the default model's classifier as a numpy head on the features: the same logits
    import torch

    full = torch_model(spec)
    head = HeadBackend(onnx, full.classifier.weight.detach().numpy(), full.classifier.bias.detach().numpy())
    logits, scores = head.run_scored(x)
    assert scores is None and np.abs(logits - classifier.logits(x)).max() < 1e-3
    assert head.describe() == onnx.describe() and head.name == "onnx"
    with torch.inference_mode():
        assert np.abs(full(torch.from_numpy(x)).numpy() - logits).max() < 1e-3


def test_bad_backend_device_and_variant_are_clear_errors():
    from cnndesk.core.runtime.backends import open_backend
    from cnndesk.core.runtime.resolve import resolve

    with pytest.raises(ModelError, match="unknown backend 'tpu'"):
        open_backend(default_model(), backend="tpu")
    with pytest.raises(ModelError, match="unknown device 'gpu0'"):
        open_backend(default_model(), device="gpu0")
    with pytest.raises(ValueError, match="variant"):
        resolve(default_model(), "pixels")


def _head_file(path, *, labels, width, extra, seed=0):
    from cnndesk.core.models.files import save_model_file

    rng = np.random.default_rng(seed)
    tensors = {"head.weight": rng.standard_normal((len(labels), width)).astype(np.float32) * 0.05,
               "head.bias": rng.standard_normal(len(labels)).astype(np.float32) * 0.05}
    base = default_model()
    return save_model_file(path, tensors, arch=base.arch, labels=labels, preprocess=base.preprocess,
                           extra={"kind": "head", "base": base.name, **extra}), tensors


def test_quick_models_carry_a_typed_base_and_head_old_files_included(tmp_path):
    """Files written before the typed head (top-level "features", or none at all: the first quick
    models read the last layer) load to the same typed spec as new ones."""
    old_multi, _ = _head_file(tmp_path / "old-multi", labels=["a", "b"], width=2528, extra={"features": "multi"})
    old_last, _ = _head_file(tmp_path / "old-last", labels=["a", "b"], width=1280, extra={})
    new, _ = _head_file(tmp_path / "new", labels=["a", "b"], width=2528,
                        extra={"features": "multi", "head": {"features": "multi"}})
    for path, features in ((old_multi, "multi"), (old_last, "last"), (new, "multi")):
        spec = get_spec(str(path))
        assert spec.base == default_model() and spec.arch == default_model().arch
        assert spec.head is not None and spec.head.features == features and spec.head.file == str(path)
        assert spec.head.variant == ("multi" if features == "multi" else "features")
        assert "base_spec" not in spec.metadata and spec.runnable
    assert default_model().base is None and default_model().head is None
    bad, _ = _head_file(tmp_path / "bad", labels=["a", "b"], width=2528, extra={"head": {"features": "pixels"}})
    with pytest.raises(ModelError, match="'head' must be an object"):
        get_spec(str(bad))


def test_an_old_quick_model_file_classifies_through_the_head_backend(tmp_path, classifier, samples):
    from cnndesk.core.images.load import load_image
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.predict.embeddings import FeatureExtractor
    from cnndesk.core.runtime.backends import HeadBackend

    path, tensors = _head_file(tmp_path / "old", labels=["x", "y", "z"], width=2528, extra={"features": "multi"})
    clf = Classifier(str(path))
    assert isinstance(clf.engine, HeadBackend) and clf.backend == "onnx"
    imgs = [load_image(p) for p in samples.values()]
    x = np.stack([clf.prepare(i) for i in imgs])
    feats = FeatureExtractor(default_model(), stages="multi").embed_arrays(x)
    want = feats @ tensors["head.weight"].T + tensors["head.bias"]
    assert np.abs(clf.logits(x) - want).max() < 1e-4
    assert [p.label for p in clf.predict(imgs, 1)] == [["x", "y", "z"][i] for i in want.argmax(1)]


def test_trained_models_are_written_by_the_one_writer(tmp_path, monkeypatch):
    from cnndesk.core.models import files
    from cnndesk.core.models.registry import read_model_file_metadata
    from cnndesk.core.training.config import TrainConfig, TrainedModel

    written = []
    real = files.save_model_file
    monkeypatch.setattr(files, "save_model_file", lambda *a, **k: written.append(a[0]) or real(*a, **k))
    rng = np.random.default_rng(1)
    model = TrainedModel("quick", default_model(), ["cat", "dog"], TrainConfig(features="last"), [], None, {},
                         head=(rng.standard_normal((2, 1280)).astype(np.float32), np.zeros(2, np.float32)))
    path = model.save(tmp_path / "pets")
    assert written == [tmp_path / "pets"] and path.name == "pets.safetensors"
    info = read_model_file_metadata(path)
    assert info["kind"] == "head" and info["base"] == default_model().name and info["head"] == {"features": "last"}
    assert info["labels"] == ["cat", "dog"] and info["cnndesk_version"]
    spec = get_spec(str(path))
    assert spec.head.features == "last" and spec.base == default_model()
    with pytest.raises(FileExistsError):
        model.save(path)  # never overwritten silently


def test_the_lite_build_runs_the_default_model_as_features_plus_its_numpy_head(isolated_dirs, monkeypatch, samples):
    """Without torch and without a logits export, the shipped features export and the classifier
    as a numpy head (resources/onnx/<name>-head.npz) give the same answers."""
    from cnndesk.core.common import paths, system
    from cnndesk.core.images.load import load_image
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.runtime.backends import HeadBackend, open_backend
    from cnndesk.core.runtime.resolve import torch_model

    spec = default_model()
    feats = open_backend(spec, "features", "cpu")  # exported now, with torch (the build step)
    full = torch_model(spec)
    res = isolated_dirs / "resources"
    (res / "onnx").mkdir(parents=True)
    np.savez(res / "onnx" / f"{spec.name}-head.npz", weight=full.classifier.weight.detach().numpy(),
             bias=full.classifier.bias.detach().numpy())
    monkeypatch.setattr(paths, "resource_path", lambda *parts: res.joinpath(*parts))
    monkeypatch.setattr(system, "has_torch", lambda: False)
    lite = Classifier()
    assert isinstance(lite.engine, HeadBackend) and lite.backend == "onnx" and lite.head is not None
    x = np.stack([spec.preprocess(load_image(p)) for p in samples.values()])
    want = feats.run(x) @ lite.head[0].T + lite.head[1]
    assert np.abs(lite.logits(x) - want).max() < 1e-4
    assert lite.predict([samples["coffee"]])[0].label == "espresso"
    monkeypatch.setattr(paths, "resource_path", lambda *parts: isolated_dirs.joinpath("none", *parts))
    with pytest.raises(ModelError, match="full version"):
        Classifier()  # no head shipped and nothing to export with
