"""Models you can trust: unknown-flag rates, calibration, and quick/full accuracy and time, new
defaults against the previous ones (the code at BASE_COMMIT, run from a `git archive` of it) side
by side in one run, on generated data (tests/core/trust_data.py):

* symbols: 10 classes of small drawn glyphs (22 px, upscaled to 112), 100 training and 40 test
  images per class (test drawn with another seed: held out);
* textures: 3 classes of procedural textures, 60 training and 40 test images per class;
* unrelated: 150 images (photo crops, portrait-like drawings, handwriting-like scribbles).

Quick times include embedding from an empty embedding cache; the one-off ONNX exports of the base
network are done first and not counted. Test images are classified by the current code (older
model files load with temperature 1 and no unknown flag).

Full mode only, old against new defaults on genuinely small files (32 px symbols, like the held-out
"small unusual images" set): ``--full-only`` (with ``--old-timeout S``: the old defaults are stopped
after S seconds and reported with the epochs they finished). The "old" defaults here are the code at
FULL_BASE_COMMIT (96 px floor, epochs from an image count, bf16 whenever native, all threads).

Usage: python bench/bench_trust.py [--skip-full] [--full-per-class N] [--out results.json]
       python bench/bench_trust.py --full-only [--old-timeout 600] [--full old|new|both]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "core"))
BASE_COMMIT = "c682559"  # the code before this work: last-layer quick head, old full defaults
FULL_BASE_COMMIT = "3947ed5"  # full-mode defaults before the time budget / 64 px / speed probe


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


def files(root: Path) -> tuple[list[str], list[str]]:
    paths = sorted(str(p) for p in root.rglob("*.png"))
    return paths, [Path(p).parent.name for p in paths]


def train_cli(pythonpath: Path, data: Path, out: Path, *extra: str, timeout: float | None = None) -> tuple[dict, float]:
    """Train with the code under ``pythonpath``; (final metrics, wall seconds). With ``timeout``, a
    run still going after it is stopped and reported as {"timed_out": True, "epoch_lines": [...]}."""
    import resource

    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "cnndesk", "train", str(data), "--out", str(out), *extra],
                           capture_output=True, text=True, env=env, cwd=pythonpath,  # cwd: `-m` imports from it
                           timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {"timed_out": True, "epoch_lines": [ln for ln in err.splitlines() if ln.startswith("epoch")],
                "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1)}, time.perf_counter() - t
    wall = time.perf_counter() - t
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"training failed ({pythonpath}): {r.stderr[-2000:]}")
    metrics = json.loads(r.stdout.strip().splitlines()[-1])
    metrics["cpu_s"] = round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1)
    return metrics, wall


def full_only(args, tmp: Path) -> dict:
    """Full mode, old against new defaults, on 32 px symbols (100 training + 40 held-out test images
    per class); the one-off export of the base network is done first and not counted."""
    import trust_data

    d = tmp / "sets"
    tr = trust_data.make_set(d / "small_train", "symbols", args.full_per_class, 0, size=32)
    te = trust_data.make_set(d / "small_test", "symbols", 40, 1, size=32)
    old = tmp / "old"
    old.mkdir()
    subprocess.run(f"git -C {ROOT} archive {FULL_BASE_COMMIT} cnndesk resources | tar -x -C {old}", shell=True, check=True)
    from cnndesk.core.models.registry import default_model
    from cnndesk.core.predict.embeddings import FeatureExtractor

    FeatureExtractor(default_model(), stages="last")  # weights + the export the assessment uses
    results = {"set": f"symbols 32 px, {args.full_per_class} per class (80 % train, 20 % val), 40 per class test",
               "full_base_commit": FULL_BASE_COMMIT, "cpu": os.cpu_count()}
    unrelated = trust_data.make_unrelated(d / "unrelated", 30, seed=7)
    for who, path in (("new", ROOT), ("old", old)):
        if args.full not in ("both", who):
            continue
        uptime = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else "?"
        out = tmp / f"small-full-{who}.safetensors"
        metrics, wall = train_cli(path, tr, out, "--mode", "full", "--force",
                                  timeout=args.old_timeout if who == "old" else None)
        res = {"load_before": " ".join(uptime), "train_s": round(wall, 1), "cpu_s": metrics["cpu_s"], "load_after": load()}
        if metrics.get("timed_out"):
            res.update(timed_out=True, epochs_finished=len(metrics["epoch_lines"]), epoch_lines=metrics["epoch_lines"])
        else:
            res.update(assess(out, te, unrelated))
            res.update({k: metrics.get(k) for k in ("defaults", "epochs_run", "best_epoch", "epochs", "threads",
                                                     "speed_probe_ms_per_image", "bf16_check", "val_accuracy")})
        results[f"small/full/{who}"] = res
        print(f"small full {who}: {res}", flush=True)
    return results


def assess(model: Path, test: Path, unrelated: list[str]) -> dict:
    from cnndesk.core.images.load import load_image
    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.trust import scores as trust

    clf = Classifier(str(model))
    paths, names = files(test)
    y = np.array([clf.labels.index(n) for n in names])

    def run(ps):
        logits, nov = [], []
        for i in range(0, len(ps), 16):
            batch = np.stack([clf.prepare(load_image(p, min_side=clf.preprocess.resize)) for p in ps[i:i + 16]])
            lg, nv = clf.run(batch)
            logits.append(lg)
            nov.append(nv if nv is not None else np.full(len(batch), np.nan))
        return np.concatenate(logits), np.concatenate(nov)

    lg, nov = run(paths)
    raw = trust.softmax(lg)
    cal = clf.probabilities(lg)
    out = {"accuracy": round(float((raw.argmax(1) == y).mean()), 4),
           "ece_raw": round(trust.ece(raw, y), 4), "ece": round(trust.ece(cal, y), 4),
           "temperature": round(clf.temperature, 3)}
    if clf.novelty is not None:
        _, nov_u = run(unrelated)
        thr = clf.novelty_threshold
        out.update(own_flagged=round(float((nov > thr).mean()), 4), unrelated_flagged=round(float((nov_u > thr).mean()), 4),
                   auroc=round(trust.auroc(nov, nov_u), 4))
    else:
        out.update(own_flagged=None, unrelated_flagged=None, note="no novelty detector: never flags")
        u_lg, _ = run(unrelated)
        out["unrelated_median_confidence"] = round(float(np.median(trust.softmax(u_lg).max(1))), 4)
    if clf.novelty is not None:
        u_lg, _ = run(unrelated)
        out["unrelated_median_confidence"] = round(float(np.median(clf.probabilities(u_lg).max(1))), 4)
    return out


def near_unknowns(data: Path, test: Path) -> dict:
    """Stretch: a quick model's detector on 5 symbol classes, shown the other 5 (held-out images)."""
    from cnndesk.core.predict.embeddings import embed_paths
    from cnndesk.core.trust import scores as trust

    tr, tr_names = files(data)
    te, te_names = files(test)
    known = sorted(set(tr_names))[:5]
    x_tr = embed_paths([p for p, n in zip(tr, tr_names, strict=True) if n in known])
    x_in = embed_paths([p for p, n in zip(te, te_names, strict=True) if n in known])
    x_out = embed_paths([p for p, n in zip(te, te_names, strict=True) if n not in known])
    nov, _ = trust.fit_novelty_oof(x_tr, np.arange(len(x_tr)) % 5)
    s_in, s_out = nov.score(x_in), nov.score(x_out)
    return {"known": known, "auroc": round(trust.auroc(s_in, s_out), 4),
            "own_flagged": round(float((s_in > nov.threshold).mean()), 4),
            "other_classes_flagged": round(float((s_out > nov.threshold).mean()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--full-per-class", type=int, default=100, help="training images per class for full mode")
    ap.add_argument("--out", default=None)
    ap.add_argument("--skip-quick", action="store_true")
    ap.add_argument("--full", choices=("both", "old", "new"), default="both", help="which full-mode defaults to run")
    ap.add_argument("--full-only", action="store_true", help="only full mode, old vs new defaults, on 32 px symbols")
    ap.add_argument("--old-timeout", type=float, default=900, help="--full-only: stop the old defaults after this many seconds")
    args = ap.parse_args()
    import trust_data

    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-bench-trust-"))
    os.environ["CNNDESK_CACHE_DIR"] = str(tmp / "cache")
    os.environ["CNNDESK_DATA_DIR"] = str(tmp / "data")
    if args.full_only:
        results = {"load_start": load(), **full_only(args, tmp), "load_end": load()}
        text = json.dumps(results, indent=1)
        print(text)
        if args.out:
            Path(args.out).write_text(text)
        return
    d = tmp / "sets"
    sym_tr = trust_data.make_set(d / "symbols_train", "symbols", 100, 0)
    sym_te = trust_data.make_set(d / "symbols_test", "symbols", 40, 1)
    tex_tr = trust_data.make_set(d / "textures_train", "textures", 60, 0)
    tex_te = trust_data.make_set(d / "textures_test", "textures", 40, 1)
    unrelated = trust_data.make_unrelated(d / "unrelated", 150, seed=7)
    old = tmp / "old"
    old.mkdir()
    subprocess.run(f"git -C {ROOT} archive {BASE_COMMIT} cnndesk resources | tar -x -C {old}", shell=True, check=True)
    from cnndesk.core.models.registry import default_model
    from cnndesk.core.predict.embeddings import FeatureExtractor

    t = time.perf_counter()
    for stages in ("last", "multi"):  # the one-off exports (not counted)
        FeatureExtractor(default_model(), stages=stages)
    results = {"load_start": load(), "base_commit": BASE_COMMIT, "one_off_exports_s": round(time.perf_counter() - t, 1),
               "cpu": os.cpu_count()}
    print(f"load {results['load_start']}; one-off exports {results['one_off_exports_s']} s", flush=True)
    runs = [("symbols", sym_tr, sym_te), ("textures", tex_tr, tex_te)]
    for name, tr, te in [] if args.skip_quick else runs:
        for who, path in (("old", old), ("new", ROOT)):
            # the old and new quick modes embed different features: each starts from an empty embedding cache
            emb = tmp / "cache" / "embeddings"
            if emb.exists():
                for f in emb.iterdir():
                    f.unlink()
            metrics, wall = train_cli(path, tr, tmp / f"{name}-quick-{who}.safetensors", "--force")
            res = assess(tmp / f"{name}-quick-{who}.safetensors", te, unrelated)
            res.update(train_s=round(wall, 1), cpu_s=metrics["cpu_s"], load=load())
            results[f"{name}/quick/{who}"] = res
            print(f"{name} quick {who}: {res}", flush=True)
    if not args.skip_quick:
        results["near_unknowns_quick"] = near_unknowns(sym_tr, sym_te)
        print("near unknowns:", results["near_unknowns_quick"], flush=True)
    if not args.skip_full:
        full_tr = sym_tr if args.full_per_class == 100 else trust_data.make_set(
            d / "symbols_full", "symbols", args.full_per_class, 0)
        results["full_train_images"] = 10 * args.full_per_class
        for who, path in (("old", old), ("new", ROOT)):
            if args.full not in ("both", who):
                continue
            metrics, wall = train_cli(path, full_tr, tmp / f"symbols-full-{who}.safetensors", "--mode", "full", "--force")
            res = assess(tmp / f"symbols-full-{who}.safetensors", sym_te, unrelated)
            res.update(train_s=round(wall, 1), cpu_s=metrics["cpu_s"], load=load(),
                       settings=metrics.get("defaults", "last 2 blocks · 224 px · 8 epochs · fp32 · flips"),
                       epochs_run=metrics.get("epochs_run"), bf16_check=metrics.get("bf16_check"))
            results[f"symbols/full/{who}"] = res
            print(f"symbols full {who}: {res}", flush=True)
    results["load_end"] = load()
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
