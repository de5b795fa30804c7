"""The JSON metadata of a cnndesk model file, checked before anything uses it: nesting depth
(before parsing: deep JSON would exhaust Python's recursion), types, ranges and an allow-list of
architecture ids. A file that fails is *unusable* with a one-line reason, never fatal.

Torch-free and Qt-free (see docs/threat-model.md for what a model file may and may not do).
"""

from __future__ import annotations

import json
import math
import re

MAX_DEPTH = 32  # the metadata cnndesk writes is 4 levels deep
MAX_LABELS = 100_000
MAX_LABEL_CHARS = 500
MAX_TEXT = 10_000
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "lanczos")
KINDS = ("head", "full")
# "timm:<name>" or "torchvision:<name>" with a plain model name (an optional ".tag" for timm):
# nothing that timm would resolve on the network ("timm:hf-hub:org/name", "timm:hf_hub:...").
ARCH_RE = re.compile(r"^(timm|torchvision):[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$")


class SchemaError(ValueError):
    """The metadata breaks the schema; ``str()`` is the reason in plain words."""


def check_json_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Raise SchemaError when ``text`` nests arrays/objects deeper than ``limit`` (a linear scan,
    strings skipped): ``json.loads`` would otherwise hit Python's recursion limit."""
    depth = 0
    in_str = escape = False
    for ch in text:
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                raise SchemaError(f"the data is nested more than {limit} levels deep")
        elif ch in "]}":
            depth -= 1


def parse_metadata(raw: object) -> dict:
    """Parse and validate the metadata string of a model file; returns the checked dict."""
    if not isinstance(raw, str):
        raise SchemaError("the metadata is not text")
    if len(raw) > 64 << 20:
        raise SchemaError("the metadata is too large")
    check_json_depth(raw)
    try:
        info = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise SchemaError(f"the metadata is not valid JSON ({exc})") from None
    return validate_metadata(info)


def _text(info: dict, key: str, *, required: bool = False, limit: int = MAX_TEXT) -> None:
    if key not in info or info[key] is None:
        if required:
            raise SchemaError(f"'{key}' is missing")
        return
    v = info[key]
    if not isinstance(v, str):
        raise SchemaError(f"'{key}' must be text, not {_kind(v)}")
    if len(v) > limit:
        raise SchemaError(f"'{key}' is too long ({len(v)} characters)")


def _kind(v: object) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "an object", type(None): "null"}.get(type(v), type(v).__name__)


def _int(v: object, key: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SchemaError(f"'{key}' must be a whole number, not {_kind(v)}")
    if isinstance(v, float) and (not math.isfinite(v) or v != int(v)):
        raise SchemaError(f"'{key}' must be a whole number, not {v}")
    if not lo <= v <= hi:
        raise SchemaError(f"'{key}' must be between {lo} and {hi}, not {v}")
    return int(v)


def _floats(v: object, key: str, lo: float, hi: float) -> list[float]:
    if not isinstance(v, list) or len(v) != 3:
        raise SchemaError(f"'{key}' must be a list of 3 numbers")
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or not lo <= x <= hi:
            raise SchemaError(f"'{key}' must hold 3 finite numbers between {lo} and {hi}")
        out.append(float(x))
    return out


def validate_preprocess(p: object) -> dict:
    if not isinstance(p, dict):
        raise SchemaError(f"'preprocess' must be an object, not {_kind(p)}")
    for key in ("resize", "crop", "mean", "std"):
        if key not in p:
            raise SchemaError(f"'preprocess.{key}' is missing")
    out = {
        "resize": _int(p["resize"], "preprocess.resize", 8, 4096),
        "crop": _int(p["crop"], "preprocess.crop", 8, 4096),
        "mean": _floats(p["mean"], "preprocess.mean", -1000.0, 1000.0),
        "std": _floats(p["std"], "preprocess.std", 1e-6, 1000.0),
        "interpolation": p.get("interpolation", "bilinear"),
    }
    if out["interpolation"] not in INTERPOLATIONS:
        raise SchemaError(f"'preprocess.interpolation' must be one of {', '.join(INTERPOLATIONS)}")
    if out["crop"] > 2 * out["resize"]:
        raise SchemaError("'preprocess.crop' is more than twice 'preprocess.resize'")
    return out


def validate_metadata(info: object) -> dict:
    """Check types and ranges of parsed metadata; returns it with ``preprocess`` normalised."""
    if not isinstance(info, dict):
        raise SchemaError(f"the metadata must be an object, not {_kind(info)}")
    fmt = info.get("format", 1)
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt != 1:
        raise SchemaError(f"unsupported model file format {fmt!r} (this cnndesk reads format 1)")
    arch = info.get("arch")
    if not isinstance(arch, str):
        raise SchemaError(f"'arch' must be text, not {_kind(arch)}")
    if not ARCH_RE.match(arch):
        raise SchemaError(f"unsupported architecture {arch[:80]!r} (only timm:<name> or torchvision:<name>)")
    labels = info.get("labels")
    if not isinstance(labels, list):
        raise SchemaError(f"'labels' must be a list of class names, not {_kind(labels)}")
    if not 1 <= len(labels) <= MAX_LABELS:
        raise SchemaError(f"'labels' must hold 1 to {MAX_LABELS} class names, not {len(labels)}")
    for lab in labels:
        if not isinstance(lab, str):
            raise SchemaError(f"every label must be text, found {_kind(lab)}")
        if not lab or len(lab) > MAX_LABEL_CHARS:
            raise SchemaError("a label is empty or longer than 500 characters")
    kind = info.get("kind", "full")
    if kind not in KINDS:
        raise SchemaError(f"'kind' must be 'head' or 'full', not {str(kind)[:40]!r}")
    for key in ("name", "title", "description", "created", "cnndesk_version"):
        _text(info, key, limit=200 if key == "name" else MAX_TEXT)
    _text(info, "base", required=kind == "head", limit=200)
    for key in ("metrics", "training", "dataset"):
        if key in info and info[key] is not None and not isinstance(info[key], dict):
            raise SchemaError(f"'{key}' must be an object, not {_kind(info[key])}")
    head = info.get("head")
    if head is not None and (not isinstance(head, dict) or head.get("features", "last") not in ("last", "multi")):
        raise SchemaError("'head' must be an object whose 'features' is 'last' or 'multi'")
    if "evaluation" in info and info["evaluation"] is not None and not isinstance(info["evaluation"], dict):
        raise SchemaError(f"'evaluation' must be an object, not {_kind(info['evaluation'])}")
    metrics = info.get("metrics") or {}
    for key, v in metrics.items():
        if key.endswith(("accuracy", "loss")) and v is not None and (
            isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
        ):
            raise SchemaError(f"'metrics.{key}' must be a finite number")
    out = dict(info)
    out["kind"] = kind
    out["preprocess"] = validate_preprocess(info.get("preprocess"))
    return out
