"""Model input preprocessing in Pillow + numpy (no torch), identical to torchvision's
``Resize(resize) -> CenterCrop(crop) -> ToTensor -> Normalize(mean, std)`` on PIL images."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

_FILTERS = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class Preprocess:
    """Resize the shorter side to ``resize``, centre-crop ``crop`` x ``crop``, scale to [0, 1],
    then ``(x - mean) / std`` per channel. Output: float32 CHW."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"

    @property
    def input_size(self) -> int:
        return self.crop

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        return cls(
            resize=int(d["resize"]),
            crop=int(d["crop"]),
            mean=tuple(float(v) for v in d["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in d["std"]),  # type: ignore[arg-type]
            interpolation=str(d.get("interpolation", "bilinear")),
        )

    def resized_crop(self, img: Image.Image) -> Image.Image:
        """The ``crop`` x ``crop`` RGB image the model sees (also used for display/explain)."""
        w, h = img.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.resize, int(self.resize * long / short)
        size = (new_short, new_long) if w <= h else (new_long, new_short)
        c = self.crop
        if size != img.size and size[0] >= c and size[1] >= c:
            # Resample only the part that survives the crop: Pillow's ``box`` keeps the filter
            # centred and sized as a full resize would (it reads pixels beyond the box), so this
            # equals resize-then-crop to within one 8-bit level (float rounding of the box
            # origin) while doing about half the work.
            top = int(round((size[1] - c) / 2.0))
            left = int(round((size[0] - c) / 2.0))
            sx, sy = w / size[0], h / size[1]
            box = (left * sx, top * sy, (left + c) * sx, (top + c) * sy)
            return img.resize((c, c), _FILTERS[self.interpolation], box=box)
        if size != img.size:
            img = img.resize(size, _FILTERS[self.interpolation])
        w, h = img.size
        if w < c or h < c:  # torchvision pads with zeros; only for crop > resize
            padded = Image.new("RGB", (max(w, c), max(h, c)))
            padded.paste(img, ((max(w, c) - w) // 2, (max(h, c) - h) // 2))
            img, (w, h) = padded, padded.size
        top = int(round((h - c) / 2.0))
        left = int(round((w - c) / 2.0))
        return img.crop((left, top, left + c, top + c))

    def __call__(self, img: Image.Image) -> np.ndarray:
        return self.normalize(np.asarray(self.resized_crop(img)))

    def normalize(self, hwc_uint8: np.ndarray) -> np.ndarray:
        """uint8 HWC RGB -> normalized float32 CHW."""
        x = hwc_uint8.astype(np.float32)
        scale = np.float32(1.0 / 255.0)
        mean = np.asarray(self.mean, np.float32) / scale
        inv_std = scale / np.asarray(self.std, np.float32)
        x = (x - mean) * inv_std
        return np.ascontiguousarray(x.transpose(2, 0, 1))
