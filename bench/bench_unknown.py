"""Unknown detection ("not one of my classes") on images unlike the user's, by family: quick and
full models of three kinds of user data set (small grey digits, textures, colour objects; see
bench/unknown_data.py) against five families of unrelated images (small grey blurred natural
patches, grey glyphs of other alphabets, colour photos, other textures, noise/gradients).

Every model is trained through the app's own training API and scored through the app's own
classifier (the numbers are what a user sees); per family: AUROC (in-class test images against
that family) and the share flagged at the model's own threshold, next to the share of its own
held-out test images flagged. The unrelated images come in two looks drawn from different source
photos, alphabets, texture kinds and noises: "tune" (the one looked at while choosing the
detector) and "report" (the numbers in docs/benchmarks.md).

Usage: python bench/bench_unknown.py [--modes quick,full] [--kinds digits,textures,objects]
         (also: symbols, shapes — user kinds added after the detector was chosen, held out)
         [--full-budget 40] [--out results.json] [--dump DIR]   (DIR: features for experiments)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import unknown_data  # noqa: E402

L2SP_DEFAULT = 100.0  # training.full_keep.L2SP_STRENGTH (not imported here: torch)
SIZES = {"digits": (40, 20), "textures": (70, 30), "objects": (55, 25),  # per class: training, test
         "symbols": (40, 20), "shapes": (55, 25)}  # the held-out kinds added later (unknown_data.EXTRA_KINDS)


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


def batches(clf, paths: list[str], fn, bs: int = 16) -> np.ndarray:
    from cnndesk.core.images.load import load_image

    out = []
    for i in range(0, len(paths), bs):
        x = np.stack([clf.prepare(load_image(p, min_side=clf.preprocess.resize)) for p in paths[i:i + bs]])
        out.append(fn(x))
    return np.concatenate(out)


def rates(own: np.ndarray, families: dict[str, np.ndarray], thr: float) -> dict:
    from cnndesk.core.trust.scores import auroc

    res = {"own_flagged": round(float((own > thr).mean()), 4)}
    allu = np.concatenate(list(families.values()))
    res["unrelated_flagged"] = round(float((allu > thr).mean()), 4)
    res["auroc"] = round(auroc(own, allu), 4)
    res["families"] = {f: {"auroc": round(auroc(own, s), 4), "flagged": round(float((s > thr).mean()), 4)}
                       for f, s in families.items()}
    return res


def run_model(kind: str, mode: str, data: Path, test: list[str], unrelated: dict, args, tmp: Path,
              exposure: bool = True, keep: str | None = None) -> dict:
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train
    from cnndesk.core.trust import novelty as novelty_fit

    held_all: list = []  # full models: the combined held-out scores the threshold comes from
    held_late: list = []  # full models: the late-stage detector's own held-out scores (the detector before
    with_early = novelty_fit.with_early  # the early-stage one; scored on the same network for "old")

    def spy(main, held_main, *rest):
        held_late.append(held_main.copy())
        out = with_early(main, held_main, *rest)
        held_all.append(out[1].copy())
        return out

    novelty_fit.with_early = spy

    cfg = TrainConfig(mode=mode)
    path = tmp / f"{kind}-{mode}{'' if exposure else '-noexp'}{'' if keep is None else '-keep' + (keep or 'off').replace('@', '-')}.safetensors"
    if mode == "full":
        cfg.time_budget_s = args.full_budget
        cfg.outlier_exposure = exposure
        if args.full_size:
            cfg.image_size = args.full_size
        if keep is not None:  # "l2sp@300": L2-SP with another strength (experiments)
            from cnndesk.core.training import full_keep

            if keep.startswith("blocks"):  # "blocksN": train the last N blocks only (earlier stages frozen)
                cfg.unfrozen_blocks, keep = int(keep[6:]), ""
            keep, _, strength = keep.partition("@")
            full_keep.L2SP_STRENGTH = float(strength) if strength else L2SP_DEFAULT
            cfg.keep_pretrained = keep
    t = time.perf_counter()
    ds = scan(data)
    try:
        model = train(ds, cfg)
    finally:
        novelty_fit.with_early = with_early
    train_s = time.perf_counter() - t

    model.save(path)
    clf = Classifier(str(path))
    own = batches(clf, test, lambda x: clf.run(x)[1])
    t = time.perf_counter()
    fams = {look: {f: batches(clf, ps, lambda x: clf.run(x)[1]) for f, ps in unrelated[look].items()}
            for look in ("tune", "report")}
    n_u = sum(len(ps) for ps in unrelated["report"].values()) * 2
    res = {"train_s": round(train_s, 1), "classify_ms_per_image": round((time.perf_counter() - t) / n_u * 1000, 1),
           "metric": clf.novelty.info().get("metric"), "val_accuracy": model.metrics().get("val_accuracy"),
           "test_accuracy": None}
    names = [Path(p).parent.name for p in test]
    y = np.array([clf.labels.index(n) for n in names])
    lg = batches(clf, test, lambda x: clf.run(x)[0])
    res["test_accuracy"] = round(float((lg.argmax(1) == y).mean()), 4)
    for look in ("tune", "report"):
        res[look] = rates(own, fams[look], clf.novelty_threshold)
    nov = clf.novelty
    if held_late and nov.early is not None:  # the same network, its late-stage detector alone (before)
        late = lambda ps: batches(clf, ps, lambda x: nov._score(clf.engine.features.run(x)[:, nov.lead:]))  # noqa: E731
        thr = float(np.quantile(held_late[-1], nov.quantile))
        own_l = late(test)
        res["late_only"] = {look: rates(own_l, {f: late(ps) for f, ps in unrelated[look].items()}, thr)
                            for look in ("tune", "report")}
    if held_all and nov.early is not None:  # raw scores, for threshold rules judged offline
        res["scores"] = {"held": held_all[-1].round(4).tolist(), "synth_val": synth_val_scores(clf, ds).round(4).tolist(),
                         "own": own.round(4).tolist(), "threshold": float(clf.novelty_threshold),
                         "report": {f: s.round(4).tolist() for f, s in fams["report"].items()},
                         "tune": {f: s.round(4).tolist() for f, s in fams["tune"].items()}}
    if args.dump:
        dump(clf, ds, kind, mode, test, y, unrelated, Path(args.dump))
    return res


def synth_val_scores(clf, ds) -> np.ndarray:
    """Scores of outliers synthesised (as training does) from the validation images: held-out
    outliers (their sources are not in the detector's outlier bank)."""
    import torch

    from cnndesk.core.images.load import load_image
    from cnndesk.core.training.full_data import Batch
    from cnndesk.core.training.full_trust import synthetic_outliers

    paths = [p for p, _ in ds.val]
    xs = [torch.from_numpy(np.stack([clf.prepare(load_image(p, min_side=clf.preprocess.resize))
                                     for p in paths[i:i + 16]])) for i in range(0, len(paths), 16)]
    out = synthetic_outliers([Batch(x, torch.zeros(len(x), dtype=torch.long)) for x in xs], len(paths), seed=1)
    return np.concatenate([clf.run(b.x.numpy())[1] for b in out])


def dump(clf, ds, kind, mode, test, y_test, unrelated, folder: Path) -> None:
    """The detector's input features of every image, for experiments with other detectors."""
    feats = clf.engine.features.run
    items = ds.train + ds.val
    arrays = {"x_train": batches(clf, [p for p, _ in items], feats), "y_train": np.array([yy for _, yy in items]),
              "is_val": np.arange(len(items)) >= len(ds.train),
              "x_test": batches(clf, test, feats), "y_test": y_test}
    for look in ("tune", "report"):
        for f, ps in unrelated[look].items():
            arrays[f"u_{look}_{f}"] = batches(clf, ps, feats)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{kind}-{mode}.npz", **arrays)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="quick,full")
    ap.add_argument("--kinds", default=",".join(unknown_data.KINDS))
    ap.add_argument("--per-family", type=int, default=30)
    ap.add_argument("--full-budget", type=float, default=40.0, help="full mode's time budget per model (s)")
    ap.add_argument("--full-size", type=int, default=None, help="full mode's image size (default: chosen from the images)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--dump", default=None, help="folder for the detector's input features (experiments)")
    ap.add_argument("--keep-cache", action="store_true", help="reuse $CNNDESK_CACHE_DIR (default: a fresh one)")
    ap.add_argument("--seed", type=int, default=0, help="another draw of every image (0: the default sets)")
    ap.add_argument("--exposure", default="on", choices=("on", "off", "both"),
                    help="full models: outlier exposure while fine-tuning; both: each full model without, then with")
    ap.add_argument("--keep", default=None,
                    help="full models: comma list of TrainConfig.keep_pretrained values to train side by side "
                    "(off = none, l2sp, distill, l2sp@STRENGTH, blocksN = the last N blocks trained); default: the "
                    "training's default only")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-bench-unknown-"))
    if not args.keep_cache:
        os.environ["CNNDESK_CACHE_DIR"] = str(tmp / "cache")
    os.environ["CNNDESK_DATA_DIR"] = str(tmp / "data")
    s = 10 * args.seed
    unrelated = {look: unknown_data.make_unrelated(tmp / f"unrelated-{look}", look, args.per_family, seed=3 + s)
                 for look in ("tune", "report")}
    results = {"load_start": load(), "cpu": os.cpu_count(), "per_family": args.per_family, "seed": args.seed,
               "models": {}}
    for kind in args.kinds.split(","):
        n_tr, n_te = SIZES[kind]
        data = unknown_data.make_user_set(tmp / f"{kind}-train", kind, n_tr, seed=s)
        test_root = unknown_data.make_user_set(tmp / f"{kind}-test", kind, n_te, seed=s + 1)
        test = sorted(str(p) for p in test_root.rglob("*.png"))
        runs = []  # (mode, outlier exposure): full models without it = before it (issue 23)
        for mode in args.modes.split(","):
            if mode == "full" and args.exposure in ("off", "both"):
                runs.append((mode, False))
            if mode != "full" or args.exposure != "off":
                runs.append((mode, True))
        if args.keep is not None:  # full models side by side, one per way of keeping the pretrained features
            runs = [(m, e, k) for m, e in runs for k in ([None] if m != "full" else args.keep.split(","))]
        else:
            runs = [(m, e, None) for m, e in runs]
        for mode, exposure, keep in runs:
            res = run_model(kind, mode, data, test, unrelated, args, tmp, exposure,
                            None if keep is None else ("" if keep == "off" else keep))
            name = f"{kind}/{mode}" + ("" if exposure or mode != "full" else "-noexp") + (f"-keep-{keep}" if keep else "")
            results["models"][name] = res
            r = res["report"]
            print(f"{name}: train {res['train_s']} s, test acc {res['test_accuracy']}, own flagged "
                  f"{r['own_flagged']}, unrelated flagged {r['unrelated_flagged']} (AUROC {r['auroc']}); "
                  + ", ".join(f"{f} {v['flagged']:.2f}/{v['auroc']:.3f}" for f, v in r["families"].items()), flush=True)
            if "late_only" in res:
                r = res["late_only"]["report"]
                print(f"   late stages alone: own {r['own_flagged']}, unrelated {r['unrelated_flagged']} (AUROC "
                      f"{r['auroc']}); " + ", ".join(f"{f} {v['flagged']:.2f}" for f, v in r["families"].items()),
                      flush=True)
    results["load_end"] = load()
    text = json.dumps(results, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
