"""Every colour mode goes through the decode budget and is reduced before conversion: a 174 KB
palette PNG with transparency of 13,376² px (and 1-bit and 16-bit ones) no longer costs gigabytes
in classify's loader, explain's loader or a bundle's predict.py, and explain's overlay stays capped.
Peak memory is measured in a fresh subprocess (``ru_maxrss``)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnndesk.core.images import load as images
from tests.core.tiny_bundle import make_bundle

REPO = Path(__file__).resolve().parents[3]
SIDE = 13_376


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png(path: Path, side: int = SIDE, mode: str = "P") -> Path:
    """A tiny file that decodes to ``side``² pixels, written row by row (never in memory):
    "P" palette with a transparent index, "1" 1-bit, "I;16" 16-bit grey."""
    depth, colour, row_bytes = {"P": (8, 3, side), "1": (1, 0, -(-side // 8)), "I;16": (16, 0, 2 * side)}[mode]
    comp = zlib.compressobj(9)
    idat = bytearray()
    row = b"\x00" + bytes(row_bytes)
    stripe = b"\x00" + (bytes([1]) * row_bytes if mode == "P" else b"\xff" * row_bytes)
    for y in range(side):
        idat += comp.compress(stripe if (y // 512) % 2 else row)
    idat += comp.flush()
    parts = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, depth, colour, 0, 0, 0))]
    if mode == "P":
        parts += [_chunk(b"PLTE", bytes([255, 0, 0, 0, 0, 255])), _chunk(b"tRNS", b"\x00")]  # index 0 clear
    parts += [_chunk(b"IDAT", bytes(idat)), _chunk(b"IEND", b"")]
    path.write_bytes(b"".join(parts))
    return path


@pytest.fixture(scope="module")
def palette_png(tmp_path_factory):
    return huge_png(tmp_path_factory.mktemp("huge") / "palette.png")


def _peak_mb(code: str, *args, env=None) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter; returns (peak RSS in MB, its stdout)."""
    probe = code + "\nimport resource, sys\nprint('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    out = subprocess.run([sys.executable, "-c", probe, *map(str, args)], capture_output=True, text=True, timeout=300,
                         env=env or {**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode in (0, 1), out.stderr
    peak = [line for line in out.stderr.splitlines() if line.startswith("PEAK ")][-1]
    return int(peak.split()[1]) / 1024, out.stdout


BASELINE = "import numpy, PIL.Image, PIL.PngImagePlugin\nfrom cnndesk.core.images import load as images\n"


def test_the_palette_png_is_small_and_huge(palette_png):
    assert palette_png.stat().st_size < 400_000
    with images.open_image(palette_png) as im:
        assert im.size == (SIDE, SIDE) and im.mode == "P" and "transparency" in im.info


def test_classify_and_explain_loaders_reduce_a_huge_palette_png(palette_png):
    base, _ = _peak_mb(BASELINE)
    for kw, most in (("min_side=256", 1024), ("max_side=2048", 2048)):
        code = BASELINE + f"im = images.load_image(r'{palette_png}', {kw})\nprint(im.size, im.mode)"
        peak, out = _peak_mb(code)
        side = int(out.split("(")[1].split(",")[0])
        assert side <= most and "RGB" in out, out
        # the palette indices (1 byte a pixel, 179 MB) plus strips; it took 2.41 GB before
        assert peak - base < 420, (kw, peak, base)


def test_reduced_palette_image_has_the_right_colours(tmp_path):
    p = huge_png(tmp_path / "small.png", 2048)
    im = images.load_image(p, max_side=256)
    assert im.size == (256, 256) and im.mode == "RGB"
    arr = np.asarray(im)
    assert (arr[0, 0] == [255, 255, 255]).all()  # transparent index 0 composited on white
    assert (arr[100, 0] == [0, 0, 255]).all()  # index 1 (blue) in the second stripe of rows
    full = images.load_image(p)  # no reduction: the same colours
    assert (np.asarray(full)[::8, ::8][:, :, 2] == arr[:, :, 2]).mean() > 0.99


@pytest.mark.parametrize("mode", ["1", "I;16"])
def test_one_bit_and_sixteen_bit_images_are_reduced_too(tmp_path, mode):
    p = huge_png(tmp_path / f"m{mode.replace(';', '')}.png", 6000, mode)
    with images.open_image(p) as im:
        assert im.mode == mode or im.mode.startswith("I")
    out = images.load_image(p, max_side=1000)
    assert max(out.size) <= 1000 and out.info["draft_scale"] == 6
    assert 0 < np.asarray(out).mean() < 255  # the stripes survive


def test_every_mode_is_budgeted():
    big = Image.new("P", (10_000, 10_000))
    big.info["transparency"] = 0
    full = images.decode_cost(big)
    assert full >= 10_000 * 10_000 * 13  # indices + RGBA + white background + RGB
    assert images.decode_cost(big, reduce=8) < 10_000 * 10_000 * 2


def test_predict_py_reduces_a_huge_palette_png(palette_png, tmp_path):
    bundle = make_bundle(tmp_path / "bundle")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    base, _ = _peak_mb(f"import sys; sys.argv[1:] = ['{palette_png}']; sys.path.insert(0, r'{bundle}')\n"
                       "import predict", env=env)
    code = (f"import sys; sys.argv[1:] = ['{palette_png}']; sys.path.insert(0, r'{bundle}')\n"
            "import predict\nrc = predict.main()")
    peak, out = _peak_mb(code, env=env)
    rows = json.loads(out)
    assert rows[0]["error"] is None and rows[0]["predictions"], rows
    assert peak - base < 450, (peak, base)  # 2.38 GB before


def test_explain_overlay_stays_capped_for_a_huge_palette_png(palette_png, tmp_path, classifier):
    out = subprocess.run([sys.executable, "-m", "cnndesk", "explain", str(palette_png), "--method", "occlusion",
                          "--out", str(tmp_path / "o.png")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    with Image.open(tmp_path / "o.png") as im:
        assert max(im.size) <= 2048


def test_the_overlay_is_capped_whatever_it_is_given():
    from cnndesk.core.predict import explain

    image = Image.new("RGB", (6000, 300), "white")
    heat = np.zeros((300, 6000), np.float32)
    out = explain.overlay(image, heat)
    assert out.size == (explain.MAX_OVERLAY_SIDE, 102)
