"""The packaging scripts (packaging/*.py are scripts, not a package) loaded as modules for tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load(name: str):
    """A fresh module object of ``packaging/<name>.py`` (each call its own, so one test module's
    changes to its attributes never reach another's)."""
    spec = importlib.util.spec_from_file_location(f"test_packaging_{name}", REPO / "packaging" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
