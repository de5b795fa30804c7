"""Start-up benchmark: seconds from launching `cnndesk` to the first paint of its window, side by
side with a bare PySide6 window (the floor) and `import torch` alone (what we keep off that path).

Offscreen (no display here); a real X server adds a little. Usage: python bench/bench_startup.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

BARE = (
    "import time,sys\n"
    "from PySide6.QtWidgets import QApplication, QMainWindow\n"
    "from PySide6.QtCore import QEvent, QObject, QTimer\n"
    "app = QApplication([]); w = QMainWindow(); w.setWindowTitle('bare'); w.resize(1100, 750)\n"
    "class F(QObject):\n"
    "    def eventFilter(self, o, e):\n"
    "        if e.type() == QEvent.Type.Paint:\n"
    "            print(f'first-paint {time.time():.6f}', flush=True); QTimer.singleShot(0, app.quit)\n"
    "        return False\n"
    "f = F(); w.installEventFilter(f); w.show(); app.exec()\n"
)


def first_paint(cmd: list[str], env: dict) -> float:
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    for line in out.stdout.splitlines():
        if line.startswith("first-paint"):
            return float(line.split()[1]) - t0
    raise SystemExit(f"no paint: {out.stderr[-1500:]}")


def main() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"), "CNNDESK_STARTUP_PROBE": "1"}
    rows = {"cnndesk (window, model loads on a worker)": [], "bare PySide6 window": [], "import torch alone": []}
    for _ in range(5):
        rows["cnndesk (window, model loads on a worker)"].append(first_paint([sys.executable, "-m", "cnndesk"], env))
        rows["bare PySide6 window"].append(first_paint([sys.executable, "-c", BARE], env))
        t0 = time.time()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        rows["import torch alone"].append(time.time() - t0)
    for name, v in rows.items():
        print(f"{name:45s} median {statistics.median(v):.2f} s  (min {min(v):.2f}, max {max(v):.2f})")


if __name__ == "__main__":
    main()
