"""Issue 22, asks after the cold start: does exploring find the classes not named yet sooner?

    PYTHONPATH=. python bench/bench_label_explore.py objects,objects_alt "none,EXPLORE=far;EXPLORE_SHARE=0.2" 3 0,1

Arguments: families (comma-separated), configurations (comma-separated; each ``NAME=VALUE;...``
sets :mod:`cnndesk.core.labelling.picking` constants, ``none`` = the defaults), session seeds per
folder (the first is the folder's seed, as bench_label.py; the others seed*100 + s: other k-means
draws of the cold start and the diversity clusters), folder seeds (0,1 tuning; 2,3 held out).
Per folder and configuration: bench_label.simulate without the random baseline (bench_label.py gives
it). Prints labels until every class has one per run, then per configuration: the mean, the paired
difference to the first configuration (± its standard error), accuracy at 10/20/50/100/200 labels,
the lowest precision of the >= 90 % suggestions and the in-process ask time relative to the first
(same process, interleaved per folder). ``TUNE_JSON``: where the per-run rows go.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_label as bl  # noqa: E402

from cnndesk.core.labelling import picking  # noqa: E402


def _value(default, v: str):
    if isinstance(default, bool):
        return v == "True"
    if default is None or isinstance(default, str):
        return v
    return type(default)(v)


def main() -> None:
    fams = sys.argv[1].split(",")
    configs = sys.argv[2].split(",")
    sseeds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    seeds = [int(v) for v in sys.argv[4].split(",")] if len(sys.argv) > 4 else [0, 1]
    defaults = {k: getattr(picking, k) for k in dir(picking) if k.isupper()}
    res: dict = {}
    for fam in fams:
        for seed in seeds:
            _, truth = bl.folder(fam, seed)
            paths = sorted(truth)
            x = bl.embeddings(paths)
            for cfg in configs:
                for k, v in defaults.items():
                    setattr(picking, k, v)
                for kv in cfg.split(";"):
                    if "=" in kv:
                        k, v = kv.split("=")
                        setattr(picking, k, _value(defaults[k], v))
                for ss in range(sseeds):
                    r = bl.simulate(fam, seed * 100 + ss if ss else seed, x, paths, truth, draws=0)
                    res.setdefault(cfg, []).append((fam, seed, ss, r.get("labels_to_all_classes", 250),
                                                    [r["app"][b]["accuracy"] for b in r["app"]],
                                                    [r["app"][b]["precision90"] for b in r["app"]],
                                                    r["ask_seconds_in_process"]))
            print(fam, seed, {k: [v[3] for v in vs if v[0] == fam and v[1] == seed] for k, vs in res.items()}, flush=True)
    for k, vs in res.items():
        first = {(v[0], v[1], v[2]): v for v in res[configs[0]]}
        d = np.array([v[3] - first[(v[0], v[1], v[2])][3] for v in vs])
        acc = np.mean([v[4] for v in vs], 0)
        p90 = [min([v[5][i] for v in vs if v[5][i] is not None] or [1.0]) for i in range(len(vs[0][5]))]
        t = np.mean([v[6] for v in vs]) / np.mean([v[6] for v in first.values()])
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
        print(f"{k}: labels to all classes mean {np.mean([v[3] for v in vs]):.1f}, vs {configs[0]} {d.mean():+.1f} ± {se:.1f}"
              f" (better/worse/same {int((d < 0).sum())}/{int((d > 0).sum())}/{int((d == 0).sum())}); accuracy "
              f"{np.round(100 * acc, 1).tolist()}; lowest precision at >= 90 % {np.round(p90, 3).tolist()}; ask time x{t:.2f}")
    print("load average", [round(v, 1) for v in os.getloadavg()])
    out = os.environ.get("TUNE_JSON")
    if out:
        Path(out).write_text(json.dumps(res))


if __name__ == "__main__":
    main()
