"""What the lite bundle leaves out against what the code imports, top-level and inside functions
(a lazy import is invisible until its command runs in the built bundle). PyTorch and what only
it needs may be imported only where a torch-only feature lives; every other package the spec
leaves out may be imported only by the modules listed here, each with the reason lite never
runs that import. A lazy import with a graceful ImportError fallback is the dangerous case: the
bundle does not fail, it quietly does something else. Found on 8 Dec 2026: lite excluded
``onnx`` with PyTorch, and the dataset check (core/doctor/embed.py reads the multi-stage
export's graph with it) silently judged labels with the last layer's features instead of quick
training's (the summary said "embeddings": "onnx", from source "onnx-multi")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "cnndesk.spec"

# PyTorch's own family: imported only behind the lite build's "needs the full version" checks
# (tests/packaging/test_pyinstaller_spec.py runs those paths with torch blocked)
TORCH_FAMILY = {"torch", "torchvision", "timm", "triton", "nvidia", "cuda"}
# (excluded package, importing module) -> why lite never runs that import
ALLOWED = {
    ("openvino", "cnndesk.core.export.bundle_network"): "the OpenVINO export converts a PyTorch export",
    ("openvino", "cnndesk.export_kit.predict"): "runs in an exported bundle, not in the app",
    ("safetensors.torch", "cnndesk.core.networks.build"): "torch networks (full only)",
    ("ray", "cnndesk.cluster.ray_classify"): "cnndesk.cluster is left out of both bundles",
    ("pyarrow", "cnndesk.cluster.ray_classify"): "cnndesk.cluster is left out of both bundles",
    ("cnndesk.cluster", "cnndesk.cli.classify"): "--engine ray says the cluster extras are missing",
}


def _spec_list(tree: ast.Module, name: str) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            value = node.value
            if isinstance(value, ast.ListComp):  # [f"PySide6.{m}" for m in (...)]
                prefix = value.elt.values[0].value
                return [prefix + m for m in ast.literal_eval(value.generators[0].iter)]
            return list(ast.literal_eval(value))
    raise AssertionError(f"{name} not found in {SPEC}")


def lite_excludes() -> list[str]:
    tree = ast.parse(SPEC.read_text(encoding="utf-8"))
    return _spec_list(tree, "QT_UNUSED") + _spec_list(tree, "ALWAYS_OUT") + _spec_list(tree, "TORCH")


def imports() -> dict[str, set[str]]:
    """Every module name imported anywhere in cnndesk/ (functions included) -> the importers."""
    found: dict[str, set[str]] = {}
    for py in sorted((ROOT / "cnndesk").rglob("*.py")):
        module = ".".join(py.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                found.setdefault(name, set()).add(module)
    return found


def excluded_by(name: str, excludes: list[str]) -> str | None:
    return next((e for e in excludes if name == e or name.startswith(e + ".")), None)


def test_the_spec_lists_are_read():
    excludes = lite_excludes()
    assert {"torch", "PySide6.QtQml", "pytest", "openvino"} <= set(excludes)


def test_lite_leaves_out_nothing_that_a_lite_feature_imports():
    excludes = lite_excludes()
    wrong = []
    for name, importers in imports().items():
        package = excluded_by(name, excludes)
        if package is None or package.split(".")[0] in TORCH_FAMILY:
            continue
        for importer in sorted(importers):
            if importer.startswith(package + ".") or importer == package:
                continue  # the left-out package's own modules
            if (package, importer) not in ALLOWED:
                wrong.append(f"{importer} imports {name}, which the lite bundle leaves out ({package})")
    assert not wrong, "\n".join(wrong)


def test_the_dataset_check_can_read_the_multi_stage_export_in_lite():
    """core/doctor/embed.py finds the last layer's columns of the multi-stage export with the
    ``onnx`` package; without it the lite doctor falls back to the last-layer export alone."""
    source = (ROOT / "cnndesk" / "core" / "doctor" / "embed.py").read_text(encoding="utf-8")
    assert "import onnx" in source
    assert excluded_by("onnx", lite_excludes()) is None


def test_every_allowance_is_still_needed():
    found = imports()
    excludes = lite_excludes()
    for package, importer in ALLOWED:
        assert excluded_by(package, excludes) == package, f"{package} is no longer left out of lite"
        assert any(excluded_by(n, [package]) and importer in mods for n, mods in found.items()), \
            f"{importer} no longer imports {package}: drop the allowance"
