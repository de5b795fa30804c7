"""Generate the corpus of hostile inputs kept in tests/hostile/files (small files, deterministic
content). Run from the repository root to rebuild it:

    PYTHONPATH=. python tests/hostile/make_corpus.py tests/hostile/files

Things that cannot live in git (FIFOs, non-UTF-8 names, huge images) are made by the tests at run
time (see tests/hostile/runtime.py). Each file name says what is wrong with it; EXPECT maps every
file to a word the one-line error must contain.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

HEAD_BASE = {"arch": "timm:tf_efficientnet_lite0", "base": "efficientnet-lite0", "kind": "head",
             "preprocess": {"resize": 256, "crop": 224, "mean": [0.5] * 3, "std": [0.5] * 3,
                            "interpolation": "bilinear"},
             "labels": ["a", "b"], "format": 1}

# model file -> a word its one-line reason contains
EXPECT_MODELS = {
    "deep_json": "nested",
    "labels_string": "labels",
    "labels_dict": "labels",
    "labels_numbers": "label",
    "name_number": "name",
    "resize_infinity": "resize",
    "resize_huge": "resize",
    "std_zero": "std",
    "mean_strings": "mean",
    "arch_hf_hub": "architecture",
    "arch_number": "arch",
    "kind_bogus": "kind",
    "metadata_list": "object",
    "format_2": "format",
    "base_number": "base",
    "base_dict": "base",
    "base_self": "base",
    "base_path": "base",
    "base_missing": "base",
    "metrics_string": "metrics",
    "head_1d": "head",
    "head_wrong_rows": "head",
    "head_nan": "NaN",
    "head_missing": "damaged",
    "not_safetensors": "not a valid",
    "pickle_renamed": "not a valid",
    "header_lie": "not a valid",
    "no_metadata": "not a cnndesk model",
}
# these pass the metadata check and fail only when the network is built or run
EXPECT_LATE = {"head_wrong_width": "features", "arch_unknown_torchvision": "unknown architecture"}

EXPECT_PARTS = {
    "not_a_list.json": "not a cnndesk results file",
    "wrong_types.json": "not a cnndesk results file",
    "deep.json": "not a cnndesk results file",
    "invalid.json": "not a cnndesk results file",
    "no_path_column.csv": "not a cnndesk results file",
    "score_not_number.csv": "not a cnndesk results file",
    "binary.csv": "not a cnndesk results file",
}

EXPECT_IMAGES = {
    "empty.jpg": "empty",
    "text_named.jpg": "text file",
    "truncated.jpg": "truncated",
    "bomb_header.png": "too many pixels",
    "pdf_named.png": "PDF",
    "bad_ihdr.png": "damaged",
}


def _safetensors(meta: str | None, tensors: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save(tensors, metadata=None if meta is None else {"cnndesk-model": meta})


def _head(w=(2, 8), b=(2,), fill=0.01):
    return {"head.weight": np.full(w, fill, np.float32), "head.bias": np.zeros(b, np.float32)}


def model_files() -> dict[str, bytes]:
    def m(**over):
        info = {**HEAD_BASE, **over}
        return json.dumps({k: v for k, v in info.items() if v is not ...})

    out = {
        "deep_json": _safetensors("[" * 20000 + "]" * 20000, _head()),
        "labels_string": _safetensors(m(labels="cat"), _head()),
        "labels_dict": _safetensors(m(labels={"a": 1, "b": 2}), _head()),
        "labels_numbers": _safetensors(m(labels=[1, 2]), _head()),
        "name_number": _safetensors(m(name=42), _head()),
        "resize_infinity": _safetensors(m(preprocess={**HEAD_BASE["preprocess"], "resize": float("inf")}), _head()),
        "resize_huge": _safetensors(m(preprocess={**HEAD_BASE["preprocess"], "resize": 10**30}), _head()),
        "std_zero": _safetensors(m(preprocess={**HEAD_BASE["preprocess"], "std": [0, 0, 0]}), _head()),
        "mean_strings": _safetensors(m(preprocess={**HEAD_BASE["preprocess"], "mean": ["a", "b", "c"]}), _head()),
        "arch_hf_hub": _safetensors(m(kind="full", arch="timm:hf-hub:timm/resnet18.a1_in1k"), _head()),
        "arch_number": _safetensors(m(kind="full", arch=7), _head()),
        "kind_bogus": _safetensors(m(kind="exec"), _head()),
        "metadata_list": _safetensors(json.dumps([1, 2, 3]), _head()),
        "format_2": _safetensors(m(format=2), _head()),
        "base_number": _safetensors(m(base=5), _head()),
        "base_dict": _safetensors(m(base={"x": 1}), _head()),
        "base_self": _safetensors(m(base="base_self", name="base_self"), _head()),
        "base_path": _safetensors(m(base="/dev/zero"), _head()),
        "base_missing": _safetensors(m(base="no-such-network"), _head()),
        "metrics_string": _safetensors(m(metrics={"val_accuracy": "high"}), _head()),
        "head_1d": _safetensors(m(), _head(w=(2,))),
        "head_wrong_rows": _safetensors(m(), _head(w=(5, 8))),
        "head_nan": _safetensors(m(), _head(fill=float("nan"))),
        "head_missing": _safetensors(m(), {"other": np.zeros(3, np.float32)}),
        "head_wrong_width": _safetensors(m(), _head(w=(2, 17))),
        "arch_unknown_torchvision": _safetensors(
            m(kind="full", arch="torchvision:no_such_net", base=...), {"w": np.zeros(3, np.float32)}),
        "not_safetensors": bytes(range(256)) * 4,
        "pickle_renamed": b"\x80\x04\x95" + b"cos\nsystem\n(S'echo pwned'\ntR." + b"\x00" * 16,
        "header_lie": struct.pack("<Q", 1 << 40) + b"{}",
        "no_metadata": _safetensors(None, _head()),
    }
    return out


def part_files() -> dict[str, bytes]:
    return {
        "not_a_list.json": b'{"path": "a.jpg"}',
        "wrong_types.json": json.dumps([{"path": 1, "predictions": "x", "error": None}]).encode(),
        "deep.json": b"[" * 5000 + b"]" * 5000,
        "invalid.json": b"[{\"path\": ",
        "no_path_column.csv": b"file,label_1,score_1,error\na.jpg,cat,0.5,\n",
        "score_not_number.csv": b"path,label_1,score_1,error\na.jpg,cat,high,\n",
        "binary.csv": b"\xff\xfe\x00\x01garbage\x00\n",
    }


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def image_files() -> dict[str, bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()
    sig = b"\x89PNG\r\n\x1a\n"
    bomb = sig + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)) \
        + _png_chunk(b"IDAT", zlib.compress(b"")) + _png_chunk(b"IEND", b"")
    bad_ihdr = sig + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 7, 9, 0, 0, 0)) \
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 20)) + _png_chunk(b"IEND", b"")
    return {
        "empty.jpg": b"",
        "text_named.jpg": b"hello, I am not a picture\n",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "bomb_header.png": bomb,
        "pdf_named.png": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
        "bad_ihdr.png": bad_ihdr,
    }


def build(root: Path) -> None:
    for sub, files in (("models", {f"{k}.safetensors": v for k, v in model_files().items()}),
                       ("parts", part_files()), ("images", image_files())):
        folder = root / sub
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "files"))
