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
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnndesk import __version__
from cnndesk.core.errors import CnndeskError, ModelError
from cnndesk.core.export_formats import FORMATS, INT8_MIN_AGREEMENT, Format
from cnndesk.core.models.registry import ModelSpec, get_spec
from cnndesk.core.progress import CancelToken, ProgressCallback, check, report


class ExportError(CnndeskError):
    pass


# the bundle's modules copied from the app (and whatever cnndesk modules they import)
VENDORED_ROOTS = ("cnndesk.core.images", "cnndesk.core.preprocess", "cnndesk.core.trust")


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


# -- images the check runs on ----------------------------------------------------------------------
def validation_images(spec: ModelSpec, data: str | os.PathLike | None = None, limit: int = 300) -> tuple[list[str], str]:
    """The model's own validation images (through the dataset path in its file), or those of
    ``data``; the sample photos for built-in models. Returns (paths, a phrase naming them)."""
    from cnndesk.core.datasets import DatasetError, scan

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
    from cnndesk.core.paths import resource_path

    samples = sorted(str(p) for p in resource_path("samples").iterdir()
                     if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if spec.source != "user":
        return samples, "sample photos (--data DIR checks more)"
    return samples, "sample photos (the model's dataset was not found; --data DIR points at one)"


def _split_of(data, which: str) -> list[str]:
    """A dataset folder's validation (or training) images; any folder of images: half of them."""
    from cnndesk.core.datasets import DatasetError, scan
    from cnndesk.core.pipeline import walk_images

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
    from cnndesk.core.inference import Classifier

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
        fp32 = _write_onnx(app, spec, tmp / "model.onnx") if fmt in ("onnx", "onnx-int8", "openvino") else None
        check(cancel)
        if fmt == "onnx-int8":
            notes += _write_int8(app, spec, fp32, tmp / form.model_file, data, cancel)
            fp32.unlink()
        elif fmt == "openvino":
            _write_openvino(fp32, tmp / form.model_file)
            fp32.unlink()
        elif fmt in ("torchscript", "pt2", "tflite", "coreml"):
            _write_torch(spec, head is not None, tmp / form.model_file, fmt)
        check(cancel)
        _vendor(tmp / "_vendor")
        shutil.copyfile(Path(__file__).resolve().parents[1] / "export_kit" / "predict.py", tmp / "predict.py")
        info = _model_json(spec, form, files, app)
        (tmp / "model.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_readme(spec, form, info), encoding="utf-8")
        report(progress, 3, 5, "Checking the bundle against the app")
        images, source = validation_images(spec, data, max_images)
        parity = _parity(app, tmp, form, images, source, top_k, cancel)
        (tmp / "parity.json").write_text(json.dumps(parity, indent=2) + "\n", encoding="utf-8")
        _publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report(progress, 5, 5, "Exported")
    return BundleReport(out, fmt, parity, notes)


def check_bundle_out(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse a bundle folder that cannot work, before any work (one-line ExportError)."""
    out = Path(out)
    if os.path.lexists(out) and not (overwrite and out.is_dir() and not out.is_symlink()):
        raise ExportError(f"{out} already exists; choose another folder (or --force to replace it)")
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
    if out.exists() and overwrite:
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        try:
            os.rename(tmp, out)  # an empty folder that appeared meanwhile would be replaced: check
        except OSError as exc:
            raise ExportError(f"{out}: {exc.strerror}") from None


def _write_onnx(app, spec: ModelSpec, dest: Path) -> Path:
    """The app's own verified ONNX export, as one self-contained file."""
    import onnx

    if app.onnx_path is None:
        raise ExportError(f"{spec.title}: the app runs this model with PyTorch here ({app.fallback_reason}); "
                          "export to torchscript or pt2 instead")
    m = onnx.load(str(app.onnx_path))  # pulls in external weights (.onnx.data) if any
    onnx.save_model(m, str(dest), save_as_external_data=False)
    return dest


def _batches(app, paths: list[str], size: int = 8):
    from cnndesk.core.errors import ImageLoadError
    from cnndesk.core.images import load_image

    pre = app.preprocess
    arrays = []
    for p in paths:
        try:
            arrays.append(pre(load_image(p, min_side=pre.resize)))
        except ImageLoadError:
            continue
    return [np.stack(arrays[i:i + size]) for i in range(0, len(arrays), size)]


def quantize_int8(app, fp32: Path, dest: Path, calib_paths: list[str], cancel=None) -> None:
    """Static int8 quantization of the app's ONNX network: QDQ, per-channel int8 weights, uint8
    activations, MinMax ranges calibrated on ``calib_paths`` (the model's training images)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from cnndesk.core.onnx_cache import make_session

    name = make_session(fp32, threads=1).get_inputs()[0].name
    calib = _batches(app, calib_paths)
    if not calib:
        raise ExportError("no readable training images to calibrate the int8 model with (--data DIR)")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {name: b}

    pre = dest.with_name(f".{dest.name}.pre.onnx")
    try:
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    except Exception:  # pre-processing is an optimisation; quantize the plain graph then
        shutil.copyfile(fp32, pre)
    try:
        check(cancel)
        quantize_static(str(pre), str(dest), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        pre.unlink(missing_ok=True)


def compare_int8(app, fp32: Path, int8: Path, val_paths: list[str]) -> dict:
    """Top-1 agreement of the int8 network with fp32 (after the app's head, if any) and speeds."""
    from cnndesk.core.onnx_cache import make_session

    val = _batches(app, val_paths)
    s32, s8 = make_session(fp32, threads=app.threads), make_session(int8, threads=app.threads)
    name = s32.get_inputs()[0].name
    head = app.head

    def top1(sess, b):
        z = sess.run(None, {name: b})[0]
        if head is not None:
            z = z @ head[0].T + head[1]
        return z.argmax(1)

    same = total = 0
    for b in val:
        same += int((top1(s32, b) == top1(s8, b)).sum())
        total += len(b)
    b = val[0] if val else np.zeros((1, 3, app.preprocess.crop, app.preprocess.crop), np.float32)
    t32, t8 = _time(lambda: s32.run(None, {name: b})), _time(lambda: s8.run(None, {name: b}))
    return {"same": same, "total": total, "agreement": same / max(total, 1), "ms32": t32 * 1000 / len(b),
            "ms8": t8 * 1000 / len(b), "mb32": fp32.stat().st_size / 1e6, "mb8": int8.stat().st_size / 1e6}


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


def _time(fn, repeat: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _write_openvino(fp32: Path, dest: Path) -> None:
    try:
        import openvino as ov
    except ImportError:
        raise ExportError("the openvino format needs the openvino package (pip install 'cnndesk[export]')") from None
    ov.save_model(ov.convert_model(str(fp32)), str(dest), compress_to_fp16=False)


def _write_torch(spec: ModelSpec, features_only: bool, dest: Path, fmt: str) -> None:
    """The same network as the app's ONNX export: for models whose head runs in numpy (quick models,
    full models with a novelty detector) the features network — multi-stage where the model uses it."""
    import warnings

    import torch

    from cnndesk.core.models.build import build_model, feature_extractor

    base = spec.base
    net = build_model(base or spec).eval()
    if base is not None and spec.head.features == "multi":
        from cnndesk.core.models.multistage import multistage_extractor

        net = multistage_extractor(net, base.arch).eval()
    elif features_only:
        net = feature_extractor(net, (base or spec).arch)[0].eval()
    from cnndesk.core.onnx_cache import EXPORT_LOCK

    x = torch.zeros(2, 3, spec.input_size, spec.input_size)
    with warnings.catch_warnings(), EXPORT_LOCK:
        warnings.simplefilter("ignore")
        if fmt in ("tflite", "coreml"):
            _write_mobile(net, x[:1], dest, fmt)
        elif fmt == "torchscript":
            with torch.inference_mode():
                torch.jit.trace(net, x).save(str(dest))
        else:
            batch = torch.export.Dim("batch", min=1, max=4096)
            ep = torch.export.export(net, (x,), dynamic_shapes=({0: batch},))
            torch.export.save(ep, str(dest))


def _write_mobile(net, x, dest: Path, fmt: str) -> None:
    """TFLite through LiteRT's torch converter, Core ML through coremltools (both optional)."""
    form = FORMATS[fmt]
    try:
        converter = __import__(form.converter)
    except ImportError:
        raise ExportError(f"the {fmt} format needs {form.converter} (pip install 'cnndesk[mobile]')") from None
    if fmt == "tflite":
        converter.convert(net, (x,)).export(str(dest))
    else:
        import torch

        ep = torch.export.export(net, (x,)).run_decompositions({})
        ml = converter.convert(ep, convert_to="mlprogram", inputs=[converter.TensorType(name="image", shape=x.shape)],
                               compute_precision=converter.precision.FLOAT32)
        ml.save(str(dest))


def _model_json(spec: ModelSpec, form: Format, files: dict, app) -> dict:
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
```

`predict.py` works from any folder and needs nothing else (no cnndesk): the images are read and
preprocessed by a verbatim copy of cnndesk's own loader in `_vendor/` (EXIF rotation, colour modes,
the decompression-bomb limit, reduced JPEG decoding), then resized so the shorter side is
{info['preprocess']['resize']} px, centre-cropped to {info['preprocess']['crop']} px and normalised with mean
{info['preprocess']['mean']} and std {info['preprocess']['std']} (NCHW float32).
{"The network outputs image features; `head.npz` holds the linear layer that turns them into class scores (the app runs it the same way)." if 'head' in info['files'] else "The network outputs class logits."}
Scores are `softmax(logits / {info['temperature']})`.

`parity.json` says how this bundle's `predict.py` agreed with the app when it was exported
(same top label, same "not one of my classes" flag, largest score difference) and on which images.
"""


def _vendor(dest: Path) -> None:
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


def _parity(app, folder: Path, form: Format, images: list[str], source: str, top_k: int, cancel) -> dict:
    """Run the bundle's predict.py in its own process (as a user would) and compare with the app."""
    from cnndesk.core.pipeline import classify_stream

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
    proc = subprocess.run([sys.executable, str(folder / "predict.py"), "--top-k", str(top_k), *images],
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


def formats_table() -> list[tuple[str, str, bool]]:
    """(format, description, runtime installed here) for the app's export dialog and `--help`."""
    rows = []
    for f in FORMATS.values():
        try:
            __import__(f.runtime)
            ok = True
        except ImportError:
            ok = False
        rows.append((f.name, f.description, ok))
    return rows


__all__ = ["FORMATS", "BundleReport", "ExportError", "export_bundle", "formats_table", "ModelError"]
