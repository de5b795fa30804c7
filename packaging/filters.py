"""What the bundles keep: pure functions over file names, shared by packaging/build.py (staging the
ONNX exports) and packaging/cnndesk.spec (the Qt size filters), and unit-tested on sample file
lists of Linux, Windows and macOS (tests/core/test_packaging_filters.py). No PyInstaller, no
cnndesk imports: the spec loads this file by path."""

from __future__ import annotations

import re

# -- the staged ONNX exports -------------------------------------------------------------------
# The ONNX cache names an export "<model>-<key>.onnx" (the classifier's logits) or
# "<model>-<variant>-<key>.onnx" (core.onnx_cache.entry_paths), each with a ".json" record and
# perhaps a ".onnx.data" file; <key> is hex digits (32 today: core.runtime.export_cache.cache_key;
# 20 before the hardening round, so any length from 20 to 64 is accepted).
EXPORT_SUFFIXES = (".onnx", ".json", ".onnx.data")
_EXPORT = re.compile(r"(?P<stem>.+?)(?:-(?P<variant>features|multi))?-(?P<key>[0-9a-f]{20,64})"
                     r"(?P<suffix>\.onnx\.data|\.onnx|\.json)")
# lite runs the classifier as the features export + a numpy head (a second 19 MB export saved);
# quick training and quick-trained models need the multi-stage features ("multi")
LITE_VARIANTS = ("features", "multi")


def export_variant(name: str, model: str) -> str | None:
    """"logits", "features" or "multi" for a file of ``model``'s export; None for anything else."""
    m = _EXPORT.fullmatch(name)
    if m is None or m.group("stem") != model:
        return None
    return m.group("variant") or "logits"


def staged_exports(names, model: str, flavour: str) -> list[str]:
    """Which files of the export cache go into a bundle's resources/onnx. Full: every export of
    ``model``; lite: all but the logits export (its numpy head stands in for it)."""
    keep = []
    for name in names:
        variant = export_variant(name, model)
        if variant is None:
            continue
        if flavour == "lite" and variant not in LITE_VARIANTS:
            continue
        keep.append(name)
    return sorted(keep)


def missing_lite_exports(names, model: str) -> list[str]:
    """The variants lite needs that ``names`` lacks (an .onnx and its .json record each)."""
    missing = []
    for variant in LITE_VARIANTS:
        have = {n[-5:] for n in names if export_variant(n, model) == variant and n.endswith((".onnx", ".json"))}
        if have != {".onnx", ".json"}:
            missing.append(variant)
    return missing


# -- the Qt size filters (PyInstaller TOC destination names) ------------------------------------
# Qt libraries pulled in only by plugins cnndesk does not need (the virtual keyboard input context,
# the PDF image-format plugin). Qt Quick/QML must stay: the FFmpeg multimedia plugin links them.
QT_DROP_MODULES = ("Pdf", "VirtualKeyboard", "QuickControls2", "QuickTemplates2")
QT_DROP_PLUGINS = ("qtvirtualkeyboardplugin", "qpdf")


def _parts(dest: str) -> list[str]:
    return dest.replace("\\", "/").split("/")


def _platform(platform: str) -> str:
    if platform.startswith("win"):
        return "windows"
    return "macos" if platform == "darwin" else "linux"


def drop_qt_binary(dest: str, platform: str) -> bool:
    """True for a Qt library or plugin the bundles leave out, named as ``platform`` names it:
    Linux ``libQt6Pdf.so.6`` / ``libqpdf.so``, Windows ``Qt6Pdf.dll`` / ``qpdf.dll``, macOS
    ``QtPdf.framework/…`` / ``libqpdf.dylib``."""
    parts = _parts(dest)
    name = parts[-1]
    kind = _platform(platform)
    if kind == "macos":
        frameworks = tuple(f"Qt{m}" for m in QT_DROP_MODULES)
        if any(p.startswith(frameworks) and p.endswith(".framework") for p in parts):
            return True
        return name.startswith(tuple(f"lib{p}" for p in QT_DROP_PLUGINS)) and name.endswith(".dylib")
    if kind == "windows":
        lower = name.lower()
        return (lower.endswith(".dll") and (lower.startswith(tuple(f"qt6{m}".lower() for m in QT_DROP_MODULES))
                                            or lower.startswith(QT_DROP_PLUGINS)))
    return name.startswith(tuple(f"libQt6{m}" for m in QT_DROP_MODULES) + tuple(f"lib{p}" for p in QT_DROP_PLUGINS))


def drop_qt_data(dest: str, platform: str) -> bool:
    """Data files of the dropped Qt modules (macOS frameworks carry Resources/Info.plist)."""
    return _platform(platform) == "macos" and drop_qt_binary(dest, platform)


def is_qt_translation(dest: str) -> bool:
    """Qt's own translations (``PySide6/Qt/translations/*.qm`` on Linux and macOS,
    ``PySide6\\translations\\*.qm`` on Windows)."""
    parts = _parts(dest)
    return parts[-1].endswith(".qm") and "translations" in parts[:-1]


def lite_drops_data(dest: str) -> bool:
    """lite never loads the PyTorch weights (a digest sidecar keys the bundled ONNX export) and its
    UI is English: Qt's translations stay out too (8 MB)."""
    return dest.endswith(".pth") or is_qt_translation(dest)
