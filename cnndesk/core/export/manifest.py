"""A bundle's model.json and parity.json, checked before predict.py uses them — the same
discipline as a model file's metadata (:mod:`cnndesk.core.models.schema`): size and nesting depth
before parsing, strict JSON (no NaN/Infinity), types and ranges, then the files it names.

* labels: a non-empty list of text (a string is refused, never split into characters);
* preprocess: whole numbers 8-4096 (a crop of 30,000 px was 21.9 GB), finite mean/std;
* temperature: a finite number > 0 (NaN gave ``"score": NaN``); unknown: null or a finite threshold;
* files: plain file names inside the bundle folder (no ``/``, ``..``, absolute paths or links out),
  regular files, and — when model.json lists their SHA-256 — the very files that were exported;
* runtime: one predict.py knows. A ``torch`` bundle (.pt2, TorchScript) is a program: loading it
  can run code, so predict.py refuses it unless it is run with ``--allow-code``.

Vendored into every bundle (``_vendor/cnndesk/core/bundle_manifest.py``): standard library only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re

from cnndesk.core.models.schema import (
    MAX_LABEL_CHARS,
    MAX_LABELS,
    SchemaError,
    check_json_depth,
    validate_preprocess,
)

MAX_MANIFEST_BYTES = 64 << 20  # 100,000 labels of 500 characters
MAX_PARITY_BYTES = 1 << 20
RUNTIMES = ("onnxruntime", "openvino", "torch", "ai_edge_litert", "coremltools")
CODE_RUNTIMES = ("torch",)  # their model files are programs (pickle / TorchScript code)
FILE_KEYS = ("model", "head", "novelty")
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")


class ManifestError(ValueError):
    """model.json cannot be used; ``str()`` says why in plain words."""


def _strict_json(text: str, what: str, limit: int = 32):
    check_json_depth(text, limit)

    def no_constant(name):
        raise ManifestError(f"{what} holds {name}, which is not a number")

    return json.loads(text, parse_constant=no_constant)


def _read(path: str, limit: int, what: str) -> str:
    if not os.path.isfile(path):
        raise ManifestError(f"{what} is missing or not a regular file")
    with open(path, "rb") as fh:
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise ManifestError(f"{what} is larger than {limit >> 20} MB")
    return raw.decode("utf-8")


def _finite(v, key: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise ManifestError(f"'{key}' must be a finite number between {lo:g} and {hi:g}, not {str(v)[:40]}")
    return float(v)


def bundle_file(folder: str, name: object, key: str) -> str:
    """The path of a file model.json names: a plain name of a regular file inside ``folder``."""
    if not isinstance(name, str) or not PLAIN_NAME.match(name) or ".." in name:
        raise ManifestError(f"'files.{key}' must be a plain file name in the bundle folder, not {str(name)[:80]!r}")
    path = os.path.join(folder, name)
    real, root = os.path.realpath(path), os.path.realpath(folder)
    if not real.startswith(root.rstrip(os.sep) + os.sep):
        raise ManifestError(f"'files.{key}' ({name}) is a link that leads out of the bundle folder")
    if not (os.path.isfile(path) or (os.path.isdir(path) and name.endswith(".mlpackage"))):
        raise ManifestError(f"'files.{key}' ({name}) is missing from the bundle folder")
    return path


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    if os.path.isdir(path):  # a Core ML package: its files, in order
        for base, dirs, names in sorted(os.walk(path)):
            dirs.sort()
            for n in sorted(names):
                h.update(os.path.relpath(os.path.join(base, n), path).encode("utf-8", "surrogateescape"))
                h.update(bytes.fromhex(file_sha256(os.path.join(base, n))))
        return h.hexdigest()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_manifest(folder: str, allow_code: bool = False) -> dict:
    """model.json of the bundle in ``folder``, checked; ``files`` maps keys to checked paths."""
    try:
        info = _strict_json(_read(os.path.join(folder, "model.json"), MAX_MANIFEST_BYTES, "model.json"), "model.json")
    except (SchemaError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ManifestError(f"model.json is not valid ({exc})") from None
    if not isinstance(info, dict):
        raise ManifestError("model.json must hold an object")
    labels = info.get("labels")
    if not isinstance(labels, list) or not 1 <= len(labels) <= MAX_LABELS:
        raise ManifestError(f"'labels' must be a list of 1 to {MAX_LABELS} class names")
    if not all(isinstance(x, str) and 0 < len(x) <= MAX_LABEL_CHARS for x in labels):
        raise ManifestError(f"every label must be text of 1 to {MAX_LABEL_CHARS} characters")
    try:
        pre = validate_preprocess(info.get("preprocess"))
    except SchemaError as exc:
        raise ManifestError(str(exc)) from None
    temperature = _finite(1.0 if info.get("temperature") is None else info["temperature"], "temperature", 1e-3, 1e3)
    unknown = info.get("unknown")
    if unknown is not None:
        if not isinstance(unknown, dict):
            raise ManifestError("'unknown' must be null or an object")
        _finite(unknown.get("threshold"), "unknown.threshold", -1e30, 1e30)
    runtime = info.get("runtime")
    if runtime not in RUNTIMES:
        raise ManifestError(f"unknown runtime {str(runtime)[:40]!r} (one of {', '.join(RUNTIMES)})")
    if runtime in CODE_RUNTIMES and not allow_code:
        raise ManifestError("this bundle's model is a PyTorch program (.pt2 / TorchScript): loading it can run "
                            "code from the file. Run predict.py with --allow-code only if you trust who made it")
    files = info.get("files")
    if not isinstance(files, dict) or "model" not in files or set(files) - set(FILE_KEYS):
        raise ManifestError(f"'files' must name 'model' (and optionally {', '.join(FILE_KEYS[1:])})")
    if unknown is not None and "novelty" not in files:
        raise ManifestError("'unknown' needs files.novelty")
    paths = {k: bundle_file(folder, v, k) for k, v in files.items() if v is not None}
    digests = info.get("sha256") or {}
    if not isinstance(digests, dict):
        raise ManifestError("'sha256' must be an object")
    for k, want in digests.items():
        if k in paths and file_sha256(paths[k]) != want:
            raise ManifestError(f"{files[k]} is not the file this bundle was exported with (its SHA-256 differs)")
    return {**info, "labels": labels, "preprocess": pre, "temperature": temperature, "paths": paths}


def parity_warning(folder: str, model_sha256: str | None = None, need: float = 1.0) -> str | None:
    """A line for stderr when parity.json says the bundle differed from the app, was checked with
    another model file, or cannot be read; None when it agrees or was not checked here."""
    path = os.path.join(folder, "parity.json")
    if not os.path.exists(path):
        return "parity.json is missing: nothing says this bundle gives the app's answers"
    try:
        p = _strict_json(_read(path, MAX_PARITY_BYTES, "parity.json"), "parity.json", 8)
        if not isinstance(p, dict):
            raise ValueError("not an object")
    except (ManifestError, SchemaError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        return f"parity.json cannot be read ({str(exc)[:120]}); nothing says this bundle gives the app's answers"
    if model_sha256 and p.get("model_sha256") not in (None, model_sha256):
        return "parity.json was made with another model file than this bundle's"
    if p.get("checked") is True:
        agree = [p.get("label_agreement"), p.get("unknown_agreement", 1.0)]
        if not all(isinstance(a, (int, float)) and not isinstance(a, bool) and a >= need for a in agree):
            return "parity.json says this bundle's answers DIFFER from the app's"
    return None
