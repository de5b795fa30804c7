"""The new detector travels: an ONNX export bundle's predict.py (its vendored core/trust.py) gives
the app's novelty scores and unknown flags for a quick model with the class-conditional term."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shapes import make_dataset

from cnndesk.core.export.bundle import export_bundle
from cnndesk.core.models.registry import get_spec
from cnndesk.core.training.config import TrainConfig
from cnndesk.core.training.datasets import scan
from cnndesk.core.training.dispatch import train


def test_bundle_predict_gives_the_apps_novelty_and_unknown_flags(tmp_path, classifier):
    ds = scan(make_dataset(tmp_path / "data", (30, 30, 30)), seed=4)
    path = train(ds, TrainConfig(mode="quick", seed=4)).save(tmp_path / "shapes")
    spec = get_spec(str(path))
    assert spec.metadata["novelty2"]["metric"] == "knn+maha+synth"  # not "novelty": older versions
    out = tmp_path / "bundle"
    rep = export_bundle(spec, "onnx", out)
    parity = json.loads((out / "parity.json").read_text())
    assert rep.ok and parity["same_unknown"] == parity["images"] == len(ds.val)
    info = json.loads((out / "model.json").read_text())
    assert info["unknown"]["metric"] == "knn+maha+synth" and len(info["unknown"]["norm"]) == 6
    samples = sorted(str(p) for p in (Path(__file__).resolve().parents[3] / "resources" / "samples").glob("*.jpg"))
    images = [str(p) for p, _ in ds.val[:10]] + samples
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run([sys.executable, str(out / "predict.py"), *images], capture_output=True, text=True,
                         cwd=elsewhere, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    app = subprocess.run([sys.executable, "-m", "cnndesk", "classify", "--model", str(path), "-f", "json", *images],
                         capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[3])
    got, want = json.loads(run.stdout), json.loads(app.stdout)
    assert [r["unknown"] for r in got] == [r["unknown"] for r in want]
    assert all(abs(g["novelty"] - w["novelty"]) < 1e-3 for g, w in zip(got, want, strict=True))
    assert all(r["unknown"] for r in got if r["path"] in samples)  # photos: not one of the shapes
