"""Export bundles: a folder that gives the app's answers with no cnndesk installed.

``export_bundle(model, fmt, out)`` writes

    out/
      model.onnx | model.int8.onnx | model.xml+bin | model.torchscript.pt | model.pt2
      head.npz          quick models: the linear head the app runs in numpy after the features
      model.json        labels, preprocessing, temperature, unknown threshold, runtime, versions
      predict.py        prints exactly `cnndesk classify --format json` (Pillow + numpy + runtime)
      _vendor/cnndesk/  a verbatim copy of the app's image loader and preprocessing
      README.md         usage
      parity.json       the bundle's own predict.py against the app on the model's validation images

The network in the bundle is the one the app runs (the same verified ONNX export, copied), and the
parity check runs the bundle's predict.py in a separate process, exactly as a user would. A format
whose runtime is not installed here is written but its parity is reported as unchecked, never claimed.

This module assembles and publishes the folder; :mod:`cnndesk.core.export.bundle_network` writes the network
in each format, :mod:`cnndesk.core.export.bundle_check` picks the images and runs the parity check.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnndesk import __version__
from cnndesk.core.common.progress import CancelToken, ProgressCallback, check, report
from cnndesk.core.export.bundle_check import calibration_images, parity, validation_images
from cnndesk.core.export.bundle_network import (
    compare_int8,
    quantize_int8,
    write_onnx,
    write_openvino,
    write_torch,
)
from cnndesk.core.export.formats import FORMATS, INT8_MIN_AGREEMENT, ExportError, Format
from cnndesk.core.export.replace import refuse_unless_bundle, replace_bundle
from cnndesk.core.models.registry import ModelSpec, get_spec

# the bundle's modules copied from the app (and whatever cnndesk modules they import)
VENDORED_ROOTS = ("cnndesk.core.images.load", "cnndesk.core.images.preprocess", "cnndesk.core.trust.scores",
                  "cnndesk.core.export.manifest", "cnndesk.core.common.safeio")


@dataclass
class BundleReport:
    folder: Path
    format: str
    parity: dict
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        p = self.parity
        if not p.get("checked"):
            return True  # nothing claimed; describe() says so
        need = 0.98 if self.format == "onnx-int8" else 1.0
        return p["label_agreement"] >= need and p.get("unknown_agreement", 1.0) >= need

    def describe(self) -> str:
        p = self.parity
        if not p.get("checked"):
            head = f"{self.folder} ({self.format}): written; parity UNCHECKED here ({p.get('reason')})"
        else:
            verdict = "gives the app's answers" if self.ok else "DIFFERS from the app"
            head = (f"{self.folder} ({self.format}) {verdict}: same label on {p['same_label']}/{p['images']} "
                    f"{p['source']}, largest score difference {p['max_score_diff']:.2g}")
            if "unknown_agreement" in p:
                head += f", same unknown flag on {p['same_unknown']}/{p['images']}"
        return "\n".join([head] + [f"  {n}" for n in self.notes])


# -- the bundle ------------------------------------------------------------------------------------
def export_bundle(
    model: str | ModelSpec,
    fmt: str,
    out: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    overwrite: bool = False,
    top_k: int = 5,
    max_images: int = 300,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> BundleReport:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}' (choose {', '.join(FORMATS)})")
    spec = model if isinstance(model, ModelSpec) else get_spec(model)
    out = check_bundle_out(out, overwrite)
    form = FORMATS[fmt]
    from cnndesk.core.predict.classifier import Classifier

    report(progress, 0, 5, f"Loading {spec.title}")
    app = Classifier(spec, device="cpu")  # the app's own CPU path: the bundle copies its network
    check(cancel)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".cnndesk-export", dir=out.parent))
    notes: list[str] = [form.note] if form.note else []
    try:
        files = {"model": form.model_file}
        head = app.head
        if head is not None:
            np.savez(tmp / "head.npz", weight=head[0], bias=head[1])
            files["head"] = "head.npz"
        novelty = getattr(app, "novelty", None)
        if novelty is not None:  # "not one of my classes": the detector the app runs, numpy only
            np.savez(tmp / "novelty.npz", **{k.replace(".", "_"): v for k, v in novelty.tensors().items()})
            files["novelty"] = "novelty.npz"
        report(progress, 1, 5, f"Writing {form.description.split(' —')[0]}")
        fp32 = write_onnx(app, spec, tmp / "model.onnx") if fmt in ("onnx", "onnx-int8", "openvino") else None
        check(cancel)
        if fmt == "onnx-int8":
            notes += _write_int8(app, spec, fp32, tmp / form.model_file, data, cancel)
            fp32.unlink()
        elif fmt == "openvino":
            write_openvino(fp32, tmp / form.model_file)
            fp32.unlink()
        elif fmt in ("torchscript", "pt2", "tflite", "coreml"):
            write_torch(spec, head is not None, tmp / form.model_file, fmt)
        check(cancel)
        vendor_sources(tmp / "_vendor")
        shutil.copyfile(Path(__file__).resolve().parents[2] / "export_kit" / "predict.py", tmp / "predict.py")
        info = _model_json(spec, form, files, app, tmp)
        (tmp / "model.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_readme(spec, form, info), encoding="utf-8")
        report(progress, 3, 5, "Checking the bundle against the app")
        images, source = validation_images(spec, data, max_images)
        checked = parity(app, tmp, form, images, source, top_k, cancel)
        checked["model_sha256"] = info["sha256"]["model"]  # predict.py warns when it runs another model file
        (tmp / "parity.json").write_text(json.dumps(checked, indent=2) + "\n", encoding="utf-8")
        _publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report(progress, 5, 5, "Exported")
    return BundleReport(out, fmt, checked, notes)


def check_bundle_out(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse a bundle folder that cannot work, before any work (one-line ExportError)."""
    out = Path(out)
    if os.path.lexists(out) and not (overwrite and out.is_dir() and not out.is_symlink()):
        raise ExportError(f"{out} already exists; choose another folder (or --force to replace it)")
    if overwrite and os.path.lexists(out):
        refuse_unless_bundle(out)  # --force replaces a cnndesk bundle, never a folder of other files
    if not out.parent.is_dir():
        raise ExportError(f"the folder {out.parent} does not exist; create it first")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write into {out.parent} (permission denied or read-only)")
    return out


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    for p in [tmp, *tmp.rglob("*")]:  # mkdtemp makes 0700: follow the umask like any other file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)
    if os.path.lexists(out) and overwrite:
        replace_bundle(tmp, out)
    else:
        try:
            os.rename(tmp, out)  # an empty folder that appeared meanwhile would be replaced: check
        except OSError as exc:
            raise ExportError(f"{out}: {exc.strerror}") from None


def _write_int8(app, spec: ModelSpec, fp32: Path, dest: Path, data, cancel) -> list[str]:
    """int8 calibrated on training images; refused when its top-1 answers agree with fp32 on fewer
    than 99 % of the validation images."""
    quantize_int8(app, fp32, dest, calibration_images(spec, data), cancel)
    c = compare_int8(app, fp32, dest, validation_images(spec, data)[0])
    if c["agreement"] < INT8_MIN_AGREEMENT:
        raise ExportError(f"int8 refused: its top-1 answer agrees with fp32 on {c['same']}/{c['total']} validation "
                          f"images ({c['agreement']:.1%}, need {INT8_MIN_AGREEMENT:.0%}); export onnx instead")
    return [f"int8 vs fp32: same top-1 on {c['same']}/{c['total']} validation images ({c['agreement']:.1%}); "
            f"{c['ms32'] / c['ms8']:.2f}x the fp32 speed here ({c['ms8']:.2f} vs {c['ms32']:.2f} ms/image); "
            f"{c['mb8']:.1f} MB vs {c['mb32']:.1f} MB"]


def _model_json(spec: ModelSpec, form: Format, files: dict, app, folder: Path) -> dict:
    from cnndesk.core.export.manifest import file_sha256

    meta = spec.metadata or {}
    base = spec.base
    return {
        "name": spec.name,
        "title": spec.title,
        "kind": meta.get("kind", "builtin" if spec.source != "user" else "full"),
        "base": base.name if base is not None else meta.get("base", spec.name),
        "arch": (base or spec).arch,
        "labels": list(spec.labels),
        "preprocess": spec.preprocess.to_dict(),
        "temperature": float(getattr(app, "temperature", 1.0)),
        "unknown": ({**app.novelty.info(), "threshold": float(app.novelty_threshold)}
                    if getattr(app, "novelty", None) is not None else None),
        "format": form.name,
        "runtime": form.runtime,
        "files": files,
        "sha256": {k: file_sha256(str(folder / name)) for k, name in files.items()},  # predict.py checks them
        "input": {"layout": "NCHW", "dtype": "float32", "size": spec.input_size},
        "cnndesk_version": __version__,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _readme(spec: ModelSpec, form: Format, info: dict) -> str:
    need = form.runtime  # the pip name of the runtime
    labels = ", ".join(info["labels"][:20]) + (" …" if len(info["labels"]) > 20 else "")
    return f"""# {spec.title} — exported from cnndesk {__version__}

Format: **{form.name}** — {form.description}.
{(form.note + chr(10)) if form.note else ''}
Classes ({len(info['labels'])}): {labels}

## Use it

```sh
python -m venv venv && venv/bin/pip install pillow numpy {need}
venv/bin/python predict.py photo1.jpg photo2.png        # JSON, exactly like `cnndesk classify --format json`
venv/bin/python predict.py --format table --top-k 3 photo.jpg
venv/bin/python predict.py --recursive my_photos/       # a folder: its images by name (-r: subfolders too)
```

`predict.py` works from any folder and needs nothing else (no cnndesk): the images are read and
preprocessed by a verbatim copy of cnndesk's own loader in `_vendor/` (EXIF rotation, colour modes,
the decompression-bomb limit, reduced JPEG decoding), then resized so the shorter side is
{info['preprocess']['resize']} px, centre-cropped to {info['preprocess']['crop']} px and normalised with mean
{info['preprocess']['mean']} and std {info['preprocess']['std']} (NCHW float32).
{"The network outputs image features; `head.npz` holds the linear layer that turns them into class scores (the app runs it the same way)." if 'head' in info['files'] else "The network outputs class logits."}
Scores are `softmax(logits / {info['temperature']})`.

{_CODE_NOTE if form.runtime == "torch" else _DATA_NOTE}

`parity.json` says how this bundle's `predict.py` agreed with the app when it was exported
(same top label, same "not one of my classes" flag, largest score difference) and on which images.
"""


_CODE_NOTE = """**This bundle is code.** A PyTorch model file (`.pt2`, TorchScript) is a program: loading it can
run code from the file. `predict.py` refuses it unless you add `--allow-code`; do that only for a
bundle whose maker you trust, and prefer an ONNX bundle to share."""
_DATA_NOTE = """The model file is data, not code: `predict.py` checks `model.json` (types, ranges, plain file names
inside this folder, the SHA-256 of every file) before it loads anything, and loads only this
folder's vendored cnndesk modules by name — nothing else in the folder is imported."""


def vendor_sources(dest: Path) -> None:
    """Copy the app's loader and preprocessing (and the cnndesk modules they import) verbatim."""
    import importlib.util

    todo, done = list(VENDORED_ROOTS), set()
    while todo:
        mod = todo.pop()
        if mod in done:
            continue
        done.add(mod)
        origin = Path(importlib.util.find_spec(mod).origin)
        rel = Path(*mod.split(".")).with_suffix(".py")
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, dest / rel)
        for node in ast.walk(ast.parse(origin.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            todo += [n for n in names if n.startswith("cnndesk.") and n not in done]
    for pkg in [dest / "cnndesk", *[p for p in (dest / "cnndesk").rglob("*") if p.is_dir()]]:
        init = pkg / "__init__.py"
        if not init.exists():
            init.write_text(f'__version__ = "{__version__}"\n' if pkg == dest / "cnndesk" else "")
