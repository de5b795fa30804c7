"""Camera-path benchmark: a 640 x 480, 30 fps h264 video (written with PyAV) plays through
QMediaPlayer -> QVideoSink -> the Camera tab, exactly as a webcam's frames would, offscreen.

Side by side in one run: frames the source delivered per second, frames the preview painted per
second, overlay (classification) updates per second, and the worst wait of a 10 ms UI timer.
For context, the model alone on the same frames (preprocess + ONNX Runtime) in a tight loop.

Usage: python bench/bench_camera.py [--seconds 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia.*=false")
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="cnndesk-bench-config-")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def write_video(path: Path, seconds: float, fps: int = 30, size=(640, 480)) -> None:
    import av
    import numpy as np
    from PIL import Image

    from cnndesk.core.common.paths import sample_images

    frames = [np.asarray(Image.open(p).convert("RGB").resize(size)) for p in sample_images()]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        n = int(seconds * fps)
        for i in range(n):
            arr = np.roll(frames[(i * len(frames)) // n], i * 2, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=12)
    args = ap.parse_args()
    import numpy as np
    from PIL import Image
    from qtbench import UiTimerGaps, spin

    from cnndesk.qt.app import create_app
    from cnndesk.qt.camera.panel import qimage_to_rgb_array
    from cnndesk.qt.main_window import MainWindow

    video = Path(tempfile.mkdtemp(prefix="cnndesk-bench-")) / "clip.mp4"
    write_video(video, args.seconds)
    app = create_app()  # noqa: F841
    win = MainWindow()
    win.resize(1180, 780)
    win.show()
    win.start()
    spin(lambda: win.clf is not None, 120_000)
    panel = win.camera_panel
    win.show_camera()
    timer = UiTimerGaps()
    timer.start()
    panel.open_video(str(video))
    spin(lambda: panel.source.frames_received > 30, 120_000)  # warm-up: first second
    r0, p0, c0, t0 = panel.source.frames_received, panel.view.frames_painted, panel.results_shown, time.perf_counter()
    timer.reset()
    spin(lambda: panel.source.state == "ended" or time.perf_counter() - t0 > args.seconds - 2, 120_000)
    dt = time.perf_counter() - t0
    r1, p1, c1 = panel.source.frames_received, panel.view.frames_painted, panel.results_shown
    timer.stop()
    worst, p99, median = timer.stats()
    print(f"source delivered   {(r1 - r0) / dt:6.1f} frames/s")
    print(f"preview painted    {(p1 - p0) / dt:6.1f} frames/s")
    print(f"overlay updates    {(c1 - c0) / dt:6.1f} /s  (frames dropped by the newest-frame policy: {panel.live.dropped})")
    print(f"10 ms UI timer     max wait {worst} ms, p99 {p99} ms, median {median} ms")
    frame = panel.source.latest()
    clf = win.clf
    win.close()

    # the model alone on the same frames, in a tight loop (context for the numbers above)
    n = 200
    t = time.perf_counter()
    for _ in range(n):
        rgb = Image.fromarray(qimage_to_rgb_array(frame))
        clf.predict_arrays(clf.prepare(rgb)[None], 3)
    per = (time.perf_counter() - t) / n
    print(f"model alone        {1 / per:6.1f} frames/s ({per * 1000:.1f} ms: conversion + preprocess + ONNX Runtime, {clf.threads} threads)")
    _ = np


if __name__ == "__main__":
    main()
