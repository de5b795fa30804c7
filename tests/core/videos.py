"""Generated test videos (PyAV encoder): still scenes from the sample photos with a slow zoom and
per-frame noise, cut one after another; plus variable-frame-rate and audio-only files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"


def scene_frames(photo: Path, n: int, size: tuple[int, int], rng: np.random.Generator,
                 zoom: float = 0.12, noise: float = 6.0):
    """``n`` frames of ``photo``: cover-cropped to ``size``, zooming in slowly by ``zoom``, with
    Gaussian noise of ``noise`` grey levels."""
    img = Image.open(photo).convert("RGB")
    w, h = size
    scale = max(w / img.width, h / img.height) * 1.3  # room to zoom
    big = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
    cx, cy = big.width / 2, big.height / 2
    for i in range(n):
        z = 1.0 + zoom * i / max(1, n - 1)
        bw, bh = big.width / 1.3 / z, big.height / 1.3 / z
        box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
        frame = np.asarray(big.resize((w, h), Image.Resampling.BILINEAR, box=box), dtype=np.float32)
        if noise:
            frame = frame + rng.normal(0.0, noise, frame.shape).astype(np.float32)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def make_scene_clip(path, scenes, seconds=2.0, fps=15, size=(320, 180), seed=0, codec="h264",
                    zoom=0.12, noise=6.0, times=None) -> Path:
    """Encode one segment of ``seconds`` per entry of ``scenes`` (sample names such as "coffee" or
    photo paths). ``times``: optional explicit frame times in seconds (variable frame rate); each
    frame then shows the scene whose slot (``seconds`` long) holds its time."""
    import av

    rng = np.random.default_rng(seed)
    photos = [Path(s) if Path(str(s)).suffix else SAMPLES / f"{s}.jpg" for s in scenes]
    path = Path(path)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if times is None:
            per = round(seconds * fps)
            frames = (f for p in photos for f in scene_frames(p, per, size, rng, zoom, noise))
            for arr in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                    out.mux(packet)
        else:
            stream.codec_context.time_base = Fraction(1, 1000)
            slots: dict[int, list[float]] = {}
            for t in times:
                slots.setdefault(int(t // seconds), []).append(t)
            for k, ts in sorted(slots.items()):
                for t, arr in zip(ts, scene_frames(photos[k], len(ts), size, rng, zoom, noise), strict=True):
                    frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
                    frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
                    for packet in stream.encode(frame):
                        out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_audio_only(path, seconds=1.0, codec="aac", rate=44100) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        n = 1024
        t = 0
        for _ in range(int(seconds * rate / n)):
            samples = (0.2 * np.sin(2 * np.pi * 440 * (np.arange(n) + t) / rate)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, t
            t += n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return Path(path)
