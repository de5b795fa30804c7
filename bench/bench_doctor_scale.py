"""The dataset doctor after embedding, at 5k-50k images (issue 25 point 2): time and peak memory
per stage, the code before a change (``--baseline-code``, a checkout) against this checkout in the
same run, each in a fresh child process on the same synthetic data, with what each found of what
was planted.

Synthetic data (cached under --work; made once: about 2 ms a picture): N generated pictures of
bench/doctor_data.py's ten classes as the doctor's 32-px thumbnails, 1 % near-copies (resized,
cropped, re-encoded: half in val as leaks), 5 % of the training labels flipped, 0.05 % unrelated
"photos"; embeddings as the doctor really gets them: quick training's 2,528 multi-stage values
whose last 1,280 are the pooled last layer, made from a 64-value latent per picture (class centre
+ spread; copies share it), so most of the spread lies in few directions as in CNN features.
File walking and decoding are replaced by the arrays (``collect`` and ``thumbnails`` patched);
the embeddings are read from an embedding cache file written here (float32, as quick training and
the doctor write it; keyed by the synthetic paths) through the code's own ``doctor/embed.py`` and
``EmbeddingCache`` (only the network is patched out), so the code's own handover (float32 rows
before issue 25's compact cache, float16 after) is what is measured; everything after that runs
as ``cnndesk doctor`` runs it. Stages: ``embed_files`` is the embedding cache read.

    PYTHONPATH=. python bench/bench_doctor_scale.py --n 5000 20000 50000 --baseline-code /work/wt/base
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, os.environ.get("CNNDESK_BENCH_CODE") or str(HERE.parent))

STAGES = [("cnndesk.core.doctor.check", "embed_files"), ("cnndesk.core.doctor.duplicates", "identical_groups"), ("cnndesk.core.doctor.check", "pair_issues"),
          ("cnndesk.core.doctor.label_check", "project"), ("cnndesk.core.doctor.label_check", "outliers"),
          ("cnndesk.core.doctor.label_check", "label_issues")]


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    """This process's peak RSS: VmHWM (of this program's own memory since exec). Not ru_maxrss:
    Linux carries the parent's high-water mark into a child across fork and exec, so a child of a
    parent that had written a big cache file reported the parent's peak."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_stages(pairs) -> dict[str, dict]:
    """Wrap each (module, function) of ``pairs`` so every call adds its seconds, its count and the
    peak RSS so far to the returned dict (filled as the check runs)."""
    import importlib

    stages: dict[str, dict] = {}
    for mod_name, fn_name in pairs:
        mod = importlib.import_module(mod_name)
        fn = getattr(mod, fn_name, None)
        if fn is None:
            continue

        def timed(*a, _fn=fn, _name=fn_name, **kw):
            t = time.perf_counter()
            try:
                return _fn(*a, **kw)
            finally:
                s = stages.setdefault(_name, {"seconds": 0.0, "calls": 0})
                s["seconds"] = round(s["seconds"] + time.perf_counter() - t, 2)
                s["calls"] += 1
                s["peak_mb_so_far"] = round(_peak_mb())
        setattr(mod, fn_name, timed)  # core.doctor.check reaches them through its module aliases: wrapped too
    return stages


def make(n: int, work: Path, seed: int = 0) -> Path:
    """The synthetic set for ``n`` images, written once to ``work/synth{n}.npz``."""
    import doctor_data
    import numpy as np
    from PIL import Image

    out = work / f"synth{n}.npz"
    if out.exists():
        return out
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pyrng = random.Random(seed)
    k = len(doctor_data.CLASSES)
    y = rng.integers(0, k, n)
    n_copies = max(2, n // 100)
    src = rng.choice(n - n_copies, n_copies, replace=False)  # the copies are the last n_copies rows
    thumbs = np.empty((n, 32 * 32 * 3), np.uint8)
    images = {}
    keep = set(src.tolist())
    for i in range(n - n_copies):
        img = doctor_data.draw(doctor_data.CLASSES[y[i]], pyrng)
        if i in keep:
            images[i] = img
        thumbs[i] = _thumb(img)
    for c, s in enumerate(src):
        i = n - n_copies + c
        y[i] = y[s]
        thumbs[i] = _thumb(doctor_data.near_copy(images[int(s)], pyrng))
    latent = rng.normal(0, 1.0, (k, 64))[y] + rng.normal(0, 0.9, (n, 64))
    latent[n - n_copies:] = latent[src] + rng.normal(0, 0.05, (n_copies, 64))
    n_out = max(3, n // 2000)
    outl = rng.choice(n - n_copies, n_out, replace=False)
    latent[outl] = rng.normal(0, 4.0, (n_out, 64))
    w = rng.normal(0, 1, (64, 2528)) / 8
    multi = np.maximum(latent @ w + rng.normal(0, 0.3, (n, 2528)), 0).astype(np.float32)
    val = rng.random(n) < 0.2
    val[src] = False
    val[n - n_copies:] = np.arange(n_copies) % 2 == 1  # half of the copies leak into val
    labels = y.copy()
    train_idx = np.flatnonzero(~val & ~np.isin(np.arange(n), np.concatenate([src, outl, np.arange(n - n_copies, n)])))
    flips = rng.choice(train_idx, int(0.05 * (~val).sum()), replace=False)
    labels[flips] = (y[flips] + rng.integers(1, k, len(flips))) % k
    np.savez(out, thumbs=thumbs, multi=multi, labels=labels, truth=y, val=val, src=src, flips=flips, outliers=outl,
             copies=np.arange(n - n_copies, n))
    _ = Image
    return out


def _thumb(img):
    import numpy as np
    from PIL import Image

    t = img.convert("RGB").resize((32, 32), Image.Resampling.BOX)
    return np.asarray(t, np.uint8).reshape(-1)


def _paths(labels, val) -> list[str]:
    import doctor_data

    classes = list(doctor_data.CLASSES)
    return [f"/synthetic/{'val' if val[i] else 'train'}/{classes[labels[i]]}/{i:06d}.png" for i in range(len(labels))]


def cache_file(n: int, work: Path, data: Path) -> Path:
    """The embedding cache of the synthetic set (``work/cache/embeddings/synth{n}.npz``, keyed by
    the synthetic paths, float32 as the cache stores them), written once."""
    import numpy as np

    out = work / "cache" / "embeddings" / f"synth{n}.npz"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with np.load(data) as z:
        paths, multi = _paths(z["labels"], z["val"]), z["multi"]
    np.savez(out, keys=np.array(paths, dtype=str), vectors=multi.astype(np.float32))
    return out


def child(data: Path) -> None:
    from types import SimpleNamespace

    import numpy as np

    t_start = time.perf_counter()
    from cnndesk.core.doctor import check as doctor
    from cnndesk.core.doctor import duplicates as doctor_dupes
    from cnndesk.core.doctor import embed as doctor_embed
    from cnndesk.core.predict import embeddings

    classes = list(__import__("doctor_data").CLASSES)
    with np.load(data) as z:
        thumbs, labels, val = z["thumbs"], z["labels"], z["val"]
    n = len(thumbs)
    paths = _paths(labels, val)
    items = [(p, p.split("/")[2], p.split("/")[3]) for p in paths]
    files = doctor.Files(Path("/synthetic"), "splits", classes, items, {c: [f"/synthetic/train/{c}"] for c in classes}, [])
    doctor.collect = lambda root: files
    doctor_dupes.thumbnails = lambda ps, cache=None, progress=None, cancel=None, threads=2: (
        thumbs, np.full((n, 2), 64, np.int32), {})

    class Network:  # the embedding cache answers every path: no network runs
        key = f"synth{n}"
        engine = SimpleNamespace(name="onnx")
        preprocess = SimpleNamespace(resize=224)
        embed_paths = embeddings.FeatureExtractor.embed_paths

        def __init__(self, *a, **k):
            pass

    embeddings.FeatureExtractor = Network
    embeddings.file_key = lambda p: p  # cache keys are the synthetic paths
    doctor_embed.on_cpu = lambda device: True
    doctor_embed.export_ok = lambda spec, variant: True
    doctor_embed.multi_width = lambda spec: 1280
    doctor.load_memo = lambda path: (None, 0, "")
    doctor.save_memo = lambda *a: None
    stages = time_stages(STAGES)
    before = _rss_mb()
    t = time.perf_counter()
    rep = doctor.check_dataset("/synthetic", less_likely=True)
    seconds = time.perf_counter() - t
    if rep.summary.get("embeddings") != "onnx-multi" or rep.summary.get("checked") != n:
        raise SystemExit(f"the embeddings did not come from the synthetic cache: {rep.summary}")
    print(json.dumps({"n": n, "seconds": round(seconds, 1), "peak_mb": round(_peak_mb()), "input_mb": round(before),
                      "startup_s": round(t - t_start, 1), "stages": stages, "sklearn_imported": "sklearn" in sys.modules, "found": score(rep, data, paths),
                      "issues": sorted([i.kind, i.path, i.other, i.suggested, i.likely] for i in rep.issues)}))


def score(rep, data: Path, paths: list[str]) -> dict:
    import numpy as np

    with np.load(data) as z:
        src, copies, flips, outl, val = z["src"], z["copies"], z["flips"], z["outliers"], z["val"]
    planted = {frozenset((paths[a], paths[b])) for a, b in zip(src, copies, strict=True)}
    pairs = {frozenset((i.path, i.other)) for i in rep.issues if i.kind in ("duplicate", "leak")}
    overl = {frozenset((i.path, i.other)) for i in rep.issues if i.kind == "overlap"}
    flipped = {paths[i] for i in flips}
    strong = {i.path for i in rep.issues if i.kind == "label" and i.likely}
    outs = {i.path for i in rep.issues if i.kind == "outlier"}
    return {"pairs_found": len(pairs & planted), "pairs_planted": len(planted), "other_pairs": len(pairs - planted),
            "overlaps": len(overl),
            "leaks": sum(i.kind == "leak" for i in rep.issues), "leaks_planted": int(val[copies].sum()),
            "label_recall": round(len(strong & flipped) / max(1, len(flipped)), 3),
            "label_precision": round(len(strong & flipped) / max(1, len(strong)), 3), "labels_reported": len(strong),
            "outliers_found": len(outs & {paths[i] for i in outl}), "outliers_planted": len(outl),
            "outliers_reported": len(outs)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="*", default=[5000, 20000, 50000])
    p.add_argument("--work", default="/tmp/cnndesk-bench-doctor-scale")
    p.add_argument("--baseline-code", help="a checkout of the code before the change: run side by side")
    p.add_argument("--only", choices=("old", "new"))
    p.add_argument("--child")
    p.add_argument("--timeout", type=int, default=3600)
    a = p.parse_args()
    if a.child:
        return child(Path(a.child))
    for n in a.n:
        data = make(n, Path(a.work))
        cache_file(n, Path(a.work), data)
        runs = [("old", a.baseline_code), ("new", None)] if a.baseline_code else [("new", None)]
        issues_old = None
        for name, code in runs:
            if a.only and name != a.only:
                continue
            env = dict(os.environ)
            env["CNNDESK_CACHE_DIR"] = str(Path(a.work).resolve() / "cache")
            if code:
                env["CNNDESK_BENCH_CODE"] = str(Path(code).resolve())
                env["PYTHONPATH"] = str(Path(code).resolve())
            load = os.getloadavg()
            try:
                r = subprocess.run([sys.executable, __file__, "--child", str(data)], env=env, capture_output=True,
                                   text=True, timeout=a.timeout)
            except subprocess.TimeoutExpired:
                print(json.dumps({"n": n, "code": name, "timeout_s": a.timeout}), flush=True)
                continue
            if r.returncode != 0:
                print(json.dumps({"n": n, "code": name, "error": r.stderr[-1500:]}), flush=True)
                continue
            row = json.loads(r.stdout.strip().splitlines()[-1])
            found = {tuple(i) for i in row.pop("issues")}
            (Path(a.work) / f"issues{n}-{name}.json").write_text(json.dumps(sorted(found, key=str)))
            if name == "new" and issues_old is not None:  # what the new code reports differently
                row["vs_old"] = {"same": len(found & issues_old), "only_new": sorted(found - issues_old, key=str)[:20],
                                 "only_old": sorted(issues_old - found, key=str)[:20],
                                 "n_only_new": len(found - issues_old), "n_only_old": len(issues_old - found)}
            issues_old = found if name == "old" else issues_old
            print(json.dumps({"code": name, "load_before": [round(v, 1) for v in load],
                              "load_after": [round(v, 1) for v in os.getloadavg()], **row}), flush=True)


if __name__ == "__main__":
    main()
