"""Big generated image folders for bench/bench_bigfolders.py: ten classes of small images (64 px
symbols and 96 px textures from bench/doctor_data.py), one subfolder per class, written as JPEG
(and a few PNG), a share of them with a wrong label (``flip_share``), plus near-duplicates, so the
doctor has something to find. Deterministic for a given (n, seed); a folder already generated
with the same parameters is reused (``manifest.json``).

    python bench/bigfolders_data.py OUT_DIR --n 5000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import doctor_data  # noqa: E402

CLASSES = doctor_data.CLASSES


def make(root: Path, n: int, seed: int = 0, flip_share: float = 0.02, dupe_share: float = 0.005) -> dict:
    """``n`` images in ``root/<class>/``; returns the manifest (also written next to the folder as
    ``root.name + '.json'``)."""
    root = Path(root)
    meta_path = root.parent / f"{root.name}.json"
    want = {"n": n, "seed": seed, "flip_share": flip_share, "dupe_share": dupe_share, "classes": list(CLASSES)}
    if meta_path.exists() and root.is_dir():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in want.items()):
            return meta
    rng = random.Random(seed)
    for c in CLASSES:
        (root / c).mkdir(parents=True, exist_ok=True)
    flipped = 0
    last = None
    for i in range(n):
        kind = CLASSES[i % len(CLASSES)]
        if last is not None and rng.random() < dupe_share:
            img = doctor_data.near_copy(last, rng)  # a near-duplicate of the previous image
        else:
            img = doctor_data.draw(kind, rng)
        last = img
        folder = kind
        if rng.random() < flip_share:
            folder = rng.choice([c for c in CLASSES if c != kind])
            flipped += 1
        name = f"img_{i:06d}"
        if i % 10 == 0:
            img.save(root / folder / f"{name}.png")
        else:
            img.save(root / folder / f"{name}.jpg", quality=88)
    meta = {**want, "flipped": flipped}
    meta_path.write_text(json.dumps(meta))
    return meta


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(json.dumps(make(Path(args.out), args.n, args.seed)))


if __name__ == "__main__":
    main()
