"""The export cache is keyed on the actual content of a model's file (weights and metadata) and
what shapes its network, never on its name or a ``.sha256`` file beside it, and an entry is
verified when read: a user model named ``efficientnet-lite0`` with the built-in's architecture, a
biased head and a sidecar holding the built-in's hash cannot make the built-in answer "goldfish"."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from cnndesk.core.models.registry import get_spec, spec_from_model_file
from cnndesk.core.runtime import backends as runtime
from cnndesk.core.runtime import export_cache as onnx_cache


def _user_model(folder: Path, state_dict, builtin) -> Path:
    from cnndesk.core.models.files import save_model_file

    folder.mkdir(parents=True, exist_ok=True)
    return save_model_file(folder / "efficientnet-lite0.safetensors", state_dict, arch=builtin.arch,
                           labels=list(builtin.labels), preprocess=builtin.preprocess, name="efficientnet-lite0")


def _sidecar(path: Path, digest: str) -> None:
    path.with_name(path.name + ".sha256").write_text(digest + "\n")


def test_a_sidecar_beside_a_user_file_is_not_believed(tmp_path, isolated_dirs):
    import numpy as np

    builtin = get_spec("efficientnet-lite0")
    weights = runtime.resolve(builtin, lookup=False).weights
    real = onnx_cache.file_sha256(weights)
    model = _user_model(tmp_path / "models", {"w": np.zeros(3, np.float32)}, builtin)
    _sidecar(model, real)
    user = spec_from_model_file(model)
    assert user.name == builtin.name and user.arch == builtin.arch
    assert onnx_cache.file_sha256(model) == hashlib.sha256(model.read_bytes()).hexdigest() != real
    assert onnx_cache.cache_key(user, model) != onnx_cache.cache_key(builtin, weights)
    assert onnx_cache.entry_paths(user, onnx_cache.cache_key(user, model)) != onnx_cache.entry_paths(
        builtin, onnx_cache.cache_key(builtin, weights))


def test_a_file_swapped_under_the_same_size_and_mtime_is_hashed_again(tmp_path, isolated_dirs):
    p = tmp_path / "w.bin"
    p.write_bytes(b"a" * 1000)
    first = onnx_cache.file_sha256(p)
    st = p.stat()
    p.write_bytes(b"b" * 1000)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: only ctime moved
    assert onnx_cache.file_sha256(p) != first


def test_a_forged_or_swapped_entry_is_not_used(tmp_path, isolated_dirs):
    builtin = get_spec("efficientnet-lite0")
    weights = runtime.resolve(builtin, lookup=False).weights
    key = onnx_cache.cache_key(builtin, weights)
    onnx_path, record_path = onnx_cache.entry_paths(builtin, key)
    onnx_path.parent.mkdir(parents=True)
    onnx_path.write_bytes(b"a poisoned network")
    record = {"model": builtin.name, "ok": True, "variant": "logits"}
    for forged in (record, {**record, "key": key}, {**record, "key": "other", "onnx_sha256": "0" * 64},
                   {**record, "key": key, "onnx_sha256": "0" * 64}):
        record_path.write_text(json.dumps(forged))
        entry, _ = onnx_cache.lookup(builtin, "logits", weights)
        assert entry is None, forged
    good = {**record, "key": key, "onnx_sha256": onnx_cache.file_sha256(onnx_path)}
    record_path.write_text(json.dumps(good))
    assert onnx_cache.lookup(builtin, "logits", weights)[0].ok  # (what a real export writes)
    record_path.write_text("[1, 2]")
    assert onnx_cache.lookup(builtin, "logits", weights)[0] is None


def test_a_poisoned_user_model_cannot_take_over_the_builtin(tmp_path, classifier, samples, monkeypatch):
    """The attack as it was run: export the impostor first into an empty cache, then ask for the
    built-in (whose verified export the test session already made)."""
    from cnndesk.core.networks.build import build_model
    from cnndesk.core.predict.classifier import Classifier

    session_cache = Path(os.environ["CNNDESK_CACHE_DIR"])
    monkeypatch.setenv("CNNDESK_CACHE_DIR", str(tmp_path / "cache"))
    builtin = get_spec("efficientnet-lite0")
    weights = runtime.resolve(builtin, lookup=False).weights
    net = build_model(builtin, weights=weights)
    sd = {k: v.detach().clone() for k, v in net.state_dict().items()}
    bias = next(k for k in sd if k.endswith("bias") and sd[k].shape == (1000,))
    sd[bias][1] += 1000.0  # "goldfish" for every image
    model = _user_model(tmp_path / "models", sd, builtin)
    _sidecar(model, onnx_cache.file_sha256(weights))
    impostor = Classifier(spec_from_model_file(model), device="cpu")
    assert impostor.predict([samples["cat"]], 1)[0].labels[0] == "goldfish"  # it is biased, for itself
    assert runtime.resolve(builtin, export=False).entry is None  # its export is not the built-in's
    shutil.copytree(session_cache / "onnx", tmp_path / "cache" / "onnx", dirs_exist_ok=True)
    answer = Classifier(device="cpu").predict([samples["cat"]], 1)[0]
    assert answer.labels[0] == classifier.predict([samples["cat"]], 1)[0].labels[0] != "goldfish"
    assert answer.scores[0] < 0.999
