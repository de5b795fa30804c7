"""Big folders (issue 25 point 5): 5,000 / 20,000 / 50,000 generated images through every stage
after embedding, old code against new in the same run.

Per size and stage, each stage a child process through the command line (``python -m cnndesk``),
its wall time and peak memory (the child's own maximum RSS, from wait4):

* embed — the new code, cold embedding cache (the network's cost; skip with --skip-embed, e.g. at
  50,000 where it takes ~9+ min on 2 cores: the stages after it then embed in an untimed warm-up);
* doctor — ``cnndesk doctor DIR -f json`` (its memo of the last answer removed first);
* label — ``cnndesk label DIR --labels FILE --ask 20`` (FILE: LABELLED_SHARE of the images);
* train — ``cnndesk train DIR --mode quick``;
* classify — ``cnndesk classify`` of TEST_IMAGES held-out images with the model just trained
  (novelty flag included), and with a model trained on 1,000 images: its time per image should
  not grow with the training set (--repeat runs each, alternately; the quickest kept).

Old (``--old``, a checkout of the code before: PYTHONPATH points at it) and new (this tree) share
one warm embedding cache (CNNDESK_CACHE_DIR under --work; --separate-caches gives each its own,
should their cache formats differ); before the timed stages each version embeds every image once
("warm": a few seconds when the cache is warm; a big number means that version recomputed). A stage that runs past --timeout is stopped and
reported as '> T s'.

    python bench/bench_bigfolders.py --sizes 5000,20000 [--old /work/wt/base] [--skip-embed]
                                     [--work DIR] [--timeout 900] [--out results.json]
    python bench/bench_bigfolders.py --report results.json     (the markdown table again)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import bigfolders_data  # noqa: E402

TEST_IMAGES = 300
SMALL = 1000  # the training set classify-with-novelty is compared against
LABELLED_SHARE = 0.02
STAGES = ("embed", "doctor", "label", "train", "classify")
WARM = """
import sys
from pathlib import Path
import cnndesk
from cnndesk.core.predict.embeddings import embed_paths
paths = sorted(str(p) for d in sys.argv[1:] for p in Path(d).rglob("*") if p.suffix in (".jpg", ".png"))
x = embed_paths(paths)
print(len(paths), x.shape, "code:", cnndesk.__file__)
"""


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def run_child(cmd: list[str], env: dict, timeout: float, log: Path, cwd: Path) -> dict:
    """Run ``cmd`` in its own session; wall seconds, peak RSS (MB) of the child, exit code, or
    a timeout (the child's process group is stopped)."""
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        p = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(p.pid, 0)
                p.returncode = -9
                return {"s": None, "timeout": timeout, "rss_mb": round(usage.ru_maxrss / 1024), "rc": None,
                        "load": load()}
            time.sleep(0.05)
    p.returncode = os.waitstatus_to_exitcode(status)
    return {"s": round(time.perf_counter() - t0, 2), "rss_mb": round(usage.ru_maxrss / 1024), "rc": p.returncode,
            "load": load()}


def env_for(code: Path, work: Path, cache: Path) -> dict:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(code), CNNDESK_CACHE_DIR=str(cache), CNNDESK_DATA_DIR=str(work / "appdata"),
               QT_QPA_PLATFORM="offscreen", PYTHONDONTWRITEBYTECODE="1")
    return env


def labels_file(data: Path, out: Path, share: float) -> Path:
    """Every 1/share-th image of each class, answered with its folder's class."""
    step = max(1, round(1 / share))
    rows = ["path,label"]
    for c in sorted(p for p in data.iterdir() if p.is_dir()):
        files = sorted(c.iterdir())
        rows += [f"{f.relative_to(data).as_posix()},{c.name}" for f in files[::step]]
    out.write_text("\n".join(rows) + "\n")
    return out


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cnndesk", *map(str, args)]


def bench_size(n: int, args, versions: dict[str, Path], results: dict, save) -> None:
    work = Path(args.work)
    data = work / f"data-{n}"
    bigfolders_data.make(data, n, seed=0)
    small = work / f"data-{SMALL}"
    bigfolders_data.make(small, SMALL, seed=0)
    test = work / "test"
    bigfolders_data.make(test, TEST_IMAGES, seed=1, flip_share=0.0, dupe_share=0.0)
    labels = labels_file(data, work / f"labels-{n}.csv", LABELLED_SHARE)
    cache = work / "cache"
    res = results["sizes"].setdefault(str(n), {})
    logs = work / "logs"
    logs.mkdir(exist_ok=True)

    def stage(name: str, version: str, cmd: list[str], timeout: float | None = None, cache_dir: Path = cache) -> dict:
        # cwd: the version's tree (``python -m`` puts the working folder first on sys.path)
        r = run_child(cmd, env_for(versions[version], work, cache_dir), timeout or args.timeout,
                      logs / f"{n}-{name}-{version}.log", cwd=versions[version])
        res.setdefault(name, {})[version] = r
        shown = f"> {r['timeout']:.0f} s" if r["s"] is None else f"{r['s']:.1f} s"
        print(f"{n:>6} {name:<14} {version:<4} {shown:>10} {r['rss_mb']:>6} MB  rc {r['rc']}  load {r['load']}",
              flush=True)
        save()
        return r

    def cache_of(version: str) -> Path:
        return work / (f"cache-{version}" if args.separate_caches else "cache")

    if not args.skip_embed:  # the network's cost: new code, no cached embeddings (its ONNX export kept)
        shutil.rmtree(cache_of("new") / "embeddings", ignore_errors=True)
        stage("embed", "new", [sys.executable, "-c", WARM, str(data)], timeout=args.embed_timeout,
              cache_dir=cache_of("new"))
    for version in sorted(versions, key=lambda v: v != "new"):  # new first; untimed: a no-op when the cache is warm
        stage("warm", version, [sys.executable, "-c", WARM, str(data), str(small), str(test)],
              timeout=args.embed_timeout, cache_dir=cache_of(version))
    for version in versions:
        shutil.rmtree(cache_of(version) / "doctor", ignore_errors=True)  # its memo of the last answer
        stage("doctor", version, cli("doctor", data, "-f", "json", "-q"), cache_dir=cache_of(version))
    for version in versions:
        stage("label", version, cli("label", data, "--labels", labels, "--ask", "20", "-f", "json", "-q"),
              cache_dir=cache_of(version))
    for version in versions:
        model = work / f"model-{version}-{n}.safetensors"
        stage("train", version, cli("train", data, "--mode", "quick", "--out", model, "--force"),
              cache_dir=cache_of(version))
        ref = work / f"model-{version}-{SMALL}.safetensors"
        if not ref.exists() or args.retrain_small:
            stage(f"train {SMALL}", version, cli("train", small, "--mode", "quick", "--out", ref, "--force"),
                  cache_dir=cache_of(version))
        for rep in range(args.repeat):  # alternately, the quickest kept: classify is short and loads vary
            for name, m in (("classify", model), (f"classify {SMALL}", ref)):
                if not m.exists():
                    continue
                best = res.get(name, {}).get(version) if rep else None
                r = stage(name, version, cli("classify", test, "-r", "-m", m, "-f", "json", "-q", "--out",
                                             work / f"classified-{version}-{m.stem}.json", "--force"),
                          cache_dir=cache_of(version))
                if best and best.get("s") is not None and (r["s"] is None or best["s"] < r["s"]):
                    res[name][version] = best


def cell(r: dict | None) -> str:
    if not r:
        return "–"
    t = f"> {r['timeout']:.0f} s" if r.get("s") is None else f"{r['s']:.1f} s"
    fail = "" if r.get("rc") in (0, 1, None) else f" (exit {r['rc']})"
    return f"{t}, {r['rss_mb']} MB{fail}"


def report(results: dict) -> str:
    """The markdown table (old vs new per stage and size; time, peak RSS of the child)."""
    lines = [f"Load average {results.get('load_start', '?')} at the start, {results.get('load_end', '?')} at the end; "
             f"{results.get('cpus', '?')} CPUs; old = `{results.get('old', '?')}`, new = `{results.get('new', '?')}`.", "",
             "| images | stage | old: time, peak RSS | new: time, peak RSS | old / new |",
             "|---:|---|---:|---:|---:|"]
    order = ["embed", "warm", "doctor", "label", "train", "classify", f"train {SMALL}", f"classify {SMALL}"]
    for n, res in sorted(results.get("sizes", {}).items(), key=lambda kv: int(kv[0])):
        for name in order + sorted(set(res) - set(order)):
            if name not in res:
                continue
            old, new = res[name].get("old"), res[name].get("new")
            ratio = "–"
            if old and new and new.get("s") and name != "warm":
                ratio = f"> {old['timeout'] / new['s']:.1f}×" if old.get("s") is None else f"{old['s'] / new['s']:.1f}×"
            lines.append(f"| {int(n):,} | {name} | {cell(old)} | {cell(new)} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="5000")
    ap.add_argument("--old", default="/work/wt/base", help="the old code's tree (PYTHONPATH for its children)")
    ap.add_argument("--work", default="/tmp/cnndesk-bigfolders", help="data, cache and logs (reused between runs)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per stage before it is stopped")
    ap.add_argument("--embed-timeout", type=float, default=3600.0)
    ap.add_argument("--skip-embed", action="store_true", help="no cold-cache embed stage (50,000: ~9+ min)")
    ap.add_argument("--new-only", action="store_true")
    ap.add_argument("--separate-caches", action="store_true",
                    help="one embedding cache per version (when their cache formats differ)")
    ap.add_argument("--repeat", type=int, default=2, help="classify runs per model (the quickest is kept)")
    ap.add_argument("--retrain-small", action="store_true", help="train the 1,000-image models again")
    ap.add_argument("--out", default=None, help="JSON results (default WORK/results.json)")
    ap.add_argument("--report", metavar="JSON", default=None, help="print the markdown table of a results file")
    args = ap.parse_args()
    if args.report:
        print(report(json.loads(Path(args.report).read_text())))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else work / "results.json"
    versions = {"new": ROOT} if args.new_only else {"old": Path(args.old).resolve(), "new": ROOT}
    results = {"load_start": load(), "cpus": os.cpu_count(), "old": str(versions.get("old", "")), "new": str(ROOT),
               "timeout": args.timeout, "sizes": {}}

    def save():
        results["load_end"] = load()
        out.write_text(json.dumps(results, indent=1))

    for n in (int(s) for s in args.sizes.split(",")):
        bench_size(n, args, versions, results, save)
    save()
    print()
    print(report(results))
    print(f"\n(results: {out})")


if __name__ == "__main__":
    main()
