"""PIL <-> QImage conversions and thumbnails. Safe on worker threads (QImage, never QPixmap)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage

THUMB = 128


def pil_to_qimage(img: Image.Image) -> QImage:
    """An RGB PIL image as a QImage that owns its pixels (so it outlives the PIL image)."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    data = img.tobytes()
    q = QImage(data, img.width, img.height, 3 * img.width, QImage.Format.Format_RGB888)
    return q.copy()


def qimage_to_rgb_array(image: QImage) -> np.ndarray:
    """An RGB32 QImage as an H x W x 3 uint8 RGB array (a copy; safe on any thread)."""
    if image.format() not in (QImage.Format.Format_RGB32, QImage.Format.Format_ARGB32):
        image = image.convertToFormat(QImage.Format.Format_RGB32)
    h, w, bpl = image.height(), image.width(), image.bytesPerLine()
    buf = np.frombuffer(image.constBits(), np.uint8, count=bpl * h).reshape(h, bpl // 4, 4)[:, :w]
    return np.ascontiguousarray(buf[..., 2::-1])  # BGRA in memory -> RGB


def qimage_to_pil(q: QImage) -> Image.Image:
    """A QImage (e.g. from the clipboard) as an RGB PIL image; alpha composited on white."""
    q = q.convertToFormat(QImage.Format.Format_RGBA8888)
    w, h = q.width(), q.height()
    buf = bytes(q.constBits())[: q.bytesPerLine() * h]
    img = Image.frombuffer("RGBA", (w, h), buf, "raw", "RGBA", q.bytesPerLine(), 1)
    white = Image.new("RGBA", (w, h), (255, 255, 255, 255))
    white.alpha_composite(img)
    return white.convert("RGB")


def thumbnail(img: Image.Image, size: int = THUMB) -> QImage:
    t = img.copy()
    t.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return pil_to_qimage(t)


def display_copy(img: Image.Image, max_side: int = 1600) -> Image.Image:
    """A copy small enough to paint smoothly; big photos are reduced once, on the worker."""
    if max(img.size) <= max_side:
        return img
    t = img.copy()
    t.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return t


def gray_to_qimage(a: np.ndarray) -> QImage:
    """A [0, 1] map as a colour QImage (dark blue -> yellow)."""
    a = np.clip(a, 0, 1)
    rgb = np.stack([np.clip(2 * a - 0.6, 0, 1), np.clip(1.3 * a, 0, 1) * 0.9, np.clip(0.6 - a, 0, 1) + 0.15 * a], -1)
    return pil_to_qimage(Image.fromarray((rgb * 255).astype(np.uint8)))


def save_qimage(image, path: str, fmt: str | None = None) -> bool:
    """Encode ``image`` (a QImage) in memory, then write it through the safe writer (atomic, never
    through a planted symlink, a full disk leaves the old file). ``fmt``: from the suffix when None
    (JPEG for .jpg/.jpeg, else PNG). Returns False when it could not be encoded or written."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    from cnndesk.core.common.safeio import safe_write

    if fmt is None:
        fmt = "JPG" if str(path).lower().endswith((".jpg", ".jpeg")) else "PNG"
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if image is None or not image.save(buf, fmt):
        return False
    try:
        with safe_write(path, "wb") as fh:
            fh.write(bytes(data))
    except OSError:
        return False
    return True
