"""The Label tab's automatic visual groups, old (k-means cells, count by silhouette) vs new
(graph-merged groups, count by modularity): agreement with the true classes on the generated label
folders (bench/label_data.py, embedded by bench_label.py). The old code is read from the file named
by OLD_PICKING (e.g. `git show 03cc154:cnndesk/core/labelling/picking.py > /tmp/old_picking.py`).

Usage: OLD_PICKING=/tmp/old_picking.py python bench/bench_label_groups.py SEEDS FAMILIES
       (e.g. 0,1,2,3 symbols,objects; LABEL_DIR defaults to bench/out/label, CNNDESK_CACHE_DIR to bench/out/cache)
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
os.environ.setdefault("CNNDESK_CACHE_DIR", str(HERE / "out" / "cache"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import label_data  # noqa: E402

from cnndesk.core.labelling import LabelSession, grouping  # noqa: E402
from cnndesk.core.predict.embeddings import embed_paths  # noqa: E402

OUT = Path(os.environ.get("LABEL_DIR", HERE / "out" / "label"))  # the generated folders


def old_picking():
    spec = importlib.util.spec_from_file_location("old_picking", os.environ["OLD_PICKING"])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["old_picking"] = mod
    spec.loader.exec_module(mod)
    return mod


def nmi(a, b) -> float:
    """Normalised mutual information (arithmetic mean of the entropies)."""
    a = np.unique(a, return_inverse=True)[1]
    b = np.unique(b, return_inverse=True)[1]
    c = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(c, (a, b), 1)
    p = c / len(a)
    pa, pb = p.sum(1), p.sum(0)
    nz = p > 0
    mi = (p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum()
    ha = -(pa[pa > 0] * np.log(pa[pa > 0])).sum()
    hb = -(pb[pb > 0] * np.log(pb[pb > 0])).sum()
    return float(2 * mi / (ha + hb))


def purity(g, y) -> float:
    return sum(np.bincount(y[g == c]).max() for c in np.unique(g)) / len(y)


def own_groups(g, y) -> int:
    """Classes with a group of their own: >= half the class in one group that is >= half that class."""
    hit = 0
    for k in np.unique(y):
        m = y == k
        top = np.bincount(g[m]).argmax()
        hit += bool((g[m] == top).mean() >= 0.5 and (y[g == top] == k).mean() >= 0.5)
    return hit


def embed(paths, progress=None, cancel=None, errors=None):
    return embed_paths(paths, stages="multi", errors=errors)


def main() -> None:
    seeds = [int(s) for s in sys.argv[1].split(",")]
    old = old_picking()
    print("| folder | classes | groups old → new | NMI old → new | purity old → new | classes with their own group old → new |")
    print("|---|---|---|---|---|---|")
    for fam in sys.argv[2].split(","):
        for seed in seeds:
            d = OUT / f"{fam}-{seed}"
            if not d.exists():
                continue
            truth = {os.path.join(str(d), os.path.basename(k)): v for k, v in label_data.read_truth(d).items()}
            s = LabelSession.open(d, embed=embed, duplicates=False, cache_space=False)
            names = sorted(set(truth.values()))
            y = np.array([names.index(truth[p]) for p in s.paths])
            so = old.space_from_z(s.space.z)
            ko = old.choose_group_count(so, 0)
            go, _ = old.kmeans(so.coarse, ko, 0)
            kn = grouping.choose_group_count(s.space, 0)
            gn = grouping.visual_groups(s.space, kn, 0)
            print(f"| {fam}-{seed} | {len(names)} | {ko} → **{kn}** | {nmi(go, y):.2f} → **{nmi(gn, y):.2f}** | "
                  f"{purity(go, y):.2f} → **{purity(gn, y):.2f}** | {own_groups(go, y)} → **{own_groups(gn, y)}** |",
                  flush=True)


if __name__ == "__main__":
    main()
