#!/usr/bin/env python3
"""Classify images with this exported cnndesk model — no cnndesk needed.

    python predict.py IMAGE|FOLDER [...] [--recursive] [--top-k K] [--format json|table]

Prints exactly what ``cnndesk classify --format json`` prints for the same images and model:
a JSON list of {"path", "predictions": [{"label", "score"}, ...], "error"} (plus "unknown" and
"novelty" for a model that knows when an image is none of its classes). The images are read and
preprocessed by a copy of cnndesk's own loader (``_vendor/``), so the numbers are the app's.

Needs Python 3.9+, Pillow, numpy and the runtime named in model.json ("runtime"): onnxruntime,
openvino, torch, ai_edge_litert or coremltools. Exit status: 0 all images classified, 1 some could
not be read, 2 usage, 3 the model could not be loaded or run.
"""

from __future__ import annotations

import os
import sys

# ONNX Runtime's telemetry (a device id and events database in ~/.cache, events to Microsoft) off:
# read when onnxruntime is imported, so set first
os.environ["ORT_DISABLE_TELEMETRY"] = os.environ["ORT_TELEMETRY_DISABLED"] = "1"
HERE = os.path.dirname(os.path.abspath(__file__))
# Nothing in the bundle folder is imported by name: not a numpy.py beside this file (Python puts the
# script's folder first on sys.path), not anything planted in _vendor/. Only the vendored cnndesk
# modules are loaded, from their files, under the "cnndesk" package (see _load_vendored).
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.realpath(HERE):
    del sys.path[0]

import argparse  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402


def _load_vendored():
    """The "cnndesk" package from _vendor/cnndesk only (its __path__ is that folder alone)."""
    import importlib.util

    root = os.path.join(HERE, "_vendor", "cnndesk")
    spec = importlib.util.spec_from_file_location("cnndesk", os.path.join(root, "__init__.py"),
                                                  submodule_search_locations=[root])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["cnndesk"] = pkg
    spec.loader.exec_module(pkg)


if "cnndesk" not in sys.modules:
    _load_vendored()

from cnndesk.core.common.errors import ImageLoadError  # noqa: E402  (vendored copy)
from cnndesk.core.common.safeio import display  # noqa: E402  (the app's escaper: labels and names never raw)
from cnndesk.core.export.manifest import ManifestError, file_sha256, load_manifest, parity_warning  # noqa: E402
from cnndesk.core.images.load import load_image  # noqa: E402
from cnndesk.core.images.preprocess import Preprocess  # noqa: E402


class Model:
    """model.json + the model file(s): preprocessed NCHW float32 batch -> (logits, extras)."""

    def __init__(self, folder: str = HERE, allow_code: bool = False):
        self.info = load_manifest(folder, allow_code)  # checked: types, ranges, file names, hashes
        self.labels = list(self.info["labels"])
        self.preprocess = Preprocess.from_dict(self.info["preprocess"])
        self.temperature = self.info["temperature"]
        unknown = self.info.get("unknown") or {}
        self.unknown_threshold = unknown.get("threshold")
        runtime, files, paths = self.info["runtime"], self.info["files"], self.info["paths"]
        path = paths["model"]
        self.head = None
        if "head" in paths:  # numpy arrays only: allow_pickle stays off
            with np.load(paths["head"], allow_pickle=False) as z:
                self.head = (z["weight"].astype(np.float32), z["bias"].astype(np.float32))
        self.novelty = None
        if "novelty" in paths:  # the app's own detector (vendored cnndesk/core/trust.py)
            from cnndesk.core.trust.scores import Novelty

            with np.load(paths["novelty"], allow_pickle=False) as z:
                tensors = {k.replace("_", ".", 1): z[k] for k in z.files}
            self.novelty = Novelty.from_file(unknown, tensors)
        if runtime == "onnxruntime":
            import onnxruntime as ort

            ort.disable_telemetry_events()
            so = ort.SessionOptions()
            so.intra_op_num_threads = max(1, min(os.cpu_count() or 1, 4))
            self._session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            name = self._session.get_inputs()[0].name
            self._run = lambda x: self._session.run(None, {name: x})[0]
        elif runtime == "openvino":
            import openvino as ov

            compiled = ov.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            self._run = lambda x: np.asarray(compiled(x)[0])
        elif runtime == "torch":  # a program, not weights: load_manifest let it through only with allow_code
            import torch

            if files["model"].endswith(".pt2"):
                net = torch.export.load(path).module()
            else:
                net = torch.jit.load(path, map_location="cpu").eval()

            def run(x):
                with torch.inference_mode():
                    return net(torch.from_numpy(x)).float().numpy()

            self._run = run
        elif runtime == "ai_edge_litert":  # TFLite: batch size 1
            from ai_edge_litert.interpreter import Interpreter

            interp = Interpreter(model_path=path)
            interp.allocate_tensors()
            inp, outp = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]

            def run(x):
                rows = []
                for one in x:
                    interp.set_tensor(inp, one[None])
                    interp.invoke()
                    rows.append(np.array(interp.get_tensor(outp)[0]))
                return np.stack(rows)

            self._run = run
        elif runtime == "coremltools":  # Core ML: macOS only
            import coremltools as ct

            ml = ct.models.MLModel(path)
            out_name = list(ml.output_description)[0]
            self._run = lambda x: np.stack([np.asarray(ml.predict({"image": one[None]})[out_name])[0] for one in x])
        else:
            raise SystemExit(f"predict.py: unknown runtime {runtime!r} in model.json")

    def scores(self, batch: np.ndarray):
        """(probabilities [N, classes], novelty [N] or None) for a preprocessed batch."""
        out = self._run(np.ascontiguousarray(batch, dtype=np.float32))
        novelty = self.novelty.score(out) if self.novelty is not None else None
        if self.head is not None:
            weight, bias = self.head
            out = out @ weight.T + bias
        if self.temperature != 1.0:  # the app's calibration: logits / T in float32, then softmax
            out = out / np.float32(self.temperature)
        z = out.astype(np.float64) - out.max(axis=1, keepdims=True)
        e = np.exp(z)
        probs = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        return probs, novelty


def top_k(row: np.ndarray, labels, k: int):
    k = max(1, min(int(k), row.shape[0]))
    idx = np.argpartition(-row, k - 1)[:k]
    idx = idx[np.argsort(-row[idx], kind="stable")]
    return [{"label": labels[i], "score": round(float(row[i]), 6)} for i in idx]


def classify(model: Model, paths, k: int = 5, batch_size: int = 2):
    """Yield one result dict per path, in order (the shape of `cnndesk classify --format json`)."""
    pre = model.preprocess
    pending = []

    def flush():
        probs, novelty = model.scores(np.stack([x for _, x in pending]))
        for j, (p, _) in enumerate(pending):
            if not np.isfinite(probs[j]).all():  # as the app: no label from NaN scores
                yield {"path": p, "predictions": [], "error": f"{os.path.basename(p)}: the model gave no valid "
                       "score (NaN or infinite: its weights are damaged)"}
                continue
            row = {"path": p, "predictions": top_k(probs[j], model.labels, k), "error": None}
            if novelty is not None:
                row["unknown"] = bool(novelty[j] > model.unknown_threshold)
                row["novelty"] = round(float(novelty[j]), 6)
            yield row
        pending.clear()

    for p in paths:
        try:
            x = pre(load_image(p, min_side=pre.resize))
        except ImageLoadError as exc:
            yield from flush() if pending else ()
            yield {"path": p, "predictions": [], "error": str(exc)}
            continue
        pending.append((p, x))
        if len(pending) >= batch_size:
            yield from flush()
    if pending:
        yield from flush()


def expand(paths, recursive: bool = False):
    """Folders become their image files, as ``cnndesk classify`` reads them: sorted by name, files
    before subfolders, hidden entries skipped, subfolders only with ``recursive``. Files named
    explicitly are kept whatever they are (the loader says why one cannot be read)."""
    is_image = load_image.__globals__["is_image_path"]  # the vendored loader's own test, however it was loaded
    out, seen = [], set()

    def visit(folder):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop is followed once
            return
        seen.add(real)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            print(f"predict.py: warning: skipped the folder {folder!r} ({exc.strerror or exc})", file=sys.stderr)
            return
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir():
                    subdirs.append(e.path)
                elif e.is_file() and is_image(e.name):
                    out.append(e.path)
            except OSError:
                continue
        for d in subdirs if recursive else ():
            visit(d)

    for p in paths:
        if os.path.isdir(p):
            visit(p)
        else:
            out.append(p)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Classify images with this exported cnndesk model.")
    ap.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    ap.add_argument("--recursive", "-r", action="store_true", help="descend into subfolders")
    ap.add_argument("--top-k", "-k", type=int, default=5)
    ap.add_argument("--format", choices=("json", "table"), default="json")
    ap.add_argument("--allow-code", action="store_true",
                    help="load a PyTorch bundle (.pt2 / TorchScript): such a model file is a program that can run "
                         "code; use only for a bundle from someone you trust")
    args = ap.parse_args(argv)
    if args.top_k < 1:
        ap.error("--top-k must be at least 1")
    try:
        model = Model(allow_code=args.allow_code)
    except ManifestError as exc:  # a damaged or hostile model.json, or a program without --allow-code
        print(f"predict.py: cannot load the model: {display(exc, 500)}", file=sys.stderr)
        return 3
    except Exception as exc:  # a damaged bundle or a missing runtime: one line, exit 3
        print(f"predict.py: cannot load the model: {type(exc).__name__}: {display(exc, 500)}", file=sys.stderr)
        return 3
    need = 0.98 if model.info.get("format") == "onnx-int8" else 1.0
    warning = parity_warning(HERE, file_sha256(model.info["paths"]["model"]), need)
    if warning:
        print(f"predict.py: warning: {warning}", file=sys.stderr)
    failed, n = 0, -1
    out = sys.stdout
    parts = []  # JSON: written whole at the end, so a failure never leaves half a list
    files = expand(args.images, args.recursive)  # a folder: its images, as `cnndesk classify` reads them
    if not files:
        hint = "" if args.recursive else " (use --recursive to look in subfolders)"
        print(f"predict.py: no images found in {', '.join(map(repr, args.images))}{hint}", file=sys.stderr)
        return 1
    rows = classify(model, files, args.top_k)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except Exception as exc:  # the runtime failed on a batch: say so, exit 3
            print(f"predict.py: the model failed: {type(exc).__name__}: {display(exc, 500)}", file=sys.stderr)
            return 3
        n += 1
        failed += row["error"] is not None
        if args.format == "json":
            parts.append(("," if n else "") + "\n  " + json.dumps(row, ensure_ascii=False))
        elif row["error"]:  # names, labels and messages through the app's escaper
            out.write(f"{display(row['path'], 1000)}\n    error: {display(row['error'], 1000)}\n")
        else:
            lines = [display(row["path"], 1000)] + [f"    {p['score'] * 100:6.2f}%  {display(p['label'])}"
                                                     for p in row["predictions"]]
            if row.get("unknown"):
                lines.insert(1, f"    not one of my classes (novelty {row['novelty']:.2f}); closest:")
            out.write("\n".join(lines) + "\n")
    if args.format == "json":
        out.write("[" + "".join(parts) + ("\n]\n" if n >= 0 else "]\n"))
    out.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
