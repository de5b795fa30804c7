"""Managing the user's model files: rename, delete, import, save a copy. torch-free; every write
is atomic and nothing is overwritten silently."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from cnndesk.core.common.errors import ModelError
from cnndesk.core.common.paths import atomic_write, user_models_dir
from cnndesk.core.common.safeio import unique_path
from cnndesk.core.models.registry import (
    MODEL_FILE_SUFFIX,
    MODEL_FORMAT,
    read_model_file_metadata,
    spec_from_model_file,
)
from cnndesk.core.organize.sorting import folder_name


def rename_model(path: str | os.PathLike, new_name: str) -> Path:
    """Give a model a new name (its file name and the name in its metadata)."""
    from safetensors.numpy import load_file, save

    path = Path(path)
    clean = folder_name(new_name.strip())
    if not new_name.strip() or clean == "_unnamed":
        raise ModelError("a model needs a name")
    info = read_model_file_metadata(path)
    info["name"] = new_name.strip()
    info.pop("title", None)
    target = path.with_name(clean + MODEL_FILE_SUFFIX)
    if target != path and (target.exists() or _name_taken(new_name.strip(), path)):
        # a silent "name (1)" would list two models under one name
        raise ModelError(f"a model called “{new_name.strip()}” already exists: choose another name")
    blob = save(load_file(str(path)), metadata={MODEL_FORMAT: json.dumps(info)})
    with atomic_write(target, "wb", overwrite=target == path) as fh:
        fh.write(blob)
    if target != path:
        path.unlink()
    return target


def _name_taken(name: str, own: Path) -> bool:
    from cnndesk.core.models.registry import user_model_specs

    key = name.casefold()
    return any(spec.title.casefold() == key for spec in user_model_specs()
               if Path(spec.weights.path).resolve() != own.resolve())


def delete_model(path: str | os.PathLike) -> None:
    path = Path(path)
    if path.parent.resolve() != user_models_dir().resolve():
        raise ModelError(f"{path.name} is not in your models folder; cnndesk only deletes its own copies")
    path.unlink()


def import_model(src: str | os.PathLike) -> Path:
    """Check a model file (never unpickles) and copy it into the models folder under a free name."""
    src = Path(src)
    spec = spec_from_model_file(src)  # raises ModelError for damaged or foreign files
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = free_name(spec.name)  # names are unique: a second "pets" is imported as "pets 2"
    target, _ = unique_path(folder / (folder_name(name) + MODEL_FILE_SUFFIX))
    if name == spec.name:
        with open(src, "rb") as fin, atomic_write(target, "wb", overwrite=False) as fout:
            shutil.copyfileobj(fin, fout)
        return target
    from safetensors.numpy import load_file, save

    info = read_model_file_metadata(src)
    info["name"] = name
    info.pop("title", None)
    blob = save(load_file(str(src)), metadata={MODEL_FORMAT: json.dumps(info)})
    with atomic_write(target, "wb", overwrite=False) as fout:
        fout.write(blob)
    return target


def free_name(name: str) -> str:
    """``name``, or ``name 2``, ``name 3``… : the first that no installed model (yours or built in)
    answers to, compared without case."""
    from cnndesk.core.models.registry import BUILTIN, user_model_specs

    taken = {s.name.casefold() for s in user_model_specs()} | {s.name.casefold() for s in BUILTIN}
    candidate, n = name, 1
    while candidate.casefold() in taken or candidate.lower().replace("_", "-") in taken:
        n += 1
        candidate = f"{name} {n}"
    return candidate


def copy_model(path: str | os.PathLike, dest: str | os.PathLike, overwrite: bool = False) -> Path:
    """Save a copy of a model file elsewhere (to share it)."""
    dest = Path(dest)
    if dest.suffix != MODEL_FILE_SUFFIX:
        dest = dest.with_name(dest.name + MODEL_FILE_SUFFIX)
    with open(path, "rb") as fin, atomic_write(dest, "wb", overwrite=overwrite) as fout:
        shutil.copyfileobj(fin, fout)
    return dest
