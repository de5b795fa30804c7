"""The one image loader used everywhere (GUI, CLI, folder pipeline, training).

``load_image`` turns anything a user may drop on the app into an RGB ``PIL.Image``:

* EXIF orientation applied, so phone photos are upright;
* every Pillow mode becomes RGB (transparency composited on white, 16-bit and float scaled);
* animated GIF / multipage TIFF / APNG / WebP give their first frame;
* Pillow's decompression-bomb limit is kept and reported in plain words;
* big JPEGs are decoded at a reduced scale (``draft``) when the caller says how many pixels it
  needs, but never below twice the size it asked for, so answers do not change;
* every failure raises :class:`ImageLoadError` naming the file and the reason;
* only the formats in :data:`ALLOWED_FORMATS` are ever tried (:func:`open_image`, the one place
  that calls ``Image.open``): never EPS/PostScript/PDF, which Pillow renders by running the
  system's Ghostscript, nor any other plug-in that hands the file to an external program.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import struct
import threading
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from cnndesk.core.common.errors import ImageLoadError

# Pillow's decompression-bomb guard is kept as it is: above Image.MAX_IMAGE_PIXELS (about 89
# megapixels) it only warns (100-megapixel cameras exist; we silence that warning), above twice
# that it refuses, and we report the refusal in plain words.


def pixel_limit() -> int:
    """The most pixels an image may have before it is refused as a possible decompression bomb."""
    return 2 * int(Image.MAX_IMAGE_PIXELS or 89_478_485)

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".dib", ".gif", ".tif",
        ".tiff", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".jp2", ".j2k", ".avif",
        ".heic", ".heif",
    }
)  # fmt: skip

# The only formats any image is opened as, whatever its name says. Each is decoded in-process by
# Pillow's own code or a linked library; EPS (Ghostscript), PDF, WMF/EMF (the OS renderer) and the
# rarely used scientific/legacy plug-ins are left out. An MPO (multi-picture JPEG from cameras) is
# opened by the JPEG plug-in. HEIF is there for an installed pillow-heif.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "DIB", "GIF", "TIFF", "PPM", "TGA", "ICO", "JPEG2000",
                   "AVIF", "HEIF")


def open_image(fp) -> Image.Image:
    """``Image.open`` restricted to :data:`ALLOWED_FORMATS` (lazy: reads the header only). The one
    call of ``Image.open`` in cnndesk; raises UnidentifiedImageError for anything else."""
    from PIL import EpsImagePlugin

    EpsImagePlugin.gs_binary = False  # belt and braces: never run Ghostscript, whoever opens what
    Image.init()
    formats = [f for f in ALLOWED_FORMATS if f in Image.OPEN]
    ignore_bomb_warnings()
    return Image.open(fp, formats=formats)  # the one call of Image.open


def ignore_bomb_warnings() -> None:
    """Pillow's DecompressionBombWarning (above MAX_IMAGE_PIXELS) says what :func:`pixel_limit`
    already decides, so it is ignored for good, in every thread. A ``catch_warnings()`` block
    per call was not thread-safe: it swaps the process-wide filter list, so two decode threads
    (or a decode and an export) restoring in the wrong order dropped the filter or left another
    block's "ignore everything" in place. Installed again where something reset the filters."""
    for action, _msg, category, _mod, _line in warnings.filters:
        if category is Image.DecompressionBombWarning and action == "ignore":
            return
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """Width and height from the header only (allowed formats only); raises like ``Image.open``."""
    with open_image(path) as im:
        return im.size


# Draft decoding keeps at least this multiple of the size the caller asked for: measured on the
# benchmark photos, 2x keeps top-1 identical to full decoding on >= 99 % of images (1x did not).
DRAFT_SAFETY = 2.0


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether a path *looks* like an image by its extension (used to pick files in folders)."""
    name = os.fspath(path)
    base = os.path.basename(name)
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


def load_image(
    source: str | os.PathLike | bytes | io.IOBase | Image.Image,
    *,
    min_side: int | None = None,
    name: str | None = None,
    max_side: int | None = None,
) -> Image.Image:
    """Load ``source`` (a path, bytes, a binary file object or a PIL image) as an RGB image.

    ``min_side``: the shortest side the caller needs (e.g. 256 for a "resize 256, crop 224"
    model). Big JPEGs are then decoded at a reduced scale whose shorter side stays at least
    ``DRAFT_SAFETY * min_side``. ``None`` decodes at full size.

    ``max_side``: the longest side the caller wants at most (e.g. 2048 for a heatmap overlay);
    the image is decoded reduced (JPEG) or shrunk right after decoding, before any conversion.

    Decoding memory is bounded: each decode reserves its estimated size from a process-wide
    budget (:data:`DECODE_BUDGET`), so many big images decoded in parallel wait for each other
    instead of adding up; other formats than JPEG are shrunk before their mode conversion.

    The returned image carries ``info["original_size"]`` (width, height after EXIF rotation, at
    full resolution) and ``info["draft_scale"]`` (1 at full size, else the reduction factor).

    Raises ImageLoadError (never anything else) with a message naming the file and the reason.
    """
    label = name
    if isinstance(source, Image.Image):
        orientation = _orientation(source)
        size = source.size[::-1] if orientation in (5, 6, 7, 8) else source.size
        return _finish(source, size, label or "image", 1, orientation, copy=True)
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = label or "pasted image"
        if len(source) == 0:
            raise ImageLoadError(label, "the data is empty (0 bytes)")
        fp: object = io.BytesIO(bytes(source))
    elif isinstance(source, io.IOBase):
        label = label or getattr(source, "name", None) or "image"
        fp = source
    else:
        path = Path(source)
        label = label or _text(path)
        _check_file(path, label)
        fp = path
    im = out = None
    try:
        im = open_image(fp)
        out = _decode(im, label, min_side, max_side)
        if out is im and getattr(im, "fp", None) is not None:
            out = im.copy()  # multi-frame files keep their file open: detach from it
        return out
    except ImageLoadError:
        raise
    except Image.DecompressionBombError:
        raise ImageLoadError(label, bomb_reason(None)) from None
    except UnidentifiedImageError:
        raise ImageLoadError(label, _unidentified_reason(label, fp)) from None
    except FileNotFoundError:
        raise ImageLoadError(label, "the file does not exist (was it moved or deleted?)") from None
    except PermissionError:
        raise ImageLoadError(label, "permission denied: cnndesk may not read this file") from None
    except MemoryError:
        raise ImageLoadError(label, "the image is too large to fit in memory") from None
    except OSError as exc:
        raise ImageLoadError(label, _oserror_reason(exc)) from None
    except (SyntaxError, ValueError, TypeError, IndexError, struct.error, EOFError) as exc:
        raise ImageLoadError(label, f"the file is damaged and cannot be decoded ({exc})") from None
    finally:
        # Single-frame files were closed by Pillow after loading; the returned image (often the
        # opened one itself: no copy of a multi-megapixel buffer) must stay usable.
        if im is not None and out is not im:
            im.close()


def _check_file(path: Path, label: str) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageLoadError(label, "the file does not exist (was it moved or deleted?)") from None
    except PermissionError:
        raise ImageLoadError(label, "permission denied: cnndesk may not read this file") from None
    except OSError as exc:
        raise ImageLoadError(label, f"the file cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageLoadError(label, "this is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block for ever, /dev/zero never ends
        from cnndesk.core.common.safeio import kind_of

        raise ImageLoadError(label, f"this is {kind_of(st)}, not an image file")
    if st.st_size == 0:
        raise ImageLoadError(label, "the file is empty (0 bytes)")


def _decode(im: Image.Image, label: str, min_side: int | None, max_side: int | None = None) -> Image.Image:
    fmt = im.format
    full_size = im.size
    if im.width * im.height > pixel_limit():  # Pillow checks this too (not for every format)
        raise ImageLoadError(label, bomb_reason(im.size))
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    orientation = _orientation(im)
    scale = 1
    factor = _reduce_factor(full_size, min_side, max_side)
    if factor > 1 and fmt == "JPEG" and im.mode in ("RGB", "L", "CMYK", "YCbCr"):
        w, h = full_size
        req = (max(1, w // factor), max(1, h // factor))
        mode = "RGB" if im.mode in ("RGB", "YCbCr") else im.mode
        result = im.draft(mode, req)
        if result is not None:
            scale = max(1, round(full_size[0] / im.size[0]))
    # at the size it will be decoded (after draft), reduced or not
    cost = decode_cost(im, _reduce_factor(im.size, min_side, max_side))
    if cost > DECODE_BUDGET.capacity:
        raise ImageLoadError(label, _memory_reason(im, cost))
    with DECODE_BUDGET.reserve(cost):
        im.load()  # a truncated file raises here (ImageFile.LOAD_TRUNCATED_IMAGES stays False)
        rest = _reduce_factor(im.size, min_side, max_side)
        if rest > 1:  # every mode is shrunk before converting: the conversion copies
            im = reduce_in_strips(im, rest)
            scale *= rest
        if orientation in (5, 6, 7, 8):
            full_size = (full_size[1], full_size[0])
        return _finish(im, full_size, label, scale, orientation)


# Pillow's Image.reduce supports these modes
_REDUCIBLE = frozenset({"L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "I", "F"})  # not I;16, P, 1


def _reduce_mode(im: Image.Image) -> str | None:
    """The mode ``im`` is reduced in: None for its own (Pillow reduces it directly); palette,
    1-bit, 16-bit and other modes are converted strip by strip into one Pillow can reduce."""
    mode = im.mode
    if mode in _REDUCIBLE and mode not in ("RGBA", "LA"):
        return None
    if mode == "P":
        alpha = "transparency" in im.info or im.palette is not None and im.palette.mode == "RGBA"
        return "RGBA" if alpha else "RGB"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return "RGBA" if mode != "LA" else "LA"
    if mode == "1":
        return "L"
    if mode.startswith("I;16"):
        return "I"
    return "RGB"


def reduce_in_strips(im: Image.Image, factor: int) -> Image.Image:
    """``im.reduce(factor)`` for every mode without a full-size temporary: RGBA/LA (which Pillow
    reduces through a premultiplied full-size copy) and the modes Pillow cannot reduce (palette,
    1-bit, 16-bit…: converted first) go in strips of rows, aligned to the factor so the result is
    the same as reducing the whole converted image."""
    mode = _reduce_mode(im)
    if mode is None:
        return im.reduce(factor)
    w, h = im.size
    out = Image.new(mode, (-(-w // factor), -(-h // factor)))
    step = factor * max(1, (1 << 22) // max(1, w * factor * 4))  # about 4 MB of source per strip
    for top in range(0, h, step):
        strip = im.crop((0, top, w, min(h, top + step)))
        if strip.mode != mode:
            strip = strip.convert(mode)
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


def _reduce_factor(size: tuple[int, int], min_side: int | None, max_side: int | None) -> int:
    """The largest whole factor that keeps the shorter side >= DRAFT_SAFETY * min_side and brings
    the longer side to at most ``max_side``."""
    factor = 1
    if max_side:
        factor = max(1, -(-max(size) // max_side))
    if min_side:
        keep = max(1, int(min(size) // (min_side * DRAFT_SAFETY)))
        factor = min(factor, keep) if max_side else keep
    return max(1, factor)


# Bytes per pixel a full decode takes at its peak, by format, measured with Pillow 13 (VmHWM):
# libwebp decodes to an RGBA canvas, which Pillow copies twice more (about 15.5 B/px measured).
_PEAK_BYTES_PER_PIXEL = {"WEBP": 16}


def decode_cost(im: Image.Image, reduce: int = 1) -> int:
    """Bytes a decode of ``im`` may take at its peak: the decoded pixels plus, at full size, the
    converted copies (an image with transparency: RGBA, the white background and RGB), or, when it
    is reduced by ``reduce``, the reduced image and one strip."""
    pixels = im.width * im.height
    per = _PEAK_BYTES_PER_PIXEL.get(im.format or "")
    if per is not None:
        return pixels * per
    raw = 1 if im.mode in ("1", "L", "P") else 2 if im.mode.startswith("I;16") else 4  # Pillow's storage
    if reduce > 1:
        return pixels * raw + pixels * 4 // (reduce * reduce) + (16 << 20)
    bands = max(3, len(im.getbands()) if im.mode else 3)
    depth = 4 if im.mode in ("I", "F", "I;16", "I;16B", "I;16L") else 1
    per = bands * depth + 4
    if im.mode in ("P", "PA", "RGBA", "LA", "La", "RGBa"):
        per = max(per, raw + 12)
    return pixels * per


def _memory_reason(im: Image.Image, cost: int) -> str:
    return (
        f"the image is too large to decode in the memory cnndesk allows itself ({im.width} x {im.height} "
        f"{im.format or ''} needs about {cost / 2**30:.1f} GB, the limit is {DECODE_BUDGET.capacity / 2**30:.1f} GB; "
        "set CNNDESK_DECODE_BUDGET_MB to raise it)"
    )


class DecodeBudget:
    """A process-wide budget of bytes for decoded images: a decode waits until its estimated cost
    fits; one larger than the whole budget waits until it is alone."""

    def __init__(self, capacity: int):
        self.capacity = max(1, int(capacity))
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, cost: int):
        cost = min(max(0, int(cost)), self.capacity)
        with self._cond:
            while self.used and self.used + cost > self.capacity:
                self._cond.wait()
            self.used += cost
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= cost
                self._cond.notify_all()


def _default_budget() -> int:
    mb = os.environ.get("CNNDESK_DECODE_BUDGET_MB")
    if mb and mb.isdigit():
        return int(mb) << 20
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return int(min(2 << 30, max(512 << 20, total // 4)))


DECODE_BUDGET = DecodeBudget(_default_budget())


def _text(path: str | os.PathLike) -> str:
    from cnndesk.core.common.safeio import path_text

    return path_text(path)


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block must not lose the picture
        return 1


def _finish(
    im: Image.Image, full_size: tuple[int, int], label: str, scale: int, orientation: int,
    copy: bool = False,
) -> Image.Image:
    source = im
    if orientation != 1:
        try:
            im = ImageOps.exif_transpose(im)
        except Exception:  # a broken EXIF block must not lose the picture
            pass
    rgb = to_rgb(im)
    if copy and rgb is source:  # never modify the caller's image
        rgb = rgb.copy()
    rgb.info = {"original_size": full_size, "draft_scale": scale, "source": label}
    return rgb


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: alpha on white, 16-bit/float scaled to 0..255."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "P":
        if "transparency" in im.info or im.palette is not None and im.palette.mode == "RGBA":
            return _on_white(im.convert("RGBA"))
        return im.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _on_white(im.convert("RGBA"))
    if mode in ("1", "L", "CMYK", "YCbCr", "LAB", "HSV"):
        return im.convert("RGB")
    if mode.startswith("I") or mode == "F":
        return _scale_to_8bit(im).convert("RGB")
    return im.convert("RGB")


def _on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    background.alpha_composite(rgba)
    return background.convert("RGB")


def _scale_to_8bit(im: Image.Image) -> Image.Image:
    import numpy as np

    arr = np.asarray(im, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr[..., 0]
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return Image.new("L", im.size, 0)
    lo, hi = float(finite.min()), float(finite.max())
    if im.mode == "F" and lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0  # a float image in [0, 1]
    elif im.mode.startswith("I;16") or (lo >= 0 and 255 < hi <= 65535 and im.mode != "F"):
        lo, hi = 0.0, 65535.0
    elif lo >= 0 and hi <= 255:
        lo, hi = 0.0, 255.0
    span = hi - lo if hi > lo else 1.0
    arr = np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo)
    out = np.clip((arr - lo) * (255.0 / span) + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(out, "L")


def bomb_reason(size: tuple[int, int] | None) -> str:
    found = f" ({size[0]} x {size[1]} = {size[0] * size[1] / 1e6:.0f} megapixels)" if size else ""
    return (
        f"the image has too many pixels{found}; the safety limit is "
        f"{pixel_limit() / 1e6:.0f} megapixels, to guard against decompression bombs"
    )


def _unidentified_reason(label: str, fp: object) -> str:
    head = b""
    try:
        if isinstance(fp, (str, os.PathLike)):
            with open(fp, "rb") as fh:
                head = fh.read(16)
        elif hasattr(fp, "seek") and hasattr(fp, "read"):
            fp.seek(0)  # type: ignore[union-attr]
            head = fp.read(16)  # type: ignore[union-attr]
    except OSError:
        pass
    ext = os.path.splitext(label)[1].lower()
    kind = _sniff(head)
    if kind:
        return f"this is {kind}, not an image"
    if ext in IMAGE_EXTENSIONS:
        return (
            f"the file is named {ext} but its contents are not a readable image "
            "(it may be damaged, or not really an image)"
        )
    return "this is not an image file cnndesk can read (JPEG, PNG, WebP, BMP, GIF or TIFF)"


def _sniff(head: bytes) -> str | None:
    signatures = {
        b"%PDF": "a PDF document",
        b"%!": "a PostScript document",
        b"\xc5\xd0\xd3\xc6": "a PostScript document",
        b"PK\x03\x04": "a ZIP archive (or an Office document)",
        b"\x1f\x8b": "a gzip archive",
        b"ID3": "an MP3 audio file",
        b"RIFF": "a RIFF file (audio or video)",
        b"\x7fELF": "a program",
        b"MZ": "a Windows program",
    }
    for sig, what in signatures.items():
        if head.startswith(sig):
            return what
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "a video file (MP4/MOV)"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file"
    return None


def _oserror_reason(exc: OSError) -> str:
    text = str(exc)
    low = text.lower()
    if "truncated" in low or "premature end" in low or "unexpected end" in low:
        return "the file is truncated (incomplete download or copy?)"
    if exc.strerror and exc.errno:
        return f"the file cannot be read ({exc.strerror})"
    if "decoder" in low and "not available" in low:
        return f"this image format is not supported by this installation ({text})"
    return f"the file is damaged and cannot be decoded ({text or type(exc).__name__})"
