"""The one image loader: modes, orientation, frames, formats, draft decoding and every bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cnndesk.core.common.errors import ImageLoadError
from cnndesk.core.images import load as images
from cnndesk.core.images.load import load_image


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


# -- modes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode,value",
    [("1", 1), ("L", 128), ("RGB", (10, 20, 30)), ("CMYK", (0, 0, 0, 0)), ("I", 40000), ("I;16", 65535), ("F", 0.5)],
)
def test_every_mode_becomes_rgb(tmp_path, mode, value):
    img = Image.new(mode, (32, 24), value)
    fmt = {"CMYK": "jpeg", "I;16": "png", "I": "tiff", "F": "tiff", "1": "png"}.get(mode, "png")
    path = _save(img, tmp_path / f"m.{fmt}")
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (32, 24)
    px = out.getpixel((5, 5))
    if mode == "I;16":
        assert px == (255, 255, 255)  # full scale of 16 bits -> white
    if mode == "F":
        assert px == (128, 128, 128)  # 0.5 of [0, 1]
    if mode == "CMYK":
        assert min(px) > 240  # no ink is white


def test_16bit_gradient_keeps_its_range(tmp_path):
    arr = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (8, 1))
    path = _save(Image.fromarray(arr), tmp_path / "g16.png")
    out = np.asarray(load_image(path))
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255 and 120 < out[0, 32, 0] < 135


def test_float_image_outside_unit_range_is_scaled(tmp_path):
    arr = np.linspace(-5, 500, 100, dtype=np.float32).reshape(10, 10)
    out = np.asarray(load_image(_save(Image.fromarray(arr, "F"), tmp_path / "f.tiff")))
    assert out.min() == 0 and out.max() == 255


def test_transparency_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    out = load_image(_save(rgba, tmp_path / "a.png"))
    assert out.getpixel((5, 5)) == (255, 255, 255)
    assert out.getpixel((0, 0)) == (255, 0, 0)
    la = Image.new("LA", (10, 10), (0, 0))
    assert load_image(_save(la, tmp_path / "la.png")).getpixel((3, 3)) == (255, 255, 255)


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    p = Image.new("P", (10, 10), 1)
    p.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    p.info["transparency"] = 1
    path = tmp_path / "p.png"
    p.save(path, transparency=1)
    assert load_image(path).getpixel((2, 2)) == (255, 255, 255)
    p2 = Image.new("P", (10, 10), 1)
    p2.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    assert load_image(_save(p2, tmp_path / "p2.gif")).getpixel((2, 2)) == (0, 255, 0)


# -- orientation, frames, formats ------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=95)
    out = load_image(path)
    assert out.size == (20, 40)
    r, g, b = out.getpixel((10, 5))  # the top is now the red half
    assert r > 200 and b < 60
    assert out.info["original_size"] == (20, 40)


def test_animated_gif_and_multipage_tiff_give_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert load_image(gif).getpixel((8, 8)) == (255, 0, 0)
    tif = tmp_path / "pages.tiff"
    frames[0].save(tif, save_all=True, append_images=frames[1:])
    assert load_image(tif).getpixel((8, 8)) == (255, 0, 0)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "bmp", "gif", "tiff"])
def test_common_formats_load(tmp_path, fmt):
    img = Image.new("RGB", (33, 17), (200, 100, 50))
    out = load_image(_save(img, tmp_path / f"x.{fmt}"))
    assert out.size == (33, 17) and out.mode == "RGB"


def test_unicode_name_bytes_and_file_objects(tmp_path, samples):
    path = tmp_path / "фото café 猫.jpg"
    path.write_bytes(samples["cat"].read_bytes())
    assert load_image(path).size == (451, 300)
    assert load_image(samples["cat"].read_bytes()).size == (451, 300)
    assert load_image(io.BytesIO(samples["cat"].read_bytes())).size == (451, 300)


def test_png_with_a_jpg_extension_still_loads(tmp_path):
    path = _save(Image.new("RGB", (8, 8), (1, 2, 3)), tmp_path / "really_png.jpg", format="png")
    assert load_image(path).getpixel((0, 0)) == (1, 2, 3)


# -- draft decoding ----------------------------------------------------------------------------


def test_big_jpeg_decodes_at_reduced_scale_but_keeps_twice_the_needed_size(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (3000, 4000, 3), dtype=np.uint8)
    path = _save(Image.fromarray(arr), tmp_path / "big.jpg", quality=80)
    full = load_image(path)
    assert full.size == (4000, 3000) and full.info["draft_scale"] == 1
    small = load_image(path, min_side=256)
    assert small.info["original_size"] == (4000, 3000)
    assert small.info["draft_scale"] == 4  # 1/8 would leave 375 px < 2 x 256
    assert min(small.size) >= 2 * 256
    assert load_image(path, min_side=2000).size == (4000, 3000)  # never below what is needed


# -- bad inputs: one typed error naming the file and the reason --------------------------------


def _bad_corpus(tmp_path, samples):
    jpeg = samples["coffee"].read_bytes()
    png = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 9, 9)).save(png, "png")
    corpus = {
        "empty.jpg": (b"", "empty"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "truncated.png": (png.getvalue()[:-40], "truncated"),
        "corrupt.jpg": (jpeg[:200] + bytes(range(256)) * 40, "damaged"),
        "notes.jpg": (b"shopping list: milk, eggs\n" * 10, "text file"),
        "report.png": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n" + b"x" * 100, "PDF"),
        "data.bin": (bytes(np.random.default_rng(1).integers(0, 255, 500, dtype=np.uint8)), "not an image"),
        "archive.jpg": (b"PK\x03\x04" + b"\0" * 60, "ZIP"),
    }
    paths = {}
    for name, (data, reason) in corpus.items():
        p = tmp_path / name
        p.write_bytes(data)
        paths[p] = reason
    folder = tmp_path / "a_folder.jpg"
    folder.mkdir()
    paths[folder] = "folder"
    paths[tmp_path / "missing.jpg"] = "does not exist"
    return paths


def test_bad_inputs_raise_one_typed_error_naming_file_and_reason(tmp_path, samples):
    for path, reason in _bad_corpus(tmp_path, samples).items():
        with pytest.raises(ImageLoadError) as info:
            load_image(path, min_side=256)
        msg = str(info.value)
        assert msg.startswith(path.name + ": "), msg
        assert reason.lower() in msg.lower(), msg
        assert "Traceback" not in msg and "PIL" not in msg


def test_empty_bytes_and_garbage_bytes(tmp_path):
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageLoadError, match="pasted image"):
        load_image(b"\x00\x01garbage")


def test_decompression_bomb_limit_is_kept_and_reported(tmp_path, monkeypatch):
    path = _save(Image.new("L", (300, 300)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # limit 40,000 px; image has 90,000
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert "bomb.png" in str(info.value) and "decompression bomb" in str(info.value)
    # between the warning level and the hard limit the image loads (100-MP cameras exist)
    ok = _save(Image.new("L", (180, 180)), tmp_path / "big_ok.png")  # 32,400 px
    assert load_image(ok).size == (180, 180)
    assert images.pixel_limit() == 40_000
