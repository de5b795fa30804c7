"""Experiment helper for issue 23 (fifth step): judges, offline on ``exp_full_components.py``'s
output, (a) the early-stage detector's share of a full model's score (``novelty.with_early(weight=)``)
with this tree's threshold rule (95th percentile of the validation scores, the 80 % upper bound
where the held-out synthesised outliers are far: ``novelty.widen_if_separated``), and (b) the early
(pretrained) stages alone with a threshold out of fold on every image, as quick models do.
Own test flagged / unrelated flagged (report look) per model; "w": the wide-gap rule applied; "!":
short of the target (>= 0.95 unrelated at <= 0.10 own).

Usage: python bench/exp_early_share.py components.npz [--rows OLD NEW] [--oof]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPORT = ["grey_patches", "other_glyphs", "colour_photos", "textures", "noise"]


def _combined(z, m: str, key: str, w: float) -> np.ndarray:
    """The score with the early share w, on the offline scale 2 x ((1 - w) late + w early) (the
    code's 0.5 x (late + w / (1 - w) early) is the same up to a factor: the same flags)."""
    return 2 * ((1 - w) * z[f"{m}|late_{key}"] + w * z[f"{m}|early_{key}"])


def _threshold(h: np.ndarray, o: np.ndarray) -> tuple[float, bool]:
    from cnndesk.core.trust.novelty import WIDE_GAP, upper_quantile

    wide = bool(np.quantile(o, 0.05) >= WIDE_GAP * h.max())
    return (upper_quantile(h, 0.95) if wide else float(np.quantile(h, 0.95))), wide


def _rates(own, fams, t):
    from cnndesk.core.trust.scores import auroc

    u = np.concatenate(list(fams.values()))
    return (float((own > t).mean()), float((u > t).mean()), auroc(own, u),
            {f: (float((v > t).mean()), auroc(own, v)) for f, v in fams.items()})


def _models(z) -> list[str]:
    return sorted({k.rsplit("|", 1)[0] for k in z.files}, key=lambda m: (m.split("|")[0], int(m.split("|")[1])))


def sweep(z, weights=(0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 1.0), look="report") -> None:
    for w in weights:
        ok, cells = 0, []
        for m in _models(z):
            t, wide = _threshold(_combined(z, m, "held", w), _combined(z, m, "synthval", w))
            own, u, _, _ = _rates(_combined(z, m, "own", w), {f: _combined(z, m, f"{look}_{f}", w) for f in REPORT}, t)
            good = own <= 0.10 and u >= 0.95
            ok += good
            kind, seed = m.split("|")[:2]
            cells.append(f"{kind[:3]}{seed}{'w' if wide else ''} {own:.3f}/{u:.3f}{'' if good else '!'}")
        print(f"early share {w:.2f}: {ok}/{len(cells)} at the target | " + ", ".join(cells))


def rows(z, old: float, new: float) -> None:
    """Markdown rows old -> new share, same networks."""
    for m in _models(z):
        out = []
        for w in (old, new):
            t, wide = _threshold(_combined(z, m, "held", w), _combined(z, m, "synthval", w))
            out.append((*_rates(_combined(z, m, "own", w), {f: _combined(z, m, f"report_{f}", w) for f in REPORT}, t), wide))
        (o0, u0, a0, f0, _), (o1, u1, a1, f1, wide) = out
        kind, seed = m.split("|")[:2]
        print(f"| {kind}, {seed} | {o0:.3f} → {o1:.3f}{' (rule)' if wide else ''} | {u0:.3f} → {u1:.3f} | {a0:.3f} → {a1:.3f} | "
              + " | ".join(f"{f0[f][0]:.2f} → {f1[f][0]:.2f}" for f in REPORT)
              + f" | {f0['textures'][1]:.3f} → {f1['textures'][1]:.3f} |")


def oof(z) -> None:
    """This tree's detector against the early stages alone, out of fold on every image."""
    for m in _models(z):
        if f"{m}|oof_held" not in z.files:
            continue
        t, _ = _threshold(_combined(z, m, "held", 0.5), _combined(z, m, "synthval", 0.5))
        cur = _rates(_combined(z, m, "own", 0.5), {f: _combined(z, m, f"report_{f}", 0.5) for f in REPORT}, t)
        t2 = float(np.quantile(z[f"{m}|oof_held"], 0.95))
        new = _rates(z[f"{m}|oof_own"], {f: z[f"{m}|oof_report_{f}"] for f in REPORT}, t2)
        kind, seed = m.split("|")[:2]
        print(f"| {kind}, {seed} | {cur[0]:.3f} / {cur[1]:.3f} | {new[0]:.3f} / {new[1]:.3f} | {cur[2]:.3f} → {new[2]:.3f} | "
              f"{cur[3]['textures'][0]:.2f} → {new[3]['textures'][0]:.2f} |")


def main() -> None:
    z = np.load(sys.argv[1])
    if "--rows" in sys.argv:
        i = sys.argv.index("--rows")
        rows(z, float(sys.argv[i + 1]), float(sys.argv[i + 2]))
    elif "--oof" in sys.argv:
        oof(z)
    else:
        sweep(z)
        sweep(z, look="tune")


if __name__ == "__main__":
    main()
