"""Hostile files, names and disks, in process. The CLI side (exit codes,
one-line messages, nothing created) is in tests/cli/test_cli_hostile_input.py; the corpus of hostile files is
tests/hostile/files (rebuilt by tests/hostile/make_corpus.py)."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cnndesk.core.common import safeio
from cnndesk.core.common.errors import ImageLoadError, ModelError
from cnndesk.core.organize import sorting
from cnndesk.core.predict import results as results_io
from tests.hostile import make_corpus, runtime

CORPUS = runtime.CORPUS
needs_mount = pytest.mark.skipif(not runtime.can_mount(), reason="needs root to mount a tmpfs")


@pytest.fixture
def tmpfs(tmp_path):
    mounts = []

    def make(size="1M", readonly=False, name="disk"):
        m = runtime.Tmpfs(tmp_path / name, size, readonly)
        mounts.append(m)
        return m

    yield make
    for m in mounts:
        m.close()


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".cnndesk-tmp" in p.name or p.name.endswith((".part", ".partial"))]


# -- 1. writes outside the destination ------------------------------------------------------------
def test_safe_write_never_follows_a_planted_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out.csv"
    for planted in (tmp_path / "out.csv.part", tmp_path / ".out.csv.part"):  # the old fixed names
        planted.symlink_to(victim)
    with safeio.safe_write(out, "w") as fh:
        fh.write("results")
    assert victim.read_text() == "precious"
    assert out.is_file() and not out.is_symlink() and out.read_text() == "results"
    # a symlink at the destination itself is replaced (with --force), its target untouched
    out.unlink()
    out.symlink_to(victim)
    with safeio.safe_write(out, "w", overwrite=True) as fh:
        fh.write("new")
    assert not out.is_symlink() and out.read_text() == "new" and victim.read_text() == "precious"


def test_sort_copy_ignores_planted_part_symlink(tmp_path, samples):
    victim = tmp_path / "victim.jpg"
    victim.write_bytes(b"precious")
    dest = tmp_path / "sorted"
    (dest / "cat").mkdir(parents=True)
    src = samples["cat"]
    (dest / "cat" / f".{src.name}.cnndesk-part").symlink_to(victim)  # the old fixed temp name
    plan = sorting.plan_sort([(str(src), "cat", 0.9, None)], dest)
    rep = sorting.execute(plan, "copy")
    assert not rep.failed and victim.read_bytes() == b"precious"
    out = dest / "cat" / src.name
    assert out.is_file() and not out.is_symlink() and out.read_bytes() == src.read_bytes()


def test_new_files_follow_the_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        with safeio.safe_write(tmp_path / "m.safetensors", "wb") as fh:
            fh.write(b"x")
        assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        with safeio.safe_write(tmp_path / "n.bin", "wb") as fh:
            fh.write(b"x")
        assert (tmp_path / "n.bin").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_model_file_and_training_save_follow_the_umask(tmp_path):
    from cnndesk.core.models.files import save_model_file
    from cnndesk.core.models.registry import default_model

    old = os.umask(0o022)
    try:
        p = save_model_file(tmp_path / "m", {"w": np.zeros(2, np.float32)}, arch="timm:resnet18",
                            labels=["a", "b"], preprocess=default_model().preprocess)
        assert p.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


# -- 2. moves across filesystems, full disks --------------------------------------------------------
def test_cross_fs_move_copies_to_temp_then_renames(tmp_path, monkeypatch):
    """While the data is copied, nothing exists under the final name (a kill mid-copy leaves at
    most a hidden temp file); the source goes only after the rename."""
    src = tmp_path / "a" / "big.jpg"
    src.parent.mkdir()
    src.write_bytes(os.urandom(3 << 20))
    dst = tmp_path / "b" / "big.jpg"
    dst.parent.mkdir()
    real_link = os.link

    def no_link(a, b, **kw):  # as across filesystems
        if Path(a) == src:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(a, b, **kw)

    seen = []
    real_copy = shutil.copyfileobj

    def watch(fin, fout, length=0):
        seen.append((dst.exists(), src.exists()))
        return real_copy(fin, fout, length)

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copyfileobj", watch)
    safeio.move_file(src, dst)
    assert seen == [(False, True)]
    assert dst.stat().st_size == 3 << 20 and not src.exists() and not _leftovers(dst.parent)


def test_copy_on_a_full_disk_leaves_nothing_enospc_simulated(tmp_path, monkeypatch):
    src = tmp_path / "src.jpg"
    src.write_bytes(os.urandom(1 << 20))
    dst = tmp_path / "out" / "src.jpg"
    dst.parent.mkdir()
    real_copy = shutil.copyfileobj

    def full(fin, fout, length=0):
        fout.write(fin.read(1000))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full)
    with pytest.raises(OSError):
        safeio.copy_file(src, dst)
    monkeypatch.setattr(shutil, "copyfileobj", real_copy)
    assert list(dst.parent.iterdir()) == [] and src.stat().st_size == 1 << 20


@needs_mount
def test_sort_move_onto_a_real_full_disk(tmp_path, tmpfs, samples):
    """Moving onto a small tmpfs (another filesystem): files that fit arrive whole; the ones that
    do not stay where they were, with a plain reason; no 0-byte or partial file, no temp file."""
    srcdir = tmp_path / "photos"
    srcdir.mkdir()
    rows = []
    for i in range(4):
        p = srcdir / f"p{i}.bin.jpg"
        p.write_bytes(os.urandom(400_000))
        rows.append((str(p), "cat", 0.9, None))
    disk = tmpfs("1M")
    plan = sorting.plan_sort(rows, disk.path / "sorted")
    rep = sorting.execute(plan, "move")
    assert rep.failed and rep.done
    assert all("disk is full" in msg for _, msg in rep.failed)
    for src, target in rep.done:
        assert target.stat().st_size == 400_000 and not src.exists()
    for src, _ in rep.failed:
        assert src.stat().st_size == 400_000  # still there, whole
    names = os.listdir(disk.path / "sorted" / "cat")
    assert sorted(names) == sorted(t.name for _, t in rep.done)  # no partial, no temp


@needs_mount
def test_safe_write_on_a_real_full_disk_keeps_the_old_file(tmpfs):
    disk = tmpfs("256k")
    out = disk.path / "results.csv"
    out.write_text("old results")
    disk.fill()
    with pytest.raises(OSError) as info:
        with safeio.safe_write(out, "w") as fh:
            for _ in range(1000):
                fh.write("x" * 4096)
    assert info.value.errno == errno.ENOSPC
    assert out.read_text() == "old results" and not _leftovers(disk.path)


# -- 3-6. model files ---------------------------------------------------------------------------
@pytest.fixture
def hostile_models(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNDESK_DATA_DIR", str(tmp_path / "data"))  # the export cache is shared
    folder = tmp_path / "data" / "models"
    folder.mkdir(parents=True)
    for p in (CORPUS / "models").iterdir():
        shutil.copy(p, folder / p.name)
    runtime.fifo(folder / "fifo.safetensors")
    return folder


def test_every_hostile_model_file_is_listed_unusable_with_its_reason(hostile_models):
    from cnndesk.core.models.registry import list_models, user_model_entries

    t0 = time.perf_counter()
    usable, bad = user_model_entries()  # no hang on the FIFO, no exception
    assert time.perf_counter() - t0 < 20
    reasons = {p.stem: r for p, r in bad}
    for name, word in make_corpus.EXPECT_MODELS.items():
        assert word.lower() in reasons[name].lower(), (name, reasons.get(name))
    assert "named pipe" in reasons["fifo"]
    assert {s.name for s in usable} == set(make_corpus.EXPECT_LATE)  # they fail later, see below
    assert len(list_models()) == 5 + len(usable)
    assert all("\n" not in r and "Traceback" not in r for r in reasons.values())


def test_get_spec_names_an_unusable_model_and_why(hostile_models):
    from cnndesk.core.models.registry import get_spec

    with pytest.raises(ModelError, match="unusable.*nested"):
        get_spec("deep_json")
    with pytest.raises(ModelError, match="named pipe"):
        get_spec(str(hostile_models / "fifo.safetensors"))


def test_head_of_the_wrong_width_is_refused_when_loading(hostile_models, classifier):
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.predict.classifier import Classifier

    with pytest.raises(ModelError, match="17 features"):
        Classifier(get_spec("head_wrong_width"))


def test_unknown_or_network_architectures_are_refused():
    pytest.importorskip("torch")
    import timm  # noqa: F401 - imported first so the timing below is the check itself
    import torchvision  # noqa: F401

    from cnndesk.core.networks.build import create_architecture

    for arch in ("torchvision:no_such_net", "timm:hf-hub:timm/resnet18.a1_in1k", "timm:hf_hub:x/y",
                 "timm:no_such_net", "pickle:x", "timm:../../etc"):
        t0 = time.perf_counter()
        with pytest.raises(ModelError, match="architecture"):
            create_architecture(arch, 2)
        assert time.perf_counter() - t0 < 5  # never a 30 s network timeout


def test_fifo_as_base_or_weights_is_refused_without_hanging(tmp_path):
    from cnndesk.core.models.registry import get_spec

    f = runtime.fifo(tmp_path / "base.safetensors")
    done = []
    t = threading.Thread(target=lambda: done.append(_raises(lambda: get_spec(str(f)))), daemon=True)
    t.start()
    t.join(10)
    assert done and "named pipe" in done[0]


def _raises(fn) -> str:
    try:
        fn()
    except Exception as exc:
        return str(exc)
    return ""


def test_zoo_weights_garbage_is_rechecked_and_removed(isolated_dirs, monkeypatch):
    from cnndesk.core.common.errors import NetworkRequiredError
    from cnndesk.core.models.download import ensure_weights
    from cnndesk.core.models.registry import get_spec

    spec = get_spec("resnet50")
    path = spec.weights.cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<html>captive portal</html>")
    monkeypatch.setenv("CNNDESK_OFFLINE", "1")
    with pytest.raises(NetworkRequiredError) as info:
        ensure_weights(spec)
    msg = str(info.value)
    assert "damaged (checksum mismatch)" in msg and "weights_only" not in msg
    assert not path.exists()


def test_damaged_pth_gives_no_torch_advice(tmp_path):
    pytest.importorskip("torch")
    from cnndesk.core.networks.build import read_state_dict

    p = tmp_path / "w.pth"
    p.write_bytes(b"\x80\x04\x95garbage")
    with pytest.raises(ModelError) as info:
        read_state_dict(p)
    assert "weights_only" not in str(info.value) and "damaged" in str(info.value)


# -- 7. memory ----------------------------------------------------------------------------------
def test_big_webp_and_png_are_shrunk_before_conversion(tmp_path):
    from cnndesk.core.images.load import load_image

    webp = runtime.big_webp(tmp_path / "big.webp", (6000, 4000))
    png = runtime.big_png(tmp_path / "big.png", (6000, 4000), "RGBA")
    for p in (webp, png):
        img = load_image(p, min_side=256)
        assert img.mode == "RGB" and img.info["original_size"] == (6000, 4000)
        assert min(img.size) >= 512 and img.info["draft_scale"] == 7 and img.size == (858, 572)
        capped = load_image(p, max_side=2048)
        assert max(capped.size) <= 2048 and max(capped.size) > 1024


def test_strip_reduce_equals_pillow_reduce_without_the_full_size_copy():
    from PIL import Image, ImageChops

    from cnndesk.core.images.load import reduce_in_strips

    rng = np.random.default_rng(0)
    for mode, bands in (("RGBA", 4), ("LA", 2), ("RGB", 3)):
        a = Image.fromarray(rng.integers(0, 255, (1003, 777, bands), dtype=np.uint8), mode)
        for f in (2, 3, 7):
            x, y = reduce_in_strips(a, f), a.reduce(f)
            assert x.mode == y.mode and x.size == y.size and ImageChops.difference(x, y).getbbox() is None


def test_image_too_big_for_the_memory_budget_is_refused_from_its_header(tmp_path, monkeypatch):
    """A WebP of many pixels in a few bytes cannot be decoded reduced: refused before decoding
    (the 169-MP one took 2.6 GB), with the reason and how to raise the limit."""
    from cnndesk.core.images import load as images

    webp = runtime.big_webp(tmp_path / "big.webp", (3000, 3000))
    assert webp.stat().st_size < 1000
    monkeypatch.setattr(images, "DECODE_BUDGET", images.DecodeBudget(100 << 20))
    t0 = time.perf_counter()
    with pytest.raises(ImageLoadError, match="too large to decode in the memory.*CNNDESK_DECODE_BUDGET_MB"):
        images.load_image(webp, min_side=256)
    assert time.perf_counter() - t0 < 1
    monkeypatch.setattr(images, "DECODE_BUDGET", images.DecodeBudget(200 << 20))
    assert images.load_image(webp, min_side=256).size == (600, 600)  # reduced after decoding


def test_decode_budget_serialises_big_decodes():
    from cnndesk.core.images.load import DecodeBudget

    budget = DecodeBudget(100)
    inside, peak = [0], [0]
    lock = threading.Lock()

    def work(cost):
        with budget.reserve(cost):
            with lock:
                inside[0] += cost
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.02)
            with lock:
                inside[0] -= cost

    threads = [threading.Thread(target=work, args=(c,)) for c in (60, 60, 60, 500, 30, 30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] <= 500 and budget.peak <= 100 and budget.used == 0


def test_folder_decode_memory_is_bounded(tmp_path, classifier, monkeypatch):
    """Many big images in one folder: the decode budget is never exceeded."""
    from cnndesk.core.images import load as images
    from cnndesk.core.predict.stream import classify_stream

    for i in range(4):
        runtime.big_webp(tmp_path / f"b{i}.webp", (3000, 3000))
    budget = images.DecodeBudget(3000 * 3000 * 16 + 1)  # room for one at a time
    monkeypatch.setattr(images, "DECODE_BUDGET", budget)
    rows = list(classify_stream(sorted(map(str, tmp_path.iterdir())), classifier, decode_workers=2))
    assert all(r.ok for r in rows) and budget.peak <= budget.capacity


# -- 8. training folders ------------------------------------------------------------------------
def test_bomb_image_in_a_training_folder_is_skipped_with_a_reason(tmp_path, samples):
    from cnndesk.core.training.datasets import scan

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            shutil.copy(samples["cat"], tmp_path / cls / f"{i}.jpg")
    shutil.copy(CORPUS / "images" / "bomb_header.png", tmp_path / "a" / "bomb.png")
    ds = scan(tmp_path)
    assert len(ds.train) + len(ds.val) == 6
    assert [r for _, r in ds.unreadable] and "too many pixels" in ds.unreadable[0][1]


def test_symlinked_class_folder_is_not_counted_twice(tmp_path, samples):
    from cnndesk.core.training.datasets import scan

    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            shutil.copy(samples["cat"], tmp_path / cls / f"{i}.jpg")
    (tmp_path / "kitty").symlink_to(tmp_path / "cat")
    ds = scan(tmp_path)
    assert ds.classes == ["cat", "dog"] and len(ds.train) + len(ds.val) == 6
    assert any("kitty is a link to cat" in w for w in ds.warnings)


def _deny(monkeypatch, folder: Path):
    """A folder we may not read: chmod 000 for real when not root, otherwise refuse at the
    system call (root reads everything)."""
    if os.geteuid() != 0:
        folder.chmod(0)
        return
    real_scandir, real_stat = os.scandir, os.stat

    def scandir(p="."):
        if Path(p) == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        return real_scandir(p)

    def stat(p, *a, **kw):
        if Path(os.fspath(p)).parent == folder:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(p))
        return real_stat(p, *a, **kw)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "stat", stat)


def test_unreadable_folders_are_reported_not_silently_skipped(tmp_path, samples, monkeypatch):
    from cnndesk.core.predict.stream import expand_paths
    from cnndesk.core.training.datasets import scan

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            shutil.copy(samples["cat"], tmp_path / cls / f"{i}.jpg")
    locked = tmp_path / "a" / "private"
    locked.mkdir()
    shutil.copy(samples["cat"], locked / "x.jpg")
    _deny(monkeypatch, locked)
    try:
        skipped = []
        files = expand_paths([tmp_path], recursive=True, skipped=skipped)
        assert len(files) == 6 and skipped and skipped[0][0] == str(locked) and "permission" in skipped[0][1]
        # a file inside it, named directly: a clean per-file error, not a PermissionError traceback
        assert expand_paths([locked / "x.jpg"]) == [str(locked / "x.jpg")]
        ds = scan(tmp_path)
        assert any("private cannot be read" in w for w in ds.warnings)
    finally:
        locked.chmod(0o755)


# -- 9. CSV / JSON ------------------------------------------------------------------------------
ROWS = [
    {"path": "=HYPERLINK(\"http://x\")", "predictions": [{"label": "+cmd|' /C calc'!A0", "score": 0.5}], "error": None},
    {"path": "@SUM(1+1).jpg", "predictions": [{"label": "-2+3", "score": 0.25}], "error": None},
    {"path": "line\rbreak.jpg", "predictions": [{"label": "\tlabel", "score": 1.0}], "error": None},
    {"path": "ok.jpg", "predictions": [], "error": "=bad: damaged"},
]


def test_csv_neutralises_formulas_and_quotes_bare_cr(tmp_path):
    out = tmp_path / "r.csv"
    results_io.export(ROWS, out, "csv", 1)
    text = out.read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 1 + len(ROWS)  # a bare CR did not split a row
    cells = [c for r in rows[1:] for c in r if c]
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert rows[1][0] == "'=HYPERLINK(\"http://x\")" and rows[1][2] == "0.500000"  # numbers stay numbers
    assert rows[3][0] == "line\rbreak.jpg"
    back, k = results_io.read_rows(out)  # and merge reads back the original text
    assert [r["path"] for r in back] == [r["path"] for r in ROWS] and k == 1
    assert back[0]["predictions"][0]["label"] == "+cmd|' /C calc'!A0" and back[3]["error"] == "=bad: damaged"


def test_non_utf8_names_and_nan_scores_give_valid_utf8_json(tmp_path):
    bad_name = os.fsdecode(b"caf\xe9-\xff.jpg")  # surrogate escapes, as os.scandir returns them
    rows = [{"path": bad_name, "predictions": [{"label": "x", "score": float("nan")}], "error": None}]
    for fmt in ("json", "csv"):
        out = tmp_path / f"r.{fmt}"
        results_io.export(rows, out, fmt, 1)
        raw = out.read_bytes()
        text = raw.decode("utf-8")  # valid UTF-8
        assert "nan" not in text.lower()
    assert "caf\\xe9-\\xff.jpg" in (tmp_path / "r.csv").read_text(encoding="utf-8")
    data = json.loads((tmp_path / "r.json").read_bytes())
    assert data[0]["path"] == "caf\\xe9-\\xff.jpg" and data[0]["predictions"][0]["score"] is None


def test_nan_weights_give_an_error_row_not_nan(tmp_path, classifier):
    from cnndesk.core.predict.stream import classify_stream

    class NanModel:
        preprocess = classifier.preprocess
        prepare = classifier.prepare

        def predict_arrays(self, batch, k):
            from cnndesk.core.predict.classifier import top_k
            from cnndesk.core.trust.scores import softmax

            return top_k(softmax(np.full((len(batch), 3), np.nan, np.float32)), ["a", "b", "c"], k)

    rows = list(classify_stream([str(runtime.big_png(tmp_path / "p.png", (64, 64), "RGB"))], NanModel()))
    assert rows[0].error and "NaN" in rows[0].error and rows[0].prediction is None


@pytest.mark.parametrize("name", sorted(make_corpus.EXPECT_PARTS))
def test_merge_of_malformed_parts_is_one_clean_error(tmp_path, name):
    with pytest.raises(ValueError) as info:
        results_io.merge([CORPUS / "parts" / name], tmp_path / "out.csv")
    assert make_corpus.EXPECT_PARTS[name] in str(info.value) and "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())


# -- 11. permissions ---------------------------------------------------------------------------
def test_image_in_a_folder_without_permission_is_a_clean_error(tmp_path, monkeypatch, samples):
    from cnndesk.core.images.load import load_image

    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(samples["cat"], locked / "x.jpg")
    _deny(monkeypatch, locked)
    try:
        with pytest.raises(ImageLoadError, match="permission denied"):
            load_image(locked / "x.jpg")
    finally:
        locked.chmod(0o755)


# -- 12. labels, names, special files -----------------------------------------------------------
def test_fifo_and_devices_are_named_as_such():
    from cnndesk.core.images.load import load_image

    with pytest.raises(ImageLoadError, match="a device, not an image"):
        load_image("/dev/zero")


def test_fifo_image_does_not_hang(tmp_path):
    from cnndesk.core.images.load import load_image

    f = runtime.fifo(tmp_path / "pipe.jpg")
    with pytest.raises(ImageLoadError, match="named pipe"):
        load_image(f)


def test_label_folder_names_never_merge_and_stay_valid():
    labels = ["c/at", "c:at", "c?at", "c_at", "Cat", "cat", "_unsure", "_UNKNOWN", "CON", "nul", "AUX.txt",
              "com1", "😀" * 120, "a" * 300, "..", "", "x\x1b[31my"]
    names = sorting.folder_names(labels)
    assert len(set(n.casefold() for n in names.values())) == len(labels)  # distinct, even on Windows
    assert names["c_at"] == "c_at"
    for _label, name in names.items():
        assert len(name.encode("utf-8")) <= 200 and name not in (".", "..") and "/" not in name
        assert name.split(".")[0].lower() not in {"con", "nul", "aux", "com1"}
        assert name.casefold() not in ("_unsure", "_unknown")
        assert not any(ord(c) < 32 for c in name)


def test_sort_keeps_distinct_labels_apart(tmp_path, samples):
    rows = [(str(samples["cat"]), "c/at", 0.9, None), (str(samples["coffee"]), "c:at", 0.9, None),
            (str(samples["cat"]), "_unsure", 0.9, None), (str(samples["coffee"]), "dog", 0.1, None)]
    plan = sorting.plan_sort(rows, tmp_path, threshold=0.5)
    assert len({m.folder for m in plan.moves}) == 4
    rep = sorting.execute(plan, "copy")
    assert not rep.failed and len(os.listdir(tmp_path)) == 4


def test_control_characters_in_labels_are_shown_escaped():
    out = io.StringIO()
    w = results_io.writer("table", out, 1)
    w.write({"path": "x\x1b]0;pwned\x07.jpg", "predictions": [{"label": "cat\r\nrm -rf", "score": 0.5}], "error": None})
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    assert "cat\\r\\nrm -rf" in text and text.count("\n") == 2


def test_label_lists_that_are_text_or_objects_are_refused():
    from cnndesk.core.models.schema import SchemaError, validate_metadata

    base = {**make_corpus.HEAD_BASE}
    for labels in ("cat", {"a": 1}, [["a"]], [], [None]):
        with pytest.raises(SchemaError):
            validate_metadata({**base, "labels": labels})
    assert validate_metadata(base)["labels"] == ["a", "b"]
