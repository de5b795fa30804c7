"""Reading and writing a labels file of 100,000 rows (``cnndesk label --labels``, the kept
answers): CPU seconds, best of 5. No image files are needed (the folder's images are a set of
paths). Run with PYTHONPATH pointing at the code to measure (compare two checkouts in one run).

    PYTHONPATH=$PWD python bench/bench_labels_file.py
"""

from __future__ import annotations

import os
import tempfile
import time

from cnndesk.core.labelling import folder as fo


def best(fn, n: int = 5) -> float:
    out = 9e9
    for _ in range(n):
        t = time.process_time()
        fn()
        out = min(out, time.process_time() - t)
    return out


def main() -> None:
    root = "/nonexistent/pile"
    known = {f"{root}/d{i // 1000}/img_{i:06d}.jpg" for i in range(100_000)}
    rows = [(p, f"c{i % 20}") for i, p in enumerate(sorted(known))]
    write_s = best(lambda: fo.labels_csv(rows, root))
    text = fo.labels_csv(rows, root)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "labels.csv")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        read_s = best(lambda: fo.read_labels(path, root, known))
    print(f"100,000 rows ({len(text) / 1e6:.1f} MB): write {write_s:.3f} CPU-s, read {read_s:.3f} CPU-s")


if __name__ == "__main__":
    main()
