"""`python -m cnndesk.prepare`: build the default model's verified ONNX export once, at set-up,
into the resources' onnx folder (resources/onnx in a checkout, cnndesk/_resources/onnx in a
wheel install; the packaged builds carry theirs there too), so the first classification on a new
machine or with an empty cache folder answers in about a second instead of waiting 12-24 s for
the export. Every set-up runs it: `make run`, `make test` (scripts/setup.sh's callers in the
Makefile); after a plain `pip install` it is the one post-install step (docs/packaging.md). It
is skipped when the export is already there, and leaves nothing half-written: the record (.json)
that makes an export usable is copied last."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


class PrepareError(Exception):
    pass


def prepare(dest: Path | None = None) -> Path | None:
    """The path of the verified export in ``dest`` (made now or found), or None where there is
    nothing to export with (no PyTorch: the lite build ships its exports). Raises PrepareError."""
    from cnndesk.core.common import system
    from cnndesk.core.common.paths import resource_path
    from cnndesk.core.models.registry import default_model

    dest = dest or resource_path("onnx")
    spec = default_model()
    if not system.has_torch():
        return None
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
            raise PrepareError(f"the ONNX export failed ({entry.record.get('reason')}); the app will use PyTorch")
        src = Path(entry.path)
        files = sorted((f for f in src.parent.iterdir() if f.name.startswith(src.stem + ".")),
                       key=lambda f: f.suffix == ".json")  # the .onnx (and .onnx.data) first, the record last
        try:
            _install(files, dest)
        except OSError as exc:
            from cnndesk.core.common.safeio import describe_oserror

            raise PrepareError(f"cannot write the export to {dest}: {describe_oserror(exc)}") from None
    return dest / src.name


def _install(files: list[Path], dest: Path) -> None:
    from cnndesk.core.common.safeio import copy_file

    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        target = dest / f.name
        if target.exists():
            target.unlink()  # a stale copy of the same name (its record did not verify)
        copy_file(f, target)


def main() -> int:
    t0 = time.perf_counter()
    try:
        out = prepare()
    except PrepareError as exc:
        print(f"prepare: {exc}; the first answer will wait for the export instead", file=sys.stderr)
        return 1
    if out is None:
        print("prepare: nothing to do (no PyTorch here: this build ships its exports)")
    else:
        print(f"prepare: {out} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
