"""Your models' names stay unique and the models folder stays cheap to list: a second model called
"pets" is imported as "pets 2" and two files answering to one name are refused as ambiguous (one
took over `--model pets`); a file with a huge metadata header is refused from its first 8 bytes,
and listing reads each file once (25 broken quick models each re-read the whole folder: 66 s)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import safetensors

from cnndesk.core.common.errors import ModelError
from cnndesk.core.images.preprocess import Preprocess
from cnndesk.core.models import manage, registry
from cnndesk.core.models.files import save_model_file

PRE = Preprocess(256, 224, (0.5,) * 3, (0.5,) * 3)


def head_file(path, name, base="efficientnet-lite0", extra=None):
    tensors = {"head.weight": np.zeros((2, 1280), np.float32), "head.bias": np.zeros(2, np.float32)}
    return save_model_file(path, tensors, arch="timm:tf_efficientnet_lite0", labels=["cat", "dog"], preprocess=PRE,
                           name=name, extra={"kind": "head", "base": base, **(extra or {})})


def test_a_second_import_with_a_taken_name_gets_a_new_name(isolated_dirs, tmp_path):
    a = head_file(tmp_path / "a.safetensors", "pets")
    b = head_file(tmp_path / "b.safetensors", "Pets")
    first, second = manage.import_model(a), manage.import_model(b)
    assert registry.spec_from_model_file(first).name == "pets"
    assert registry.spec_from_model_file(second).name == "Pets 2"
    assert registry.get_spec("pets").weights.path == str(first.resolve())
    builtin_named = head_file(tmp_path / "c.safetensors", "resnet50")
    assert registry.spec_from_model_file(manage.import_model(builtin_named)).name == "resnet50 2"


def test_two_files_answering_to_one_name_are_refused_as_ambiguous(isolated_dirs, tmp_path, samples):
    folder = registry.user_models_dir()
    folder.mkdir(parents=True)
    head_file(folder / "pets.safetensors", "pets")
    shutil.copy(folder / "pets.safetensors", folder / "other.safetensors")  # copied in by hand
    with pytest.raises(ModelError, match="ambiguous"):
        registry.get_spec("pets")
    out = subprocess.run([sys.executable, "-m", "cnndesk", "classify", str(samples["cat"]), "--model", "pets"],
                         capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert out.returncode == 2 and "ambiguous" in out.stderr and "other.safetensors" in out.stderr, out.stderr
    assert registry.get_spec(str(folder / "other.safetensors")).name == "pets"  # a path always works


def test_a_huge_metadata_header_is_refused_and_each_file_is_read_once(isolated_dirs, monkeypatch):
    folder = registry.user_models_dir()
    folder.mkdir(parents=True)
    head_file(folder / "big.safetensors", "big", extra={"training": {"notes": "x" * (20 << 20)}})
    for i in range(25):  # quick models whose base is missing: each one looks for it among the others
        head_file(folder / f"broken{i:02d}.safetensors", f"broken{i}", base="nowhere")
    opened = []
    real = safetensors.safe_open

    def counting(path, *a, **k):
        opened.append(os.path.basename(path))
        return real(path, *a, **k)

    monkeypatch.setattr(safetensors, "safe_open", counting)
    usable, bad = registry.user_model_entries()
    reasons = {p.name: r for p, r in bad}
    assert not usable and len(bad) == 26
    assert "header is 21 MB" in reasons["big.safetensors"], reasons["big.safetensors"]
    assert "base model 'nowhere' is not installed" in reasons["broken00.safetensors"]
    assert "big.safetensors" not in opened  # refused from its first 8 bytes
    assert len(opened) <= 25, len(opened)  # once each (it was 25 x 26)
