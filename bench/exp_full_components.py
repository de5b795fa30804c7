"""Experiment helper for issue 23 (fifth step): the two detectors of a saved full model
("multi_early": late stages and pretrained early stages), refitted as training does on the model's
own features, scored apart, so that ways of combining them (weights) and thresholds can be judged
offline on the images of a finished ``bench_unknown.py`` run (its temporary folder keeps the
generated sets and the model files).

Usage: python bench/exp_full_components.py OUT.npz RUN_DIR:MODEL_FILE:KIND:SEED [...]
Writes, per model, the held-out (validation) scores of each detector, those of outliers
synthesised from the validation images, own test images and every unrelated family (both looks).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _feats(clf, paths, bs=16):
    from cnndesk.core.images.load import load_image

    out = []
    for i in range(0, len(paths), bs):
        x = np.stack([clf.prepare(load_image(p, min_side=clf.preprocess.resize)) for p in paths[i:i + bs]])
        out.append(clf.engine.features.run(x))
    return np.concatenate(out)


def _synth(clf, paths, seed, bs=32):
    import torch

    from cnndesk.core.images.load import load_image
    from cnndesk.core.training.full_data import Batch
    from cnndesk.core.training.full_trust import synthetic_outliers

    xs = [torch.from_numpy(np.stack([clf.prepare(load_image(p, min_side=clf.preprocess.resize))
                                     for p in paths[i:i + bs]])) for i in range(0, len(paths), bs)]
    out = synthetic_outliers([Batch(x, torch.zeros(len(x), dtype=torch.long)) for x in xs], len(paths), seed=seed)
    return np.concatenate([clf.engine.features.run(b.x.numpy()) for b in out])


def components(run_dir: Path, model_file: str, kind: str) -> dict:
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.trust import novelty as nf
    from cnndesk.core.trust import scores as trust

    clf = Classifier(str(run_dir / model_file))
    nov = clf.novelty
    ds = scan(run_dir / f"{kind}-train")
    tr, va = [p for p, _ in ds.train], [p for p, _ in ds.val]
    y_tr, y_va = np.array([y for _, y in ds.train]), np.array([y for _, y in ds.val])
    f_tr, f_va = _feats(clf, tr), _feats(clf, va)
    out_tr, out_va = _synth(clf, tr, 0), _synth(clf, va, 1)
    lead, width = nov.lead, len(nov.early.mean)
    test = sorted(str(p) for p in (run_dir / f"{kind}-test").rglob("*.png"))
    sets = {"own": _feats(clf, test)}
    for look in ("tune", "report"):
        for fam in sorted(p.name for p in (run_dir / f"unrelated-{look}").iterdir() if p.is_dir()):
            sets[f"{look}_{fam}"] = _feats(clf, sorted(str(p) for p in (run_dir / f"unrelated-{look}" / fam).rglob("*.png")))
    res = {}
    with trust.one_blas_thread():
        for name, cols in (("late", slice(lead, None)), ("early", slice(0, width))):
            det, held = nf.fit_novelty_heldout(f_tr[:, cols], y_tr, f_va[:, cols], seed=0, y_held=y_va,
                                               outliers=out_tr[:, cols])
            res[f"{name}_held"] = held
            res[f"{name}_synthval"] = det.score(out_va[:, cols])
            # the saved (final) detectors score new images, as the app does
            score = nov._score if name == "late" else nov.early.score
            for key, f in sets.items():
                res[f"{name}_{key}"] = score(f[:, cols])
            # the detector the held-out scores came from (training images only in its bank and
            # class statistics): is the threshold's calibration carried over to the final one?
            only = copy.copy(det)
            only.bank = only.project(f_tr[:, cols])
            only.means, only.icov = nf.class_gaussians(only.coords(f_tr[:, cols]), y_tr)
            res[f"{name}_own_trainonly"] = only.score(sets["own"][:, cols])
            res[f"{name}_held_final"] = det.score(f_va[:, cols])  # validation images once in the final detector
        # the early (pretrained) stages alone, out of fold on every image as quick models do: their
        # held-out scores are honest for the training images too, so 5x more of them set the threshold
        x_all, y_all = np.concatenate([f_tr, f_va])[:, :width], np.concatenate([y_tr, y_va])
        oof, held_oof = nf.fit_novelty_oof(x_all, y_all, np.arange(len(x_all)) % 5, features="multi",
                                           outliers=out_tr[:, :width])
        res["oof_held"] = held_oof
        # the late stages out of fold too (their training images were fitted by the network: the
        # tail's shape, not its place, is what a threshold could borrow from them)
        _, res["oof_late_held"] = nf.fit_novelty_oof(np.concatenate([f_tr, f_va])[:, lead:], y_all,
                                                     np.arange(len(x_all)) % 5, features="multi",
                                                     outliers=out_tr[:, lead:])
        res["oof_is_val"] = np.arange(len(x_all)) >= len(f_tr)
        for key, f in sets.items():
            res[f"oof_{key}"] = oof.score(f[:, :width])
    res["stored_threshold"] = np.float64(nov.threshold)
    # the training code's own fit on the same features (this tree's weights and threshold rule)
    from cnndesk.core.training import full_trust

    logits = np.zeros((len(f_va), int(max(y_tr.max(), y_va.max())) + 1), np.float32)  # (temperature only)
    fitted, _, _, held = full_trust.fit_trust(f_tr, f_va, logits, y_va, seed=0, y_train=y_tr,
                                              features="multi_early", outliers=out_tr, early=(lead, width))
    with trust.one_blas_thread():
        nf.widen_if_separated(fitted, held, fitted.score(out_va))
    res["code_threshold"] = np.float64(fitted.threshold)
    res["code_own_flagged"] = np.float64((fitted.score(sets["own"]) > fitted.threshold).mean())
    return res


def main() -> None:
    out = {}
    for spec in sys.argv[2:]:
        run_dir, model_file, kind, seed = spec.split(":")
        res = components(Path(run_dir), model_file, kind)
        for k, v in res.items():
            out[f"{kind}|{seed}|{model_file}|{k}"] = np.asarray(v)
        print(spec, "done", flush=True)
    np.savez(sys.argv[1], **out)


if __name__ == "__main__":
    main()
