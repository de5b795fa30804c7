"""Where the doctor's embeddings come from: the ONNX features export; when that export is recorded
as failed, the last-layer columns of the multi-stage export (not the 10× slower PyTorch fallback),
with the same vectors; PyTorch only when both exports failed."""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import doctor_data  # noqa: E402

from cnndesk.core.doctor import embed as doctor_embed  # noqa: E402
from cnndesk.core.models.registry import get_spec  # noqa: E402
from cnndesk.core.predict.embeddings import EmbeddingCache, FeatureExtractor  # noqa: E402
from cnndesk.core.runtime import export_cache as onnx_cache
from cnndesk.core.runtime import resolve as runtime


@pytest.fixture(scope="module")
def exports():
    """Both ONNX exports in the session cache (exported once if the session has none yet)."""
    spec = get_spec("efficientnet-lite0")
    FeatureExtractor(spec, device="cpu", stages="last")
    FeatureExtractor(spec, device="cpu", stages="multi")
    return spec, Path(os.environ["CNNDESK_CACHE_DIR"])


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embed")
    rng = random.Random(1)
    paths = []
    for i, cls in enumerate(doctor_data.CLASSES[:6]):
        p = folder / f"{i}.png"
        doctor_data.draw(cls, rng).save(p)
        paths.append(str(p))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return paths + [str(folder / "broken.jpg")]


def _cache_with_failed(exports, tmp_path, monkeypatch, variants: tuple[str, ...]) -> None:
    """A fresh cache folder holding the session's exports, ``variants`` recorded as failed (as a
    transient export failure left them)."""
    spec, session_cache = exports
    shutil.copytree(session_cache / "onnx", tmp_path / "cache" / "onnx")
    monkeypatch.setenv("CNNDESK_CACHE_DIR", str(tmp_path / "cache"))
    for variant in variants:
        key = runtime.resolve(spec, variant, export=False).key
        onnx_path, record = onnx_cache.entry_paths(spec, key, variant)
        onnx_path.unlink()
        record.write_text(json.dumps({"model": spec.name, "variant": variant, "ok": False,
                                      "reason": "ConversionError: export failed",
                                      "attempts": onnx_cache.EXPORT_ATTEMPTS}))  # retried no more
        assert runtime.resolve(spec, variant, export=False).entry.ok is False


def test_last_layer_width_is_read_from_the_multi_export(exports, tmp_path):
    spec, _ = exports
    multi = runtime.resolve(spec, "multi", export=False).entry
    features = runtime.resolve(spec, "features", export=False).entry
    assert doctor_embed.last_layer_width(multi.path) == 1280
    assert doctor_embed.last_layer_width(features.path) is None  # no concatenation to split
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    assert doctor_embed.last_layer_width(junk) is None
    assert doctor_embed.last_layer_width(tmp_path / "missing.onnx") is None


def test_features_export_is_used_when_it_works(exports, images):
    spec, _ = exports
    feats, errors, source = doctor_embed.embed(images, spec, device="cpu")
    assert source == "onnx"
    assert set(feats) == set(images[:-1]) and set(errors) == {images[-1]}
    assert "broken.jpg" in errors[images[-1]]
    assert all(v.shape == (1280,) for v in feats.values())


def test_failed_features_export_uses_the_multi_export_with_the_same_vectors(exports, images, tmp_path, monkeypatch):
    spec, _ = exports
    reference, _, _ = doctor_embed.embed(images, spec, device="cpu")  # the features export, session cache
    _cache_with_failed(exports, tmp_path, monkeypatch, ("features",))
    steps = []
    feats, errors, source = doctor_embed.embed(images, spec, progress=lambda d, t, m: steps.append(d), device="cpu")
    assert source == "onnx-multi"
    assert set(feats) == set(reference) and set(errors) == {images[-1]}
    for p, v in feats.items():
        assert v.shape == (1280,) and v.flags.c_contiguous
        # both float16 as the doctor gets them (issue 25): one float16 step (≤ 2^-10 of the value) apart at most
        np.testing.assert_allclose(v.astype(np.float32), reference[p].astype(np.float32), rtol=2e-3, atol=1e-4)
    assert steps and steps[-1] == len(images)
    # the vectors went to quick training's (multi-stage) cache: training after a check reuses them
    multi = FeatureExtractor(spec, device="cpu", stages="multi")
    cache = EmbeddingCache(multi.key)
    assert all(cache.get(p) is not None and cache.get(p).shape == (2528,) for p in feats)
    # the failed record is left alone (no export was retried)
    assert runtime.resolve(spec, "features", export=False).entry.ok is False


def test_both_exports_failed_falls_back_to_pytorch(exports, images, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    spec, _ = exports
    reference, _, _ = doctor_embed.embed(images, spec, device="cpu")
    _cache_with_failed(exports, tmp_path, monkeypatch, ("features", "multi"))
    feats, errors, source = doctor_embed.embed(images, spec, device="cpu")
    assert source == "pytorch"
    assert set(feats) == set(reference) and set(errors) == {images[-1]}
    for p, v in feats.items():
        np.testing.assert_allclose(v.astype(np.float32), reference[p].astype(np.float32), rtol=2e-3, atol=1e-3)
