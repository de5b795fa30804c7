"""GUI responsiveness benchmark (offscreen):

1. a 10 ms QTimer on the UI thread while the app classifies a folder of 200 photo-sized JPEGs
   (worst and 99th-percentile gap between ticks; the target is <= 100 ms);
2. the folder table growing to 10,000 rows in the batches the worker sends (sorting on): the UI
   time each batch costs and the worst timer gap.

Usage: python bench/bench_gui.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="cnndesk-bench-config-")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    from PIL import Image
    from PySide6.QtCore import QCoreApplication
    from qtbench import UiTimerGaps, spin

    from cnndesk.core.common.paths import sample_images
    from cnndesk.core.predict.classifier import Prediction
    from cnndesk.core.predict.stream import FileResult
    from cnndesk.qt.app import create_app
    from cnndesk.qt.imaging import thumbnail
    from cnndesk.qt.main_window import MainWindow

    app = create_app()  # noqa: F841
    win = MainWindow()
    win.show()
    win.start()
    spin(lambda: win.clf is not None)
    folder = Path(tempfile.mkdtemp(prefix="cnndesk-bench-")) / "photos"
    folder.mkdir()
    srcs = [Image.open(p).convert("RGB").resize((3000, 2000)) for p in sample_images()]
    for i in range(200):
        srcs[i % len(srcs)].save(folder / f"p{i:03d}.jpg", quality=90)

    timer = UiTimerGaps()
    timer.start()
    t0 = time.perf_counter()
    win.open_paths([str(folder)])
    spin(lambda: win.folder_panel.model.rowCount() == 200 and not win.runner.running("folder"))
    dt = time.perf_counter() - t0
    worst, p99, median = timer.stats()
    print(f"200 x 6 MP folder: {200 / dt:.1f} images/s in the app; timer gap max {worst} ms, "
          f"p99 {p99} ms, median {median} ms ({len(timer.gaps)} ticks)")

    # 10,000 rows in worker-sized batches
    panel = win.folder_panel
    panel.start("synthetic")
    thumb = thumbnail(Image.open(sample_images()[0]).convert("RGB"), 64)
    labels = [f"label {i}" for i in range(300)]
    costs = []
    timer.reset()
    n = 0
    batch = 200
    while n < 10_000:
        rows = [FileResult(n + i, f"/photos/IMG_{n + i:05d}.jpg",
                           Prediction((labels[(n + i) % 300],), (((n + i) * 37 % 100) / 100,), (0,)), None, thumb)
                for i in range(batch)]
        t = time.perf_counter()
        panel.add_results(rows)
        panel.set_progress(n + batch, 10_000, 50.0)
        QCoreApplication.processEvents()
        costs.append((time.perf_counter() - t) * 1000)
        n += batch
        # the worker sends a batch about every 100 ms; let the timer run in between
        t_end = time.perf_counter() + 0.1
        spin(lambda t_end=t_end: time.perf_counter() >= t_end)
    panel.table.sortByColumn(3, panel.table.horizontalHeader().sortIndicatorOrder())
    worst, p99, _ = timer.stats()
    print(f"10,000-row table in batches of {batch}: UI cost per batch median {statistics.median(costs):.1f} ms, "
          f"max {max(costs):.1f} ms; timer gap max {worst} ms, p99 {p99} ms")
    timer.stop()
    win.close()


if __name__ == "__main__":
    main()
