"""What an export bundle is checked with: the images (the model's own validation images, those of
``--data``, or the sample photos; training images for int8 calibration) and the parity run of the
bundle's predict.py, in its own process, against the app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cnndesk.core.common.progress import check
from cnndesk.core.export.formats import ExportError, Format
from cnndesk.core.models.registry import ModelSpec


def validation_images(spec: ModelSpec, data: str | os.PathLike | None = None, limit: int = 300) -> tuple[list[str], str]:
    """The model's own validation images (through the dataset path in its file), or those of
    ``data``; the sample photos for built-in models. Returns (paths, a phrase naming them)."""
    from cnndesk.core.training.datasets import DatasetError, scan

    if data is not None:
        return _spread(_split_of(data, "val"), limit), f"validation images of {data}"
    meta = spec.metadata or {}
    ev = (meta.get("evaluation") or {}).get("paths") or []
    existing = [p for p in ev if isinstance(p, str) and os.path.isfile(p)]
    if existing:
        return _spread(existing, limit), "validation images of the model"
    root = (meta.get("dataset") or {}).get("root")
    if root and os.path.isdir(root):
        try:
            ds = scan(root, check_files=False)
            return _spread([str(p) for p, _ in ds.val], limit), f"validation images of {root}"
        except DatasetError:
            pass
    from cnndesk.core.common.paths import resource_path

    samples = sorted(str(p) for p in resource_path("samples").iterdir()
                     if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if spec.source != "user":
        return samples, "sample photos (--data DIR checks more)"
    return samples, "sample photos (the model's dataset was not found; --data DIR points at one)"


def _split_of(data, which: str) -> list[str]:
    """A dataset folder's validation (or training) images; any folder of images: half of them."""
    from cnndesk.core.predict.stream import walk_images
    from cnndesk.core.training.datasets import DatasetError, scan

    if not os.path.isdir(data):
        raise ExportError(f"--data {data}: not a folder")
    try:
        ds = scan(data, check_files=False)
        items = [str(p) for p, _ in (ds.val if which == "val" else ds.train)]
        if items:
            return items
    except DatasetError:
        pass
    files = sorted(str(p) for p in walk_images(Path(data), recursive=True))
    if not files:
        raise ExportError(f"--data {data}: no images found")
    return files[1::2] if which == "val" and len(files) > 1 else files[0::2]


def calibration_images(spec: ModelSpec, data=None, limit: int = 120) -> list[str]:
    """Training images for int8 calibration (the sample photos for built-in models)."""
    if data is not None:
        return _spread(_split_of(data, "train"), limit)
    root = ((spec.metadata or {}).get("dataset") or {}).get("root")
    if root and os.path.isdir(root):
        try:
            return _spread(_split_of(root, "train"), limit)
        except ExportError:
            pass
    imgs, _ = validation_images(spec, None)
    return imgs


def _spread(items: list, limit: int) -> list:
    if len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def parity(app, folder: Path, form: Format, images: list[str], source: str, top_k: int, cancel) -> dict:
    """Run the bundle's predict.py in its own process (as a user would) and compare with the app."""
    from cnndesk.core.predict.stream import classify_stream

    result: dict = {"images": len(images), "source": source, "runtime": form.runtime, "checked": False}
    if not images:
        result["reason"] = "no images to check with"
        return result
    if form.platforms and sys.platform not in form.platforms:
        result["reason"] = f"{form.name} runs only on {', '.join(form.platforms)}; this is {sys.platform}"
        return result
    try:
        __import__(form.runtime)
    except ImportError:
        result["reason"] = f"{form.runtime} is not installed here"
        return result
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    allow = ["--allow-code"] if form.runtime == "torch" else []  # our own program, just written
    # the PyInstaller app has no Python: its entry point runs the script (packaging/cnndesk_main.py)
    python = [sys.executable, "--run-bundle-script"] if getattr(sys, "frozen", False) else [sys.executable]
    proc = subprocess.run([*python, str(folder / "predict.py"), "--top-k", str(top_k), *allow, *images],
                          capture_output=True, text=True, cwd=tempfile.gettempdir(), env=env, timeout=1800)
    check(cancel)
    try:
        if proc.returncode not in (0, 1):
            raise ValueError
        got = {r["path"]: r for r in json.loads(proc.stdout)}
    except ValueError:
        tail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise ExportError(f"the bundle's predict.py failed (exit {proc.returncode}): {tail}") from None
    want = {r.path: r.as_dict() for r in classify_stream(images, app, top_k=top_k)}
    same = same_unknown = n = 0
    diff = 0.0
    for p, w in want.items():
        g = got.get(p)
        if g is None or w["error"] or g["error"]:
            continue
        n += 1
        same += g["predictions"][0]["label"] == w["predictions"][0]["label"]
        gs = {d["label"]: d["score"] for d in g["predictions"]}
        diff = max([diff] + [abs(gs[d["label"]] - d["score"]) for d in w["predictions"] if d["label"] in gs])
        same_unknown += g.get("unknown") == w.get("unknown")
    result.update(checked=True, images=n, same_label=same, label_agreement=same / max(n, 1),
                  max_score_diff=diff, top_k=top_k)
    if any("unknown" in r for r in want.values()):
        result.update(same_unknown=same_unknown, unknown_agreement=same_unknown / max(n, 1))
    return result
