"""The default model on the samples, the ONNX fast path and its PyTorch fallback."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from cnndesk.core.common.errors import ImageLoadError, ModelError
from cnndesk.core.images.load import load_image
from cnndesk.core.images.preprocess import Preprocess
from cnndesk.core.models.registry import IMAGENET_MEAN, IMAGENET_STD, default_model

CATS = {"Egyptian cat", "tiger cat", "tabby", "Persian cat", "Siamese cat", "lynx"}


def test_default_model_on_the_samples(classifier, samples):
    preds = dict(zip(samples, classifier.predict(list(samples.values()), 5), strict=True))
    assert preds["cat"].label in CATS and set(preds["cat"].labels[:3]) <= CATS
    assert preds["coffee"].label in {"espresso", "cup"} and preds["coffee"].score > 0.8
    assert preds["rocket"].label in {"missile", "projectile", "space shuttle"}
    assert {"missile", "projectile"} & set(preds["rocket"].labels[:3])
    assert "military uniform" in preds["grace_hopper"].labels[:3]
    for p in preds.values():
        assert list(p.scores) == sorted(p.scores, reverse=True) and 0 < sum(p.scores) <= 1.0001
        assert len(p.labels) == 5


def test_runs_on_onnx_runtime_with_physical_core_threads(classifier):
    from cnndesk.core.common import system

    assert classifier.backend == "onnx"
    assert classifier.threads == system.physical_cores()
    n = classifier.threads
    assert classifier.describe() == f"CPU · ONNX Runtime · {n} thread{'s' if n > 1 else ''}"


def test_onnx_matches_pytorch_on_the_samples(classifier, samples):
    from cnndesk.core.predict.classifier import Classifier

    torch_clf = Classifier(backend="torch")
    assert torch_clf.backend == "torch" and torch_clf.describe().startswith("CPU · PyTorch")
    x = np.stack([classifier.prepare(load_image(p)) for p in samples.values()])
    a, b = classifier.logits(x), torch_clf.logits(x)
    assert (a.argmax(1) == b.argmax(1)).all()
    assert np.abs(a - b).max() < 1e-3


def test_preprocessing_matches_torchvision(samples):
    from torchvision import transforms as T

    pre = default_model().preprocess
    tv = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(pre.mean, pre.std)])
    from PIL import Image

    odd = Image.fromarray(np.random.default_rng(0).integers(0, 255, (301, 517, 3), np.uint8))
    for img in [load_image(p) for p in samples.values()] + [odd, odd.transpose(Image.Transpose.TRANSPOSE)]:
        ours = pre(img)
        theirs = tv(img).numpy()
        assert ours.shape == theirs.shape == (3, 224, 224)
        # The crop-aware resize (Pillow's box, half the work) computes its filter positions from
        # a fractional box origin; float rounding can move a pixel by one 8-bit level, never more.
        diff = np.abs(ours - theirs) * 255 * 0.5  # back to 8-bit levels (std 0.5)
        assert diff.max() <= 1.0 + 1e-4
        assert diff.mean() < 0.6


def test_lite0_wants_inputs_in_minus_one_to_one(classifier, samples):
    """Confirms the default preprocessing (mean = std = 0.5) on the samples: ImageNet mean/std
    makes the model less sure of the same answers."""
    imagenet = Preprocess(256, 224, IMAGENET_MEAN, IMAGENET_STD)
    imgs = [load_image(p) for p in samples.values()]
    ours = classifier.predict_arrays(np.stack([classifier.prepare(i) for i in imgs]), 1)
    other = classifier.predict_arrays(np.stack([imagenet(i) for i in imgs]), 1)
    coffee = list(samples).index("coffee")
    assert ours[coffee].label == "espresso" and ours[coffee].score > other[coffee].score
    assert np.mean([p.score for p in ours]) > np.mean([p.score for p in other])


def test_cached_export_is_used_without_importing_torch_or_qt(classifier, samples):
    code = (
        "import sys\n"
        "from cnndesk.core.predict.classifier import Classifier\n"
        "c = Classifier()\n"
        f"p = c.predict([{str(samples['coffee'])!r}])[0]\n"
        "print(c.backend, p.label, 'torch' in sys.modules, any(m.startswith('PySide6') for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["onnx", "espresso", "False", "False"]


def test_falls_back_to_pytorch_when_export_fails_and_remembers_why(isolated_dirs, monkeypatch, caplog, samples):
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.runtime import export_cache as onnx_cache

    calls = []

    def broken_export(model, input_size, dest, output_names=("logits",)):
        calls.append(dest)
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx_cache, "export_onnx", broken_export)
    with caplog.at_level(logging.WARNING, logger="cnndesk"):
        clf = Classifier()
    assert clf.backend == "torch" and "exporter exploded" in clf.fallback_reason
    assert any("exporter exploded" in r.getMessage() for r in caplog.records)
    assert clf.predict([samples["coffee"]])[0].label == "espresso"
    # the failure is recorded and retried by later starts, up to EXPORT_ATTEMPTS tries in all,
    # then never again (no export attempt at every start)
    for _ in range(onnx_cache.EXPORT_ATTEMPTS + 2):
        again = Classifier()
        assert again.backend == "torch"
    assert len(calls) == onnx_cache.EXPORT_ATTEMPTS
    with pytest.raises(ModelError, match="ONNX Runtime is unavailable"):
        Classifier(backend="onnx")


def test_a_one_off_export_failure_heals_at_the_next_start(isolated_dirs, monkeypatch, samples):
    """A transient failure (e.g. two exports at once) must not pin the machine to PyTorch."""
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.runtime import export_cache as onnx_cache

    real = onnx_cache.export_onnx
    calls = []

    def flaky_export(model, input_size, dest, output_names=("logits",)):
        calls.append(dest)
        if len(calls) == 1:
            raise RuntimeError("'prims' object has no attribute 'device_put'")
        return real(model, input_size, dest, output_names)

    monkeypatch.setattr(onnx_cache, "export_onnx", flaky_export)
    assert Classifier().backend == "torch"
    healed = Classifier()
    assert healed.backend == "onnx" and len(calls) == 2
    assert healed.predict([samples["coffee"]])[0].label == "espresso"
    assert Classifier().backend == "onnx" and len(calls) == 2  # the good export is reused


def test_falls_back_when_the_exported_model_disagrees(isolated_dirs, monkeypatch):
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.runtime import export_cache as onnx_cache

    monkeypatch.setattr(onnx_cache, "MAX_LOGIT_DIFF", -1.0)  # nothing can pass
    clf = Classifier()
    assert clf.backend == "torch" and "disagrees with PyTorch" in clf.fallback_reason


def test_thread_count_and_devices():
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.runtime.devices import resolve_device

    one = Classifier(threads=1)
    assert one.describe() == "CPU · ONNX Runtime · 1 thread"
    assert resolve_device("cpu").device == "cpu"
    with pytest.raises(ModelError, match="unknown device"):
        resolve_device("tpu")


def test_cuda_request_without_gpu_is_a_clear_error(monkeypatch):
    import torch

    from cnndesk.core.runtime.devices import resolve_device

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(ModelError, match="device 'cuda' is not available"):
        resolve_device("cuda")


def test_predict_reports_bad_files_with_the_typed_error(classifier, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("hello")
    with pytest.raises(ImageLoadError, match="bad.jpg"):
        classifier.predict([bad])
    assert classifier.predict([]) == []


def test_cpu_only_torch_on_a_machine_with_an_nvidia_gpu_is_reported(monkeypatch):
    import torch

    from cnndesk.core.common import system
    from cnndesk.core.runtime.devices import resolve_device

    monkeypatch.setattr(system, "gpu_may_be_present", lambda: True)
    monkeypatch.setattr(system, "nvidia_driver_present", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    info = resolve_device("auto")
    assert info.device == "cpu" and "CPU-only" in info.note
    with pytest.raises(ModelError, match="CPU-only"):
        resolve_device("cuda")
