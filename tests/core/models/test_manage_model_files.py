"""Rename, delete, import and copy model files."""

from __future__ import annotations

import numpy as np
import pytest

from cnndesk.core.common.errors import ModelError
from cnndesk.core.common.paths import user_models_dir
from cnndesk.core.models import manage
from cnndesk.core.models.registry import get_spec, user_model_specs


def _head_file(folder, name="pets"):
    import json

    from safetensors.numpy import save_file

    from cnndesk.core.models.registry import MODEL_FORMAT, default_model

    folder.mkdir(parents=True, exist_ok=True)
    info = {"format": 1, "kind": "head", "name": name, "arch": default_model().arch, "base": "efficientnet-lite0",
            "labels": ["cat", "dog"], "preprocess": default_model().preprocess.to_dict()}
    path = folder / f"{name}.safetensors"
    save_file({"head.weight": np.ones((2, 1280), np.float32), "head.bias": np.zeros(2, np.float32)}, str(path),
              metadata={MODEL_FORMAT: json.dumps(info)})
    return path


def test_import_rename_copy_delete(isolated_dirs, tmp_path):
    src = _head_file(tmp_path / "elsewhere")
    first = manage.import_model(src)
    second = manage.import_model(src)  # never overwrites, and never a second "pets": a free name
    assert first.name == "pets.safetensors" and second.name == "pets 2.safetensors"
    assert sorted(s.name for s in user_model_specs()) == ["pets", "pets 2"]
    renamed = manage.rename_model(second, "Cats & Dogs v2")
    assert renamed.name == "Cats & Dogs v2.safetensors" and not second.exists()
    spec = get_spec(str(renamed))
    assert spec.title == "Cats & Dogs v2" and spec.labels == ("cat", "dog")
    copy = manage.copy_model(renamed, tmp_path / "shared" / "mine")
    assert copy.name == "mine.safetensors" and copy.read_bytes() == renamed.read_bytes()
    with pytest.raises(FileExistsError):
        manage.copy_model(renamed, copy)
    manage.delete_model(first)
    assert not first.exists() and len(user_model_specs()) == 1
    with pytest.raises(ModelError, match="only deletes its own"):
        manage.delete_model(copy)
    assert copy.exists()


def test_import_refuses_damaged_or_foreign_files(isolated_dirs, tmp_path):
    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(b"\x80\x04cos\nsystem\n" * 10)
    with pytest.raises(ModelError):
        manage.import_model(bad)
    assert not user_models_dir().exists() or not list(user_models_dir().iterdir())
    with pytest.raises(ModelError, match="needs a name"):
        manage.rename_model(_head_file(tmp_path / "x"), "   ")
