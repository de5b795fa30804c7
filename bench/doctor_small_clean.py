"""Wrong-class reports of `cnndesk doctor` on small CLEAN class folders (every report is false).

Builds class folders of 6 and 10 images per class from bench/label_data.py's families (seeds
21-23, not used when the doctor's label check was tuned) and counts the "label" issues of the
cnndesk on PYTHONPATH. Compare two versions by running it with each tree on PYTHONPATH::

    PYTHONPATH=$PWD python bench/doctor_small_clean.py /tmp/small

Uses the real network (about 3-4 ms per image) unless CNNDESK_CACHE_DIR holds the embeddings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import label_data  # noqa: E402

FAMILIES = ("shapes", "symbols", "digits", "textures")


def build(base: Path) -> list[Path]:
    out = []
    for fam in FAMILIES:
        for seed in (21, 22, 23):
            for per in (6, 10):
                d = base / f"ds_{fam}_{seed}_{per}"
                out.append(d)
                if d.exists():
                    continue
                tmp = base / f"pile_{fam}_{seed}_{per}"
                for p, c in label_data.make_pile(tmp, fam, seed, per_class=per).items():
                    (d / c).mkdir(parents=True, exist_ok=True)
                    shutil.move(p, d / c / os.path.basename(p))
                shutil.rmtree(tmp)
    return out


def main() -> None:
    total = 0
    for d in build(Path(sys.argv[1])):
        # cwd: not a checkout, so that ``-m cnndesk`` imports the tree on PYTHONPATH (run from a
        # worktree, its current folder would come first on sys.path and win)
        res = subprocess.run([sys.executable, "-m", "cnndesk", "doctor", str(d), "--quiet", "--format", "json"],
                             capture_output=True, text=True, cwd=d)
        n = sum(1 for i in json.loads(res.stdout)["issues"] if i["kind"] == "label")
        total += n
        print(d.name, n, flush=True)
    print("total", total)


if __name__ == "__main__":
    main()
