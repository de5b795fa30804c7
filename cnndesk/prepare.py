"""`python -m cnndesk.prepare`: build the default model's verified ONNX export once, at set-up,
into resources/onnx (where the packaged builds carry theirs), so the first classification on a
new machine or with an empty cache folder answers in about a second instead of waiting 12-24 s
for the export. `make run` runs it; it is skipped when the export is already there."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path


def prepare(dest: Path | None = None) -> Path | None:
    from cnndesk.core.common import system
    from cnndesk.core.common.paths import resource_path
    from cnndesk.core.models.registry import default_model

    dest = dest or resource_path("onnx")
    spec = default_model()
    if not system.has_torch():
        return None  # nothing to export with (the lite build ships its export)
    from cnndesk.core.runtime.resolve import resolve

    entry = resolve(spec, "logits", export=False).entry
    if entry is not None and entry.ok and Path(entry.path).parent == dest:
        return Path(entry.path)
    old = os.environ.get("CNNDESK_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="cnndesk-prepare-") as tmp:
        os.environ["CNNDESK_CACHE_DIR"] = tmp
        try:
            entry = resolve(spec, "logits").entry
        finally:
            if old is None:
                os.environ.pop("CNNDESK_CACHE_DIR", None)
            else:
                os.environ["CNNDESK_CACHE_DIR"] = old
        if not entry.ok:
            print(f"prepare: the ONNX export failed ({entry.record.get('reason')}); the app will use PyTorch", file=sys.stderr)
            return None
        dest.mkdir(parents=True, exist_ok=True)
        src = Path(entry.path)
        for f in src.parent.iterdir():
            if f.name.startswith(src.stem):  # the .onnx, its record (.json) and any .onnx.data
                shutil.copy2(f, dest / f.name)
    return dest / src.name


if __name__ == "__main__":
    out = prepare()
    print(f"prepare: {out}" if out else "prepare: nothing to do")
