"""Experiment for issue 23 (sixth step): more held-out in-class scores for a full model's threshold,
judged offline on saved networks (no retraining). ``dump`` reopens finished ``bench_unknown.py``
runs (their generated images and model files) and saves, per model, the classifier's
``multi_early`` features of the training and validation images, of outliers synthesised from each
(as training makes them), of the own test images and of every unrelated family (both looks);
``score`` refits the detector as training does and compares threshold variants that use more
held-out scores (cross-fitted training images) with the current one.

Usage: python bench/exp_heldout_scores.py dump OUT_DIR RUN_DIR:MODEL_FILE:KIND:SEED [...]
       python bench/exp_heldout_scores.py score OUT_DIR [--seeds 0-5] [--cache FILE] [--variants A,B]
       python bench/exp_heldout_scores.py time OUT_DIR KIND-SEED [...]   (the detector's fit, CPU s)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def dump(out_dir: Path, spec: str) -> None:
    from exp_full_components import _feats, _synth

    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.training.datasets import scan

    run_dir, model_file, kind, seed = spec.split(":")
    run_dir = Path(run_dir)
    target = out_dir / f"{kind}-{seed}.npz"
    if target.exists():
        return
    clf = Classifier(str(run_dir / model_file))
    nov = clf.novelty
    ds = scan(run_dir / f"{kind}-train")
    tr, va = [p for p, _ in ds.train], [p for p, _ in ds.val]
    arrays = {"y_tr": np.array([y for _, y in ds.train]), "y_va": np.array([y for _, y in ds.val]),
              "f_tr": _feats(clf, tr), "f_va": _feats(clf, va), "out_tr": _synth(clf, tr, 0),
              "out_va": _synth(clf, va, 1), "lead": np.int64(nov.lead), "width": np.int64(len(nov.early.mean)),
              "stored_threshold": np.float64(nov.threshold)}
    test = sorted(str(p) for p in (run_dir / f"{kind}-test").rglob("*.png"))
    arrays["own"] = _feats(clf, test)
    for look in ("tune", "report"):
        for fam in sorted(p.name for p in (run_dir / f"unrelated-{look}").iterdir() if p.is_dir()):
            arrays[f"u_{look}_{fam}"] = _feats(clf, sorted(str(p) for p in (run_dir / f"unrelated-{look}" / fam).rglob("*.png")))
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(target, **arrays)
    print(spec, "dumped", flush=True)


def fit_time(out_dir: Path, name: str, repeats: int = 3) -> None:
    """CPU seconds of training's detector fit (``full_trust.fit_trust``) on a dumped model's
    features, alone (today) and with the five folds' fits the cross-fitted scores need."""
    import time

    from exp_heldout_variants import _fit, cross_fitted

    from cnndesk.core.trust import scores as trust

    z = np.load(out_dir / f"{name}.npz")
    args = (z["f_tr"], z["y_tr"], z["f_va"], z["y_va"], z["out_tr"], int(z["lead"]), int(z["width"]))
    best = {}
    with trust.one_blas_thread():  # as training fits it
        for _ in range(repeats):
            for folds in (0, 5):
                t = time.process_time()
                _fit(*args)
                if folds:
                    cross_fitted(*args, folds)
                best[folds] = min(best.get(folds, 1e9), time.process_time() - t)
    print(f"{name}: {len(z['f_tr'])} training + {len(z['f_va'])} validation images; detector fit "
          f"{best[0]:.2f} CPU s today, {best[5]:.2f} with 5-fold cross-fitted scores", flush=True)


def main() -> None:
    if sys.argv[1] == "time":
        for name in sys.argv[3:]:
            fit_time(Path(sys.argv[2]), name)
    elif sys.argv[1] == "dump":
        for spec in sys.argv[3:]:
            dump(Path(sys.argv[2]), spec)
    else:
        import exp_heldout_variants

        exp_heldout_variants.main(sys.argv[2:])


if __name__ == "__main__":
    main()
