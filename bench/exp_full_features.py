"""Experiment helper for issue 23 (full models' unknown detection): trains a full model through
the app's API on a bench_unknown user set and dumps, for every image (training, validation, test,
unrelated tune/report looks, the synthesised outliers), the pooled (mean, max) outputs of *every*
stage and the penultimate layer of both the fine-tuned network and the base (ImageNet) network.
Offline detectors are then compared on these (bench/exp_full_detectors.py).

Usage: python bench/exp_full_features.py --kinds digits,textures --out DIR [--seed-test 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import unknown_data  # noqa: E402
from bench_unknown import SIZES  # noqa: E402

CAPTURE: dict = {}


def all_stage_feats(model, head, loader, arch):
    import torch

    from cnndesk.core.networks.adapters import adapter_for
    from cnndesk.core.training import full_trust

    stages = adapter_for(arch).stage_list(model)
    f, lg, y, _ = full_trust.embeddings_and_logits(model, head, loader, torch.device("cpu"), False, torch.float32,
                                                   stages)
    return f, lg, y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", default="digits,textures")
    ap.add_argument("--out", required=True)
    ap.add_argument("--full-budget", type=float, default=40.0)
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--test-seed", type=int, default=1)
    ap.add_argument("--unrelated-seed", type=int, default=3)
    args = ap.parse_args()
    import torch

    from cnndesk.core.networks.adapters import adapter_for
    from cnndesk.core.runtime.resolve import torch_model
    from cnndesk.core.training import full_loop, full_trust
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train
    from cnndesk.core.training.full_data import Images, collate

    orig = full_loop.calibrate

    def spy(model, head, data, prec, ds, seed, errors, extra, arch=""):
        CAPTURE.update(model=model, head=head, data=data, arch=arch, seed=seed)
        return orig(model, head, data, prec, ds, seed, errors, extra, arch)

    full_loop.calibrate = spy
    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-exp-full-"))
    os.environ.setdefault("CNNDESK_CACHE_DIR", str(tmp / "cache"))
    os.environ["CNNDESK_DATA_DIR"] = str(tmp / "data")
    unrelated = {look: unknown_data.make_unrelated(tmp / f"unrelated-{look}", look, 30, seed=args.unrelated_seed)
                 for look in ("tune", "report")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for kind in args.kinds.split(","):
        n_tr, n_te = SIZES[kind]
        data_root = unknown_data.make_user_set(tmp / f"{kind}-train", kind, n_tr, seed=args.train_seed)
        test_root = unknown_data.make_user_set(tmp / f"{kind}-test", kind, n_te, seed=args.test_seed)
        ds = scan(data_root)
        cfg = TrainConfig(mode="full")
        cfg.time_budget_s = args.full_budget
        model_res = train(ds, cfg)
        c = CAPTURE
        data, arch = c["data"], c["arch"]
        val_tf, min_side = data.val_set.transform, data.val_set.min_side

        def loader(items, val_tf=val_tf, min_side=min_side):
            return torch.utils.data.DataLoader(Images(items, val_tf, min_side), batch_size=32, collate_fn=collate)

        test = sorted(str(p) for p in test_root.rglob("*.png"))
        y_test = np.array([ds.classes.index(Path(p).parent.name) for p in test])
        sets = {"train": data.plain_loader, "val": data.val_loader, "test": loader(list(zip(test, y_test, strict=True)))}
        for look in ("tune", "report"):
            for fam, ps in unrelated[look].items():
                sets[f"u_{look}_{fam}"] = loader([(p, 0) for p in ps])
        synth = full_trust.synthetic_outliers(data.plain_loader, len(ds.train), c["seed"])
        base_model = torch_model(model_res.base, "logits")
        base_head = adapter_for(arch).head(base_model)
        base_model.eval()
        arrays = {"classes": np.array(ds.classes)}
        for tag, (m, h) in {"ft": (c["model"], c["head"]), "base": (base_model, base_head)}.items():
            widths = [2 * s.out_channels if hasattr(s, "out_channels") else None
                      for s in adapter_for(arch).stage_list(m)]
            for name, ld in sets.items():
                f, lg, y = all_stage_feats(m, h, ld, arch)
                arrays[f"{tag}_{name}"] = f
                if tag == "ft":
                    arrays[f"logits_{name}"] = lg
                    arrays[f"y_{name}"] = y
            f, _, _ = all_stage_feats(m, h, synth, arch)
            arrays[f"{tag}_synth"] = f
            # stage widths: run one image through and record each stage's channels
            chans = []
            hooks = [s.register_forward_hook(lambda _m, _i, o, chans=chans: chans.append(o.shape[1]))
                     for s in adapter_for(arch).stage_list(m)]
            with torch.inference_mode():
                m(next(iter(sets["val"])).x[:1])
            for hk in hooks:
                hk.remove()
            arrays[f"{tag}_chans"] = np.array(chans)
            del widths
        arrays["taps"] = np.array([i % len(chans) for i in range(len(chans))][slice(*adapter_for(arch).taps)])
        np.savez(out / f"{kind}.npz", **arrays)
        print(kind, "saved", {k: v.shape for k, v in arrays.items() if hasattr(v, 'shape')}, flush=True)


if __name__ == "__main__":
    main()
