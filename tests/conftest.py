"""Test isolation: every run gets its own cache, data and torch-cache folders (so the ONNX export
path runs for real and nothing touches the user's files), and nothing may reach the network."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

_ROOT = Path(tempfile.mkdtemp(prefix="cnndesk-tests-"))
os.environ["CNNDESK_CACHE_DIR"] = str(_ROOT / "cache")
os.environ["CNNDESK_DATA_DIR"] = str(_ROOT / "data")
os.environ["TORCH_HOME"] = str(_ROOT / "torch")
os.environ["XDG_CONFIG_HOME"] = str(_ROOT / "config")  # QSettings of the app under test
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["CNNDESK_NO_GPU"] = "1"  # tests pin the CPU path; GPU checks run on the device machine
os.environ["CNNDESK_NO_BUNDLED_EXPORT"] = "1"  # the export path runs for real, even after `make run`

REPO = Path(__file__).resolve().parent.parent
# the generated data sets (shapes, trust_data, videos) live in tests/core, shared by the tests in
# every folder and by the benchmarks
sys.path.insert(0, str(REPO / "tests" / "core"))
SAMPLES = REPO / "resources" / "samples"


@pytest.fixture(scope="session")
def samples() -> dict[str, Path]:
    return {p.stem: p for p in SAMPLES.glob("*.jpg")}


@pytest.fixture(scope="session")
def classifier():
    """The default model on the CPU fast path (exported to ONNX once per test session)."""
    from cnndesk.core.predict.classifier import Classifier

    return Classifier()


@pytest.fixture
def isolated_dirs(tmp_path, monkeypatch):
    """Per-test cache/data/torch folders for tests that must start from nothing."""
    for var, sub in (("CNNDESK_CACHE_DIR", "cache"), ("CNNDESK_DATA_DIR", "data"), ("TORCH_HOME", "torch")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path
