"""Images are opened only as the formats cnndesk allows: a PostScript file named ``.jpg`` (which
Pillow would render by running Ghostscript) is reported unreadable, at once, by the loader, the
dataset check, ``cnndesk classify`` and a bundle's ``predict.py``; no external program runs, the
JSON on stdout stays valid, nothing is left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, UnidentifiedImageError

from cnndesk.core.common.errors import ImageLoadError
from cnndesk.core.images import load as images
from tests.core.tiny_bundle import make_bundle

# prints to stdout (a forged JSON row and an escape sequence) and loops for ever when rendered
PAYLOAD = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 64 64
%%EndComments
([{"path": "forged", "predictions": [], "error": null}]\\033[2J) print flush
{ } loop
showpage
%%EOF
"""


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """x.jpg holding PostScript, and a fake ``gs`` first on PATH that leaves a mark, prints a forged
    JSON row and hangs: any run of an external renderer shows."""
    jpg = tmp_path / "in" / "x.jpg"
    jpg.parent.mkdir()
    jpg.write_bytes(PAYLOAD)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    mark = tmp_path / "gs-ran"
    gs = bin_ / "gs"
    gs.write_text(f'#!/bin/sh\ntouch "{mark}"\necho \'[{{"path": "forged"}}]\'\nsleep 60\n')
    gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    return jpg, mark


def _no_temp_files(*folders: Path) -> None:
    for folder in folders:
        left = [p.name for p in folder.rglob("*") if "tmp" in p.name.lower() or p.name.endswith(".part")]
        assert not left, left


def test_the_loader_refuses_postscript_named_jpg(hostile):
    jpg, mark = hostile
    t0 = time.perf_counter()
    with pytest.raises(ImageLoadError, match="PostScript"):
        images.load_image(jpg)
    with pytest.raises(UnidentifiedImageError):
        images.open_image(jpg)
    with pytest.raises(ImageLoadError):
        images.load_image(jpg.read_bytes())
    assert time.perf_counter() - t0 < 5 and not mark.exists()
    # even if something opened it as EPS, Ghostscript is switched off in this process
    with Image.open(jpg) as im, pytest.raises(OSError, match="Ghostscript"):
        im.load()
    assert not mark.exists()


def test_every_allowed_format_still_opens(tmp_path):
    im = Image.new("RGB", (40, 30), (10, 200, 30))
    for ext, fmt in (("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"), ("bmp", "BMP"), ("gif", "GIF"),
                     ("tif", "TIFF"), ("ppm", "PPM"), ("tga", "TGA")):
        p = tmp_path / f"a.{ext}"
        im.save(p, fmt)
        assert images.load_image(p).size == (40, 30), ext
        assert images.image_size(p) == (40, 30)
    mpo = tmp_path / "camera.jpg"  # phones write multi-picture JPEGs: opened by the JPEG plug-in
    im.save(mpo, "MPO", save_all=True, append_images=[Image.new("RGB", (40, 30), "blue")])
    with images.open_image(mpo) as opened:
        assert opened.format == "MPO"
    assert images.load_image(mpo).size == (40, 30)
    assert set(images.ALLOWED_FORMATS).isdisjoint({"EPS", "PDF", "WMF", "MPEG", "FITS", "GRIB", "HDF5", "BUFR"})


def test_the_dataset_check_reports_it_unreadable(hostile, tmp_path):
    from cnndesk.core.training import datasets

    jpg, mark = hostile
    reason = datasets.quick_check(jpg)
    assert reason and "x.jpg" in reason and not mark.exists()


def test_doctor_reports_it_unreadable(hostile, tmp_path):
    from cnndesk.core.doctor import check as doctor

    jpg, mark = hostile
    root = tmp_path / "d"
    for c, colour in (("a", "red"), ("b", "blue")):
        (root / c).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (64, 64), colour).save(root / c / f"{c}{i}.png")
    os.replace(jpg, root / "a" / "x.jpg")
    t0 = time.perf_counter()
    rep = doctor.check_dataset(root)
    unreadable = {os.path.basename(i.path): i.reason for i in rep.issues if i.kind == "unreadable"}
    assert "x.jpg" in unreadable, rep.issues
    assert time.perf_counter() - t0 < 240 and not mark.exists()
    _no_temp_files(root)


def test_classify_cli_stdout_stays_valid_json(hostile, classifier, samples):
    jpg, mark = hostile
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "cnndesk", "classify", str(jpg), str(samples["cat"]), "-f", "json"],
                         capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert out.returncode == 1, out.stderr
    rows = json.loads(out.stdout)  # no forged row, no escape sequence
    assert [Path(r["path"]).name for r in rows] == ["x.jpg", samples["cat"].name]
    assert "PostScript" in rows[0]["error"] and rows[1]["error"] is None
    assert "\x1b" not in out.stdout and "forged" not in out.stdout
    assert time.perf_counter() - t0 < 110 and not mark.exists()
    _no_temp_files(jpg.parent)


def test_predict_py_reports_it_unreadable(hostile, tmp_path):
    jpg, mark = hostile
    bundle = make_bundle(tmp_path / "bundle")
    good = tmp_path / "in" / "red.png"
    Image.new("RGB", (300, 260), (250, 10, 10)).save(good)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only the bundle's own copy
    out = subprocess.run([sys.executable, str(bundle / "predict.py"), str(jpg), str(good)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 1, out.stderr
    rows = json.loads(out.stdout)
    assert "PostScript" in rows[0]["error"] and rows[1]["predictions"][0]["label"] == "red"
    assert not mark.exists() and "forged" not in out.stdout
    _no_temp_files(jpg.parent, bundle)
