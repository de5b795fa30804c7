"""Property-based tests (hypothesis): whatever bytes or metadata come in, the image loader and the
model-file reader either succeed or raise their one typed error with a one-line message; result
files round-trip whatever the labels and names."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from cnndesk.core.common.errors import ImageLoadError, ModelError
from cnndesk.core.images.load import load_image
from cnndesk.core.models.schema import SchemaError, check_json_depth, parse_metadata
from cnndesk.core.predict import results as results_io
from tests.hostile.make_corpus import HEAD_BASE

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _encoded(fmt: str, mode: str, size: tuple[int, int], seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    bands = len(Image.new(mode, (1, 1)).getbands())
    arr = rng.integers(0, 255, (size[1], size[0], bands), dtype=np.uint8)
    im = Image.fromarray(arr[..., 0] if bands == 1 else arr[..., :bands], None)
    im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


FORMATS = st.sampled_from([("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "L"), ("PNG", "P"), ("JPEG", "RGB"),
                           ("JPEG", "L"), ("GIF", "P"), ("BMP", "RGB"), ("WEBP", "RGB"), ("TIFF", "RGB"),
                           ("TIFF", "I;16")])


def _check(data: bytes, **kw) -> None:
    try:
        img = load_image(data, **kw)
    except ImageLoadError as exc:
        assert "\n" not in str(exc) and str(exc).strip()
        return
    assert img.mode == "RGB" and img.width >= 1 and img.height >= 1
    assert "original_size" in img.info


@FAST
@given(st.binary(max_size=4096))
def test_loader_arbitrary_bytes(data):
    _check(data)


@FAST
@given(FORMATS, st.tuples(st.integers(1, 48), st.integers(1, 48)), st.integers(0, 2**16),
       st.data())
def test_loader_damaged_real_images(fmt_mode, size, seed, data):
    """Real files of every format, truncated or with bytes flipped anywhere."""
    fmt, mode = fmt_mode
    raw = bytearray(_encoded(fmt, mode, size, seed))
    how = data.draw(st.sampled_from(["intact", "truncate", "flip", "splice"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    elif how == "splice":
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=64))
    _check(bytes(raw), min_side=data.draw(st.sampled_from([None, 8, 256])),
           max_side=data.draw(st.sampled_from([None, 16])))
    if how == "intact":
        img = load_image(bytes(raw))
        assert img.size == size and img.info["original_size"] == size


@settings(max_examples=40, deadline=None)
@given(st.tuples(st.integers(1, 3000), st.integers(1, 3000)), st.integers(8, 300), st.sampled_from(["min", "max"]))
def test_reduced_decoding_keeps_what_the_caller_asked_for(size, side, which):
    im = Image.new("RGBA", size, (1, 2, 3, 4))
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=0)
    out = load_image(buf.getvalue(), **({"min_side": side} if which == "min" else {"max_side": side}))
    assert out.info["original_size"] == size
    if which == "min":  # never below twice the shorter side asked for (or the image itself)
        assert min(out.size) >= min(min(size), 2 * side)
    else:
        assert max(out.size) <= max(side, 1) or max(size) <= side


# -- the model-file reader --------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["arch", "labels", "preprocess", "kind", "base", "name", "format", "metrics", "title"])


def _parse(raw: str) -> dict | None:
    try:
        return parse_metadata(raw)
    except SchemaError as exc:
        assert "\n" not in str(exc) and str(exc)
        return None


@FAST
@given(JSON)
def test_metadata_of_any_shape_is_checked(value):
    info = _parse(json.dumps(value))
    assert info is None  # random JSON is never a valid model


@FAST
@given(st.dictionaries(KEYS, JSON, max_size=4))
def test_metadata_with_hostile_fields_is_checked(over):
    info = _parse(json.dumps({**HEAD_BASE, **over}))
    if info is not None:  # what passes is safe to use
        assert isinstance(info["labels"], list) and all(isinstance(x, str) and x for x in info["labels"])
        p = info["preprocess"]
        assert 8 <= p["resize"] <= 4096 and 8 <= p["crop"] <= 4096
        assert all(math.isfinite(v) for v in p["mean"] + p["std"]) and min(p["std"]) > 0
        assert info["arch"].split(":")[0] in ("timm", "torchvision") and "hf" not in info["arch"].split(":", 1)[1][:3]
        assert info["kind"] in ("head", "full")
        assert all(info.get(k) is None or isinstance(info[k], str) for k in ("name", "title", "base"))
        assert info["kind"] != "head" or isinstance(info["base"], str)


@FAST
@given(st.text(alphabet='[]{}"\\ ,:a1', max_size=300))
def test_depth_guard_never_lets_deep_json_through(text):
    try:
        check_json_depth(text, 8)
    except SchemaError:
        return
    try:
        json.loads(text)
    except ValueError:
        return  # invalid JSON is fine; RecursionError is not


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=3), st.sampled_from(["ok", "bad_head", "no_head"]))
def test_model_files_with_any_metadata_never_crash_the_reader(tmp_path_factory, over, head):
    from safetensors.numpy import save

    from cnndesk.core.models.registry import spec_from_model_file

    folder = tmp_path_factory.mktemp("m")
    tensors = {"head.weight": np.ones((2, 8), np.float32), "head.bias": np.zeros(2, np.float32)}
    if head == "bad_head":
        tensors["head.weight"] = np.ones((3,), np.float32)
    elif head == "no_head":
        tensors = {"x": np.zeros(1, np.float32)}
    p = folder / "m.safetensors"
    p.write_bytes(save(tensors, metadata={"cnndesk-model": json.dumps({**HEAD_BASE, **over})}))
    try:
        spec = spec_from_model_file(p)
    except ModelError as exc:
        assert "\n" not in str(exc)
        return
    assert spec.labels and spec.preprocess.crop >= 8


# -- result files ---------------------------------------------------------------------------------
TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(TEXT, TEXT, st.floats(0, 1)), min_size=1, max_size=5, unique_by=lambda t: t[0]),
       st.sampled_from(["csv", "json"]))
def test_results_round_trip_whatever_the_names(tmp_path, rows, fmt):
    assume(all(r[0].strip() for r in rows))
    data = [{"path": p, "predictions": [{"label": lab, "score": s}], "error": None} for p, lab, s in rows]
    out = tmp_path / f"r.{fmt}"
    results_io.export(data, out, fmt, 1)
    back, _ = results_io.read_rows(out)
    assert [r["path"] for r in back] == [r["path"] for r in data]
    assert [r["predictions"][0]["label"] for r in back] == [lab for _, lab, _ in rows]
    assert all(abs(b["predictions"][0]["score"] - s) < 1e-6 for b, (_, _, s) in zip(back, rows, strict=True))
    if fmt == "csv":
        import csv

        cells = [c for r in csv.reader(io.StringIO(out.read_bytes().decode("utf-8"), newline="")) for c in r]
        assert not any(c.startswith(results_io.FORMULA_START) for c in cells)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_nonfinite_scores_never_reach_a_file(tmp_path, fmt):
    data = [{"path": "a", "predictions": [{"label": "x", "score": v}], "error": None}
            for v in (float("nan"), float("inf"), -float("inf"))]
    out = tmp_path / f"r.{fmt}"
    results_io.export(data, out, fmt, 1)
    text = out.read_text(encoding="utf-8").lower()
    assert "nan" not in text and "inf" not in text
