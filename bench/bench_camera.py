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
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia.*=false")
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="cnndesk-bench-config-")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_video(path: Path, seconds: float, fps: int = 30, size=(640, 480)) -> None:
    import av
    import numpy as np
    from PIL import Image

    from cnndesk.core.paths import sample_images

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
    from PySide6.QtCore import QCoreApplication, QElapsedTimer, QTimer

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
    clock = QElapsedTimer()
    clock.start()

    def spin(cond, ms=120_000):
        t0 = clock.elapsed()
        while not cond():
            QCoreApplication.processEvents()
            time.sleep(0.001)
            if clock.elapsed() - t0 > ms:
                raise SystemExit("timeout")

    spin(lambda: win.clf is not None)
    panel = win.camera_panel
    win.show_camera()
    gaps: list[int] = []
    last = [clock.elapsed()]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    panel.open_video(str(video))
    spin(lambda: panel.source.frames_received > 30)  # warm-up: first second
    r0, p0, c0, t0 = panel.source.frames_received, panel.view.frames_painted, panel.results_shown, time.perf_counter()
    gaps.clear()
    spin(lambda: panel.source.state == "ended" or time.perf_counter() - t0 > args.seconds - 2)
    dt = time.perf_counter() - t0
    r1, p1, c1 = panel.source.frames_received, panel.view.frames_painted, panel.results_shown
    timer.stop()
    g = sorted(gaps)
    print(f"source delivered   {(r1 - r0) / dt:6.1f} frames/s")
    print(f"preview painted    {(p1 - p0) / dt:6.1f} frames/s")
    print(f"overlay updates    {(c1 - c0) / dt:6.1f} /s  (frames dropped by the newest-frame policy: {panel.live.dropped})")
    print(f"10 ms UI timer     max wait {g[-1]} ms, p99 {g[int(0.99 * (len(g) - 1))]} ms, median {statistics.median(g)} ms")
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
