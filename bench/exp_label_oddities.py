"""Labelling sessions' unknown flag with odd images in the folder (issue 22 item 4): the images
answered so far alone (old: ``Suggester.unknown``, the nearest-answered-image distance) vs that or
unlike the whole folder (new: ``LabelSession.suggestions``, with ``labelling.oddities``).

Each generated folder of bench/label_data.py (bench/out/label/<family>-<seed>) gets 10 odd images:
RGB and grey noise, a gradient, a flat colour, thin lines and the five sample photos of
resources/samples. Answers are the truth for random images at each budget. Reported: odd images
flagged, and the share of the other unanswered images flagged (those of a class already named).

Usage: python bench/exp_label_oddities.py [--folders symbols-2,objects-2,textures-2,shapes-2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LABEL = ROOT / "bench" / "out" / "label"


def odd_images(dest: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (600, 900, 3), dtype=np.uint8)).save(dest / "odd_noise_rgb.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (300, 300), dtype=np.uint8)).save(dest / "odd_noise_grey.png")
    g = np.linspace(0, 255, 400)[None, :].repeat(300, 0)
    Image.fromarray(np.stack([g, g[::-1], np.full_like(g, 128)], -1).astype(np.uint8)).save(dest / "odd_gradient.png")
    Image.new("RGB", (256, 256), (200, 30, 30)).save(dest / "odd_flat_red.png")
    lines = np.zeros((256, 256), np.uint8)
    lines[::16] = 255
    Image.fromarray(lines).save(dest / "odd_lines.png")
    for p in sorted((ROOT / "resources" / "samples").glob("*.jpg")):
        shutil.copy(p, dest / f"odd_{p.name}")


def run(name: str, work: Path, budgets: list[int], seed: int) -> list[dict]:
    from cnndesk.core.labelling.session import LabelSession

    src = LABEL / name
    folder = work / name
    folder.mkdir(parents=True)
    for f in os.listdir(src):
        os.link(src / f, folder / f)
    odd_images(folder)
    truth = {os.path.basename(r["path"]): r["label"] for r in csv.DictReader(open(LABEL / f"{name}-truth.csv"))}
    s = LabelSession.open(folder)
    names = [os.path.basename(p) for p in s.paths]
    odd = np.array([n.startswith("odd_") for n in names])
    y_true = [truth.get(n) for n in names]
    order = np.random.default_rng(seed).permutation(np.flatnonzero(~odd))
    rows = []
    for b in budgets:
        for i in order[:b]:
            if s.state(s.paths[i]) is None:
                s.answer(s.paths[i], y_true[i])
        named = {y_true[i] for i in order[:b]}
        rep = s.suggestions()
        m = s.model()
        new = np.zeros(len(names), bool)
        for r in rep.rows:
            new[r.index] = r.unknown
        old = m.unknown(s.space.z) if m is not None else np.zeros(len(names), bool)
        unanswered = np.array([s.state(p) is None for p in s.paths])
        own = unanswered & ~odd & np.array([y in named for y in y_true])
        row = {"folder": name, "budget": b, "calibrated": bool(m is not None and m.calibrated)}
        for tag, flags in (("old", old), ("new", new)):
            row[tag] = {"odd": int(flags[odd].sum()), "of": int(odd.sum()),
                        "own_flagged": round(float(flags[own].mean()), 4) if own.any() else None}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folders", default="symbols-2,objects-2,textures-2,shapes-2")
    ap.add_argument("--budgets", default="0,30,50,100,200")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--label-dir", default=None, help="where bench/label_data.py's folders are")
    args = ap.parse_args()
    if args.label_dir:
        globals()["LABEL"] = Path(args.label_dir)
    work = Path(tempfile.mkdtemp(prefix="cnndesk-oddities-"))
    out = []
    for name in args.folders.split(","):
        out += run(name, work, [int(b) for b in args.budgets.split(",")], args.seed)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
