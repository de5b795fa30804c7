"""Build the one-folder app with PyInstaller and self-test it, on Linux, macOS and Windows:

    python packaging/build.py full    (PyTorch included)            -> dist/full/cnndesk/
    python packaging/build.py lite    (no PyTorch; ONNX Runtime)     -> dist/lite/cnndesk/

macOS also gets dist/<flavour>/cnndesk.app (bundle id, icon, camera usage text); Windows a windowed
cnndesk.exe with version information. Writes build/package-<flavour>.json (build seconds, size,
first paint, self-test). Run it with the Python of the environment to bundle (CI: the runner's;
here: .venv/bin/python, which packaging/build.sh sets up first). No GNU tools needed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "build" / "stage"


def _load(name: str):
    """A sibling module of this script, by path (the tests load build.py by path too)."""
    spec = importlib.util.spec_from_file_location(f"cnndesk_packaging_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


filters = _load("filters")
linux_dist = _load("linux_dist")


def stage(flavour: str) -> None:
    """The default model's weights and verified ONNX exports, for the bundle's resources."""
    print("build: staging the default model's weights and verified ONNX exports", flush=True)
    shutil.rmtree(STAGE, ignore_errors=True)
    (STAGE / "weights").mkdir(parents=True)
    (STAGE / "onnx").mkdir()
    cache = STAGE / "cache"
    # exports made fresh into the staging cache: a checkout prepared by `make run` has the
    # classifier's export in resources/onnx, which the lookup would use instead of writing it into
    # the cache, and the full bundle then shipped without it (its first answer waited for an export)
    env = dict(os.environ, CNNDESK_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT), CNNDESK_NO_BUNDLED_EXPORT="1")
    code = r"""
import hashlib, shutil, sys
from pathlib import Path
import numpy as np
from cnndesk.core.predict.embeddings import FeatureExtractor
from cnndesk.core.predict.classifier import Classifier
from cnndesk.core.runtime.resolve import torch_model
from cnndesk.core.models.registry import default_model
stage = Path(sys.argv[1])
spec = default_model()
weights = spec.weights.local_path()
shutil.copy(weights, stage / "weights")
(stage / "weights" / (weights.name + ".sha256")).write_text(hashlib.sha256(weights.read_bytes()).hexdigest() + "\n")
assert Classifier(spec, device="cpu").backend == "onnx"   # exports + verifies the classifier
FeatureExtractor(spec, device="cpu")                        # and the feature extractor (quick training)
FeatureExtractor(spec, device="cpu", stages="multi")        # multi-stage features (quick training, novelty)
net = torch_model(spec)  # the classifier layer as a numpy head (lite: logits = features @ W.T + b)
np.savez(stage / "head.npz", weight=net.classifier.weight.detach().numpy(), bias=net.classifier.bias.detach().numpy())
(stage / "model.txt").write_text(spec.name)
"""
    subprocess.run([sys.executable, "-c", code, str(STAGE)], env=env, check=True)
    model = (STAGE / "model.txt").read_text().strip()
    copy_exports(cache / "onnx", STAGE / "onnx", model, flavour)
    if flavour == "lite":  # the features export + a numpy head instead of a second 19 MB export
        shutil.copy2(STAGE / "head.npz", STAGE / "onnx" / f"{model}-head.npz")


def copy_exports(src: Path, dest: Path, model: str, flavour: str) -> list[str]:
    """Copy ``model``'s verified exports from the build's cache into the bundle's resources/onnx:
    all of them (full) or all but the classifier's logits export (lite, which keeps the features
    and the multi-stage features that quick training and quick-trained models run on)."""
    names = filters.staged_exports((f.name for f in src.iterdir()), model, flavour)
    if flavour == "lite" and (missing := filters.missing_lite_exports(names, model)):
        raise SystemExit(f"build: the lite bundle needs the {' and '.join(missing)} export(s) of {model}; "
                         f"staging made only {names}")
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(src / name, dest / name)
    return names


def remove_dangling_links(folder: Path) -> int:
    """Libraries the spec drops (Pdf, VirtualKeyboard) leave symlinks pointing nowhere."""
    n = 0
    for p in folder.rglob("*"):
        if p.is_symlink() and not p.exists():
            p.unlink()
            n += 1
    return n


def strip_libpython(app: Path) -> None:
    """pyenv's libpython keeps about 18 MB of debug symbols (Linux). Other libraries are left
    alone: stripping auditwheel-patched ones such as numpy's OpenBLAS breaks them."""
    strip = shutil.which("strip")
    if not strip or not sys.platform.startswith("linux"):
        return
    for lib in (app / "_internal").glob("libpython3*.so*"):
        if lib.is_file() and not lib.is_symlink():
            subprocess.run([strip, "--strip-debug", str(lib)], check=False)


def folder_mb(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) >> 20


def executable(flavour: str) -> Path:
    base = ROOT / "dist" / flavour
    if sys.platform == "darwin":
        return base / "cnndesk.app" / "Contents" / "MacOS" / "cnndesk"
    return base / "cnndesk" / ("cnndesk.exe" if sys.platform == "win32" else "cnndesk")


def fresh_env(tmp: Path) -> dict:
    """An empty HOME, cache, data and settings folder: nothing borrowed from the build machine."""
    mine = ("CNNDESK_CACHE_DIR", "CNNDESK_DATA_DIR", "CNNDESK_RESOURCES", "CNNDESK_NO_BUNDLED_EXPORT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "ORT_")) and k not in mine}
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen")
    if sys.platform == "win32":  # the user folders are not under HOME there
        env.update(CNNDESK_CACHE_DIR=str(home / "cache"), CNNDESK_DATA_DIR=str(home / "data"))
    return env


def telemetry_files(tmp: Path) -> list[str]:
    """ONNX Runtime's telemetry files (device id, events database) anywhere under ``tmp``."""
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if ".onnxruntime" in p.parts)


def selftest(exe: Path) -> bool:
    print("build: self-test of the frozen app (empty home, cache, settings and data: nothing borrowed)", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-selftest-"))
    try:
        r = subprocess.run([str(exe), "--selftest"], env=fresh_env(tmp), timeout=900)
        leaked = telemetry_files(tmp)
    finally:  # each build used to leave its self-test's home behind in the temp folder
        shutil.rmtree(tmp, ignore_errors=True)
    if leaked:
        print(f"build: ONNX Runtime telemetry files appeared: {leaked}", flush=True)
    return r.returncode == 0 and not leaked


def smoke_folder(root: Path) -> Path:
    """Two class folders of generated pictures (stripes, dots; 8 each, random colours): enough
    for the dataset check and for `cnndesk label` to group and ask."""
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(0)
    for kind in ("stripes", "dots"):
        (root / kind).mkdir(parents=True)
        for i in range(8):
            img = Image.new("RGB", (64, 64), tuple(rng.randrange(256) for _ in range(3)))
            d, fg = ImageDraw.Draw(img), tuple(rng.randrange(256) for _ in range(3))
            for j in range(12):
                if kind == "stripes":
                    d.line([(j * 8 - 16, 0), (j * 8 + 4, 64)], fill=fg, width=3)
                else:
                    x, y = rng.randrange(64), rng.randrange(64)
                    d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=fg)
            img.save(root / kind / f"{kind}{i}.png")
    return root


def smoke(exe: Path) -> dict:
    """The commands whose imports are lazy, run by the frozen app with an empty home on generated
    pictures (the self-test does not reach them): `doctor` must embed with the multi-stage export
    as from source ("onnx-multi": lite once lacked the `onnx` package it reads that export with, and
    quietly judged labels on other features), `label --ask` must ask, `undo --list` must answer.
    Returns {"ok": bool, step: what it gave}."""
    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-smoke-"))
    data = smoke_folder(tmp / "data")
    env = dict(fresh_env(tmp), CNNDESK_DEVICE="cpu")
    steps = {"doctor": ["doctor", str(data), "-f", "json", "-q", "--device", "cpu"],
             "label": ["label", str(data), "--ask", "3", "-f", "json", "-q"], "undo": ["undo", "--list", "-f", "json"]}
    result, ok = {}, True
    try:
        runs = {name: subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=600)
                for name, args in steps.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, args in steps.items():
        r = runs[name]
        try:
            out = json.loads(r.stdout)
            got = (out["summary"]["embeddings"] if name == "doctor" else
                   len(out["ask"]) if name == "label" else len(out["operations"]))
        except (ValueError, KeyError, TypeError):
            got = f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}"
        want = {"doctor": "onnx-multi", "label": 3, "undo": 0}[name]
        result[name] = got
        if got != want or r.returncode not in ((0, 1) if name == "doctor" else (0,)):  # doctor: 1 = issues found
            print(f"build: smoke check '{' '.join(args[:1])}' gave {got!r} (exit {r.returncode}), wanted {want!r}", flush=True)
            ok = False
    return {"ok": ok, **result}


def first_answer(exe: Path) -> float | None:
    """`cnndesk classify cat.jpg`, a new process with an empty home and cache: seconds to the answer
    (median of 3), None if it failed or left telemetry files."""
    times = []
    for _ in range(3):
        tmp = Path(tempfile.mkdtemp(prefix="cnndesk-first-"))
        t0 = time.perf_counter()
        r = subprocess.run([str(exe), "classify", str(ROOT / "resources" / "samples" / "cat.jpg")],
                           env=fresh_env(tmp), capture_output=True, text=True, timeout=300)
        seconds = time.perf_counter() - t0
        leaked = telemetry_files(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if r.returncode != 0 or leaked:
            print(f"build: first answer failed: {r.stderr[-500:]} {leaked}", flush=True)
            return None
        times.append(seconds)
    return round(statistics.median(times), 2)


def first_paint(exe: Path) -> float | None:
    """Launch -> first paint of the window (offscreen, median of 3)."""
    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-paint-"))
    env = dict(os.environ, CNNDESK_STARTUP_PROBE="1", CNNDESK_CACHE_DIR=str(tmp / "cache"),
               XDG_CONFIG_HOME=str(tmp / "config"), QT_QPA_PLATFORM="offscreen")
    times = []
    try:
        for _ in range(3):
            t0 = time.time()
            out = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=300).stdout
            for line in out.splitlines():
                if line.startswith("first-paint "):
                    times.append(float(line.split()[1]) - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return round(statistics.median(times), 3) if times else None


def main(argv: list[str]) -> int:
    flavour = argv[0] if argv else "full"
    if flavour not in ("full", "lite"):
        print("usage: build.py full|lite", file=sys.stderr)
        return 2
    stage(flavour)
    start = time.time()
    env = dict(os.environ, CNNDESK_FLAVOUR=flavour)
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                    "--distpath", str(ROOT / "dist" / flavour), "--workpath", str(ROOT / "build" / f"pyinstaller-{flavour}"),
                    str(ROOT / "packaging" / "cnndesk.spec")], env=env, check=True)
    seconds = round(time.time() - start)
    app = ROOT / "dist" / flavour / "cnndesk"
    links = remove_dangling_links(ROOT / "dist" / flavour)
    strip_libpython(app)
    size = folder_mb(ROOT / "dist" / flavour / ("cnndesk.app" if sys.platform == "darwin" else "cnndesk"))
    print(f"build: {flavour} built in {seconds} s, {size} MB ({links} dangling links removed)", flush=True)
    exe = executable(flavour)
    tested = selftest(exe)
    checks = smoke(exe) if tested and sys.platform != "win32" else None  # a windowed exe prints nothing
    passed = tested and (checks is None or checks["ok"])
    paint = first_paint(exe) if passed else None
    answer = first_answer(exe) if passed and sys.platform != "win32" else None
    report = {"flavour": flavour, "platform": sys.platform, "build_seconds": seconds, "size_mb": size,
              "first_paint_s": paint, "first_answer_s": answer, "selftest": "passed" if tested else "FAILED", "smoke": checks,
              "load": [round(x, 1) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}
    if passed and sys.platform.startswith("linux"):
        try:
            report.update(linux_packages(app, flavour))
        except (OSError, subprocess.CalledProcessError) as exc:  # the bundle itself is fine: say so, fail
            print(f"build: the Linux packages failed: {exc}", flush=True)
            report["linux_packages"] = f"FAILED: {exc}"
            passed = False
    out = ROOT / "build" / f"package-{flavour}.json"
    out.write_text(json.dumps(report) + "\n")
    print(json.dumps(report))
    return 0 if passed else 1


def linux_packages(app: Path, flavour: str) -> dict:
    """The .deb (where dpkg-deb is) and the .tar.gz of the app, with their download sizes."""
    import re

    version = re.search(r'__version__ = "([^"]+)"', (ROOT / "cnndesk" / "__init__.py").read_text()).group(1)
    made = {}
    t0 = time.time()
    tarball = linux_dist.make_tarball(app, ROOT / "dist", flavour, version)
    made.update(tar_gz=str(tarball.relative_to(ROOT)), tar_gz_mb=round(tarball.stat().st_size / 2**20, 1),
                tar_gz_seconds=round(time.time() - t0))
    if shutil.which("dpkg-deb"):
        t0 = time.time()
        deb = linux_dist.make_deb(app, ROOT / "dist", flavour, version, work=ROOT / "build")
        made.update(deb=str(deb.relative_to(ROOT)), deb_mb=round(deb.stat().st_size / 2**20, 1),
                    deb_seconds=round(time.time() - t0))
    else:
        print("build: dpkg-deb not found: no .deb (sudo apt-get install dpkg-dev)", flush=True)
    for key in ("tar_gz", "deb"):
        if key in made:
            print(f"build: {made[key]}: {made[key + '_mb']} MB", flush=True)
    return made


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

