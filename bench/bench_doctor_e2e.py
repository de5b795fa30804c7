"""`cnndesk doctor` end to end on a folder of generated images, once embedded (issue 25: held-out
target 20,000 images ≤ 60 s on 2 cores): the code before a change (``--baseline-code``, a checkout)
against this checkout, same folder, same warm embedding and thumbnail caches, in one run.

1. the folder: bench/doctor_data.py (ten classes of small symbols and textures, train/ + val/,
   5 % of the training labels flipped, near-duplicates, leaks, unrelated photos), seed 20 (never
   used to set a threshold), made once under --work;
2. warm-up: one check fills the embedding and thumbnail caches (a private CNNDESK_CACHE_DIR with a
   copy of the user cache's ONNX exports), not timed;
3. per code: the `cnndesk doctor DIR --format json --quiet` CLI call (wall time, peak RSS of the
   process from wait4), then the same check in a child with each stage timed (bench_doctor_scale's
   stage wrappers: peak RSS so far after each); the doctor's result memo is deleted before each.

    PYTHONPATH=. python bench/bench_doctor_e2e.py --images 20000 --baseline-code /work/wt/base
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, os.environ.get("CNNDESK_BENCH_CODE") or str(HERE.parent))


def make_folder(work: Path, images: int, seed: int = 20) -> tuple[Path, dict]:
    import doctor_data

    root = work / f"data{images}"
    manifest = root.with_name(root.name + ".manifest.json")
    if manifest.exists():
        return root, json.loads(manifest.read_text())
    per_class = images // len(doctor_data.CLASSES)
    copies = max(15, images // 200)
    man = doctor_data.make(root, per_class=per_class, n_dupes=copies, n_leaks=copies, n_outliers=max(3, images // 2000),
                           seed=seed)
    return root, man


def _run(cmd: list[str], env: dict, cwd: str | None = None) -> tuple[subprocess.CompletedProcess, float, float]:
    """(result, wall seconds, peak RSS MB of that child process: the largest VmHWM read from
    /proc/PID/status every 20 ms while it runs — its own high-water mark since exec; wait4's
    ru_maxrss would carry over this parent's peak, which fill_cache makes big).
    ``cwd``: the checkout to run (``python -m`` puts the working folder before PYTHONPATH)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True, cwd=cwd or str(HERE.parent))
        hwm = 0.0
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            try:
                with open(f"/proc/{p.pid}/status") as fh:
                    hwm = max(hwm, next((int(x.split()[1]) / 1024 for x in fh if x.startswith("VmHWM:")), 0.0))
            except OSError:
                pass
            time.sleep(0.02)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, p.returncode, out.read(), err.read()), wall, hwm


def child(root: str) -> None:
    """The check in this process with every stage timed (warm caches; memo deleted by the parent)."""
    from bench_doctor_scale import STAGES, _peak_mb, time_stages

    from cnndesk.core.doctor import check as doctor

    extra = [("cnndesk.core.doctor.check", "collect"), ("cnndesk.core.doctor.duplicates", "thumbnails")]  # + STAGES
    stages = time_stages(extra + STAGES)
    t = time.perf_counter()
    rep = doctor.check_dataset(root, less_likely=True)
    print(json.dumps({"seconds": round(time.perf_counter() - t, 1), "peak_mb": round(_peak_mb()), "stages": stages,
                      "report": rep.to_json()}))


def fill_cache(root: Path, cache: Path, synth: Path) -> dict:
    """The embedding cache (under ``cache``) of every image of ``root`` from bench_doctor_scale's
    synthetic multi-stage vectors: each image gets a row of its folder's class (taken in a fixed
    shuffled order, reused when a class has more images than rows), as the network would have put
    them there; float32, as the cache stores them."""
    import numpy as np

    os.environ["CNNDESK_CACHE_DIR"] = str(cache)
    import doctor_data

    from cnndesk.core.doctor import check as doctor
    from cnndesk.core.models.registry import DEFAULT_MODEL, get_spec
    from cnndesk.core.predict.embeddings import EmbeddingCache, FeatureExtractor

    files = doctor.collect(root)
    fx = FeatureExtractor(get_spec(DEFAULT_MODEL), device="cpu", stages="multi")
    Path(EmbeddingCache(fx.key).path).unlink(missing_ok=True)  # these images only
    store = EmbeddingCache(fx.key)
    with np.load(synth) as z:
        multi, labels = z["multi"], z["labels"]
    rng = np.random.default_rng(0)
    rows = {c: rng.permutation(np.flatnonzero(labels == k)) for k, c in enumerate(doctor_data.CLASSES)}
    used = dict.fromkeys(rows, 0)
    for p, _, c in files.items:
        store.put(p, multi[rows[c][used[c] % len(rows[c])]])
        used[c] += 1
    store.save()
    return {"images": len(files.items), "cache": str(store.path), "mb": round(store.path.stat().st_size / 2**20)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--work", default="/tmp/cnndesk-bench-doctor-e2e")
    p.add_argument("--baseline-code")
    p.add_argument("--child")
    p.add_argument("--no-warm-up", action="store_true", help="the caches are warm already")
    p.add_argument("--old-stages", action="store_true", help="also time the old code's stages (a second old run)")
    p.add_argument("--only", choices=("old", "new"))
    p.add_argument("--synthetic-embeddings", metavar="SYNTH_NPZ",
                   help="bench_doctor_scale's synth{N}.npz: fill the embedding cache with its vectors (rows of each "
                   "image's class) instead of embedding the images (50,000 images: hours); for time and memory only")
    a = p.parse_args()
    if a.child:
        return child(a.child)
    from bench_doctor import score

    from cnndesk.core.common.paths import user_cache_dir

    work = Path(a.work)
    t = time.perf_counter()
    root, man = make_folder(work, a.images)
    made = time.perf_counter() - t
    cache = work / "cache"
    if not (cache / "onnx").exists():
        shutil.copytree(user_cache_dir() / "onnx", cache / "onnx")
    env = {**os.environ, "CNNDESK_CACHE_DIR": str(cache)}
    n = man["n_train"] + man["n_val"]
    if a.synthetic_embeddings:
        print(json.dumps({"synthetic_cache": fill_cache(root, cache, Path(a.synthetic_embeddings))}), flush=True)
    print(json.dumps({"images": n, "made_s": round(made, 1), "uptime": os.getloadavg()}), flush=True)
    if not a.no_warm_up:
        warm, wall, _ = _run([sys.executable, "-m", "cnndesk", "doctor", str(root), "--format", "json", "--quiet"], env)
        print(json.dumps({"warm_up_s": round(wall, 1), "rc": warm.returncode, "err": warm.stderr[-500:]}), flush=True)
    runs = [("new", None), ("old", a.baseline_code)] if a.baseline_code else [("new", None)]
    issues_new = None
    for name, code in runs:
        if a.only and name != a.only:
            continue
        e = dict(env)
        if code:
            e["PYTHONPATH"] = e["CNNDESK_BENCH_CODE"] = str(Path(code).resolve())
        shutil.rmtree(cache / "doctor" / "results", ignore_errors=True)
        load = os.getloadavg()
        cli, wall, peak = _run([sys.executable, "-m", "cnndesk", "doctor", str(root), "--format", "json", "--quiet"], e,
                               cwd=str(Path(code).resolve()) if code else None)
        row = {"code": name, "cli_s": round(wall, 1), "cli_peak_mb": round(peak), "rc": cli.returncode,
               "load_before": [round(v, 1) for v in load], "load_after": [round(v, 1) for v in os.getloadavg()]}
        if cli.returncode in (0, 1):
            out = json.loads(cli.stdout)
            row["found"] = score(out, man)
            found = {(i["kind"], i["path"], i["other"], i["suggested"], i["likely"]) for i in out["issues"]}
            (work / f"issues{a.images}-{name}.json").write_text(json.dumps(out["issues"]))
            if name == "old" and issues_new is not None:  # what the two codes report differently
                row["vs_new"] = {"same": len(found & issues_new), "n_only_old": len(found - issues_new),
                                 "n_only_new": len(issues_new - found), "only_old": sorted(found - issues_new, key=str)[:10],
                                 "only_new": sorted(issues_new - found, key=str)[:10]}
            issues_new = found if name == "new" else issues_new
        else:
            row["err"] = cli.stderr[-800:]
        print(json.dumps(row), flush=True)
        if name == "old" and not a.old_stages:
            continue
        shutil.rmtree(cache / "doctor" / "results", ignore_errors=True)
        st, wall, _ = _run([sys.executable, __file__, "--child", str(root)], e)
        if st.returncode == 0:
            r = json.loads(st.stdout.strip().splitlines()[-1])
            row.update(staged_s=r["seconds"], staged_peak_mb=r["peak_mb"], stages=r["stages"])
        else:
            row["staged_err"] = st.stderr[-800:]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
