"""A 20,000-photo folder in the results table (issue 14 point 10): peak memory and the UI timer's
worst gap while the rows stream in and while the user scrolls through the whole table.

The rows arrive exactly as the folder worker delivers them (FolderBatch partials with a 64-px
thumbnail per file, through MainWindow._folder_batch on the UI thread); the classifier itself is
not run (20,000 inferences take minutes and do not touch the thumbnail memory this measures;
the pipeline's speed is in bench_classify.py). Side by side in child processes: the bounded
thumbnail cache (the app) and an unbounded one (max_thumbs = 10**9, what the app did before).

    python bench/bench_big_folder.py [--files 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, os, resource, sys, tempfile, time
from pathlib import Path
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp()
sys.path.insert(0, os.path.join(sys.argv[3], "bench"))
from PIL import Image
from cnndesk.core.predict.classifier import Prediction
from cnndesk.core.predict.stream import FileResult
from cnndesk.qt.app import create_app
from cnndesk.qt.imaging import thumbnail
from cnndesk.qt.jobs import FolderBatch
from cnndesk.qt.main_window import MainWindow
from qtbench import UiTimerGaps, spin
n, bounded = int(sys.argv[1]), sys.argv[2] == "bounded"
app = create_app()
win = MainWindow(); win.resize(1100, 700); win.show()
model = win.folder_panel.model
if not bounded:
    model.max_thumbs = 10**9
folder = Path(tempfile.mkdtemp()) / "photos"
folder.mkdir()
srcs = [Image.open(p).convert("RGB") for p in sorted((Path(sys.argv[3]) / "resources" / "samples").glob("*.jpg"))]
paths = []
for i in range(200):  # real files, so scrolled-to rows can be thumbnailed again
    p = folder / f"IMG_{i:05d}.jpg"
    srcs[i % len(srcs)].rotate(i % 30).resize((320, 240)).save(p, quality=80)
    paths.append(str(p))
win.folder.classify_folder([str(folder)])   # the panel and table as for a real folder…
win.runner.cancel("folder")          # …without running the model
pool = [thumbnail(srcs[i % len(srcs)].resize((96 + i % 13, 72)), 64) for i in range(64)]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
gaps = UiTimerGaps(); gaps.start()
ui_s = 0.0
pred = Prediction(("espresso", "cup"), (0.9, 0.05), (967, 968))
t0 = time.perf_counter(); done = 0; worst = 0
while done < n:
    k = min(250, n - done)
    batch = []
    for j in range(done, done + k):  # a distinct image per file, as the worker makes
        batch.append(FileResult(j, paths[j % len(paths)], pred, extra=pool[j % len(pool)].copy()))
    done += k
    gaps.reset()
    t1 = time.perf_counter()
    win._folder_batch(FolderBatch(batch, done, n, 50.0))  # what the UI thread does per partial
    app.processEvents()
    ui_s += time.perf_counter() - t1
    worst = max(worst, gaps.stats()[0]) if gaps.gaps else worst
win.folder_panel.set_running(False)
fill_s = time.perf_counter() - t0
fill = (worst, 0, 0); gaps.reset()
# scroll the whole table, a page at a time, as a user dragging the scroll bar
bar = win.folder_panel.table.verticalScrollBar()
for v in range(0, bar.maximum() + 1, max(1, bar.pageStep())):
    bar.setValue(v); app.processEvents()
spin(lambda: win.runner.active_count() == 0, 120_000)
bar.setValue(0)
t2 = time.perf_counter()
spin(lambda: model.data(model.index(0, 0), 1) is not None, 60_000)  # evicted rows come back
top_thumb = time.perf_counter() - t2
spin(lambda: win.runner.active_count() == 0, 120_000)
scroll = gaps.stats()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": model.rowCount(), "fill_s": fill_s, "ui_ms_per_batch_of_250": 1000 * ui_s / max(1, n // 250), "peak_mb": peak / 1024, "growth_mb": (peak - base) / 1024,
                  "fill_gap_ms": fill[0], "scroll_gap_ms": scroll[0],
                  "thumbs_kept": model.thumbs_cached(), "top_row_thumb_back_s": round(top_thumb, 3)}))
win.close()
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20_000)
    args = ap.parse_args()
    print("load before:", os.getloadavg())
    env = dict(os.environ, PYTHONPATH=str(ROOT), CNNDESK_NO_GPU="1", QT_LOGGING_RULES="qt.multimedia.*=false")
    for mode in ("unbounded", "bounded"):
        out = subprocess.run([sys.executable, "-c", CHILD, str(args.files), mode, str(ROOT)], env=env,
                             capture_output=True, text=True, timeout=1200)
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        print(mode, json.dumps(json.loads(out.stdout.strip().splitlines()[-1])), flush=True)
    print("load after:", os.getloadavg())


if __name__ == "__main__":
    main()
