"""What the bundles keep (packaging/filters.py, used by build.py and the spec): the lite bundle
keeps the exports quick training needs (issue 24: it once kept only the features export, and
lite could neither quick-train nor run a quick-trained model), and the Qt size filters match the
file names of Linux, Windows and macOS (they once matched only Linux's)."""

from __future__ import annotations

import packaging_scripts
import pytest

MODEL = "efficientnet-lite0"
KEY, KEY2, KEY3 = "0123456789abcdef0123", "fedcba9876543210fedc", "00112233445566778899"


@pytest.fixture(scope="module")
def filters():
    return packaging_scripts.load("filters")


@pytest.fixture(scope="module")
def build():
    return packaging_scripts.load("build")


def test_the_filter_knows_the_names_the_export_cache_really_writes(filters, tmp_path, monkeypatch):
    """The lite build once staged nothing: the cache key grew from 20 to 32 hex digits and the
    file-name pattern still wanted 20 ("staging made only []")."""
    from cnndesk.core.models.registry import default_model
    from cnndesk.core.runtime import export_cache

    monkeypatch.setenv("CNNDESK_CACHE_DIR", str(tmp_path))
    spec = default_model()
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights")
    names = []
    for variant in ("logits", "features", "multi"):
        onnx, record = export_cache.entry_paths(spec, export_cache.cache_key(spec, weights, variant), variant)
        names += [onnx.name, record.name]
        assert filters.export_variant(onnx.name, spec.name) == variant, onnx.name
    assert filters.missing_lite_exports(filters.staged_exports(names, spec.name, "lite"), spec.name) == []
    assert len(filters.staged_exports(names, spec.name, "full")) == 6


# what staging leaves in its cache folder (core.onnx_cache.entry_paths), plus strangers
CACHE = [
    f"{MODEL}-{KEY}.onnx", f"{MODEL}-{KEY}.json",                     # the classifier (logits)
    f"{MODEL}-features-{KEY2}.onnx", f"{MODEL}-features-{KEY2}.json",  # pooled features
    f"{MODEL}-multi-{KEY3}.onnx", f"{MODEL}-multi-{KEY3}.json", f"{MODEL}-multi-{KEY3}.onnx.data",
    "hashes.json", ".export-x1y2", "resnet50-aaaaaaaaaaaaaaaaaaaa.onnx", f"{MODEL}-{KEY}.onnx.tmp",
]


def test_lite_stages_features_and_multi_but_not_the_logits_export(tmp_path, build):
    src, dest = tmp_path / "cache", tmp_path / "stage"
    src.mkdir()
    for name in CACHE:
        (src / name).write_bytes(b"x")
    kept = build.copy_exports(src, dest, MODEL, "lite")
    assert sorted(p.name for p in dest.iterdir()) == kept == sorted([
        f"{MODEL}-features-{KEY2}.onnx", f"{MODEL}-features-{KEY2}.json",
        f"{MODEL}-multi-{KEY3}.onnx", f"{MODEL}-multi-{KEY3}.json", f"{MODEL}-multi-{KEY3}.onnx.data",
    ])


def test_full_stages_every_export_of_the_model(tmp_path, build):
    src, dest = tmp_path / "cache", tmp_path / "stage"
    src.mkdir()
    for name in CACHE:
        (src / name).write_bytes(b"x")
    kept = build.copy_exports(src, dest, MODEL, "full")
    assert kept == sorted(CACHE[:7])


def test_lite_staging_without_the_multi_export_stops_the_build(tmp_path, build):
    src = tmp_path / "cache"
    src.mkdir()
    for name in CACHE[:4]:  # no multi-stage export: quick training would fail in the bundle
        (src / name).write_bytes(b"x")
    with pytest.raises(SystemExit, match="multi"):
        build.copy_exports(src, tmp_path / "stage", MODEL, "lite")


def test_export_variants_from_names(filters):
    assert filters.export_variant(f"{MODEL}-{KEY}.onnx", MODEL) == "logits"
    assert filters.export_variant(f"{MODEL}-features-{KEY}.json", MODEL) == "features"
    assert filters.export_variant(f"{MODEL}-multi-{KEY}.onnx.data", MODEL) == "multi"
    assert filters.export_variant(f"{MODEL}-head.npz", MODEL) is None
    assert filters.export_variant(f"other-{KEY}.onnx", MODEL) is None
    assert filters.export_variant(f"{MODEL}-multi-{KEY}.onnx.tmp", MODEL) is None


# -- the Qt size filters --------------------------------------------------------------------
# destination names as PyInstaller lists them (binaries), per platform: (name, dropped?)
LINUX = [
    ("PySide6/Qt/lib/libQt6Pdf.so.6", True), ("PySide6/Qt/lib/libQt6VirtualKeyboard.so.6", True),
    ("PySide6/Qt/lib/libQt6QuickControls2.so.6", True), ("PySide6/Qt/lib/libQt6QuickTemplates2.so.6", True),
    ("PySide6/Qt/plugins/imageformats/libqpdf.so", True),
    ("PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so", True),
    ("PySide6/Qt/lib/libQt6Quick.so.6", False), ("PySide6/Qt/lib/libQt6Qml.so.6", False),
    ("PySide6/Qt/lib/libQt6Multimedia.so.6", False), ("PySide6/Qt/plugins/imageformats/libqjpeg.so", False),
    ("PySide6/Qt/plugins/multimedia/libffmpegmediaplugin.so", False), ("libpython3.11.so.1.0", False),
]
WINDOWS = [
    ("PySide6\\Qt6Pdf.dll", True), ("PySide6\\Qt6VirtualKeyboard.dll", True),
    ("PySide6\\Qt6QuickControls2.dll", True), ("PySide6\\Qt6QuickTemplates2.dll", True),
    ("PySide6\\plugins\\imageformats\\qpdf.dll", True),
    ("PySide6\\plugins\\platforminputcontexts\\qtvirtualkeyboardplugin.dll", True),
    ("PySide6\\Qt6Quick.dll", False), ("PySide6\\Qt6Qml.dll", False), ("PySide6\\Qt6Multimedia.dll", False),
    ("PySide6\\plugins\\imageformats\\qjpeg.dll", False),
    ("PySide6\\plugins\\multimedia\\ffmpegmediaplugin.dll", False), ("python311.dll", False),
]
MACOS = [
    ("PySide6/Qt/lib/QtPdf.framework/Versions/A/QtPdf", True),
    ("PySide6/Qt/lib/QtVirtualKeyboard.framework/Versions/A/QtVirtualKeyboard", True),
    ("PySide6/Qt/lib/QtQuickControls2.framework/Versions/A/QtQuickControls2", True),
    ("PySide6/Qt/lib/QtQuickTemplates2.framework/Versions/A/QtQuickTemplates2", True),
    ("PySide6/Qt/plugins/imageformats/libqpdf.dylib", True),
    ("PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.dylib", True),
    ("PySide6/Qt/lib/QtQuick.framework/Versions/A/QtQuick", False),
    ("PySide6/Qt/lib/QtQml.framework/Versions/A/QtQml", False),
    ("PySide6/Qt/lib/QtMultimedia.framework/Versions/A/QtMultimedia", False),
    ("PySide6/Qt/plugins/imageformats/libqjpeg.dylib", False), ("Python", False),
]


@pytest.mark.parametrize(("platform", "files"), [("linux", LINUX), ("win32", WINDOWS), ("darwin", MACOS)])
def test_qt_size_filter_matches_each_platforms_names(filters, platform, files):
    wrong = [(name, drop) for name, drop in files if filters.drop_qt_binary(name, platform) != drop]
    assert not wrong, f"{platform}: misjudged (name, should drop): {wrong}"


def test_macos_framework_resources_go_with_their_framework(filters):
    assert filters.drop_qt_data("PySide6/Qt/lib/QtPdf.framework/Resources/Info.plist", "darwin")
    assert not filters.drop_qt_data("PySide6/Qt/lib/QtCore.framework/Resources/Info.plist", "darwin")
    assert not filters.drop_qt_data("resources/icons/cnndesk-16.png", "darwin")


@pytest.mark.parametrize("name", [
    "PySide6/Qt/translations/qtbase_de.qm",         # Linux and macOS wheels
    "PySide6\\translations\\qtbase_de.qm",          # Windows wheel
    "resources/weights/efficientnet_lite0.pth",
])
def test_lite_leaves_out_translations_and_weights_on_every_platform(filters, name):
    assert filters.lite_drops_data(name)


@pytest.mark.parametrize("name", [
    "resources/labels/imagenet1k.txt", "resources/weights/efficientnet_lite0.pth.sha256",
    "resources/onnx/efficientnet-lite0-head.npz", "PySide6\\Qt6Core.dll", "cleanlab/translations.py",
])
def test_lite_keeps_the_rest(filters, name):
    assert not filters.lite_drops_data(name)


def test_staging_exports_fresh_even_from_a_prepared_checkout(build, tmp_path, monkeypatch):
    """After `make run` resources/onnx holds the classifier's export; the staging child must not
    take it from there (it then never reached the build's cache, and the full bundle shipped
    without it: its first answer waited 20-29 s for an export). The child runs with the bundled
    lookup off, so every export is written into the staging cache and copied from there."""
    seen = {}

    def fake_run(cmd, env=None, check=False, **kwargs):
        seen.update(env)
        cache = tmp_path / "stage" / "cache" / "onnx"
        cache.mkdir(parents=True)
        for variant in ("", "-features", "-multi"):
            for ext in (".onnx", ".json"):
                (cache / f"{MODEL}{variant}-{KEY}{ext}").write_text("x")
        (tmp_path / "stage" / "head.npz").write_text("x")
        (tmp_path / "stage" / "model.txt").write_text(MODEL)

    monkeypatch.setattr(build, "STAGE", tmp_path / "stage")
    monkeypatch.setattr(build.subprocess, "run", fake_run)
    build.stage("full")
    assert seen["CNNDESK_NO_BUNDLED_EXPORT"] == "1"
    shipped = sorted(p.name for p in (tmp_path / "stage" / "onnx").iterdir())
    assert f"{MODEL}-{KEY}.onnx" in shipped and f"{MODEL}-{KEY}.json" in shipped  # the classifier's
