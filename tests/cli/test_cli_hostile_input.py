"""The CLI under hostile input, as a user runs it: hostile files, labels, folders and disks give one
line, a documented exit code (0-3), no traceback, no temp file, nothing written outside its place."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile import make_corpus, runtime

CORPUS = runtime.CORPUS
needs_mount = pytest.mark.skipif(not runtime.can_mount(), reason="needs root to mount a tmpfs")


def cnndesk(*args, env=None, timeout=300, prefix=()):
    return subprocess.run(
        [*prefix, sys.executable, "-m", "cnndesk", *map(os.fsdecode, args)],
        capture_output=True, timeout=timeout, env={**os.environ, **(env or {})},
        text=True, errors="backslashreplace",
    )


def one_line(out) -> str:
    err = out.stderr.strip()
    assert "Traceback" not in out.stderr and "Error:" not in err.split("error:")[0], out.stderr
    assert out.returncode in (0, 1, 2, 3), out.returncode
    return err


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".cnndesk-tmp" in p.name or p.name.endswith((".part", ".partial"))]


@pytest.fixture(scope="module", autouse=True)
def _exported(classifier):
    """The ONNX export exists before the subprocesses run (they share the cache)."""


@pytest.fixture
def hostile_data(tmp_path):
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    for p in (CORPUS / "models").iterdir():
        shutil.copy(p, data / "models" / p.name)
    runtime.fifo(data / "models" / "fifo.safetensors")
    return {"CNNDESK_DATA_DIR": str(data)}


# -- 10 and the rule: --out checked before any work ---------------------------------------------
@pytest.mark.parametrize("where", ["missing", "folder"])
def test_out_into_a_missing_folder_or_onto_a_folder_is_refused_first(tmp_path, samples, where):
    target = tmp_path / "nope" / "out.csv" if where == "missing" else tmp_path
    data = tmp_path / "train"
    for cls in ("a", "b"):
        (data / cls).mkdir(parents=True)
        shutil.copy(samples["cat"], data / cls / "x.jpg")
    before = sorted(p.name for p in tmp_path.iterdir())
    for args in (("classify", samples["cat"], "--out", target),
                 ("train", data, "--out", target),
                 ("explain", samples["cat"], "--method", "occlusion", "--out", target),
                 ("export", "efficientnet-lite0", "--format", "onnx", "--out", target),
                 ("merge", CORPUS / "parts" / "invalid.json", "--out", target)):
        t0 = time.perf_counter()
        out = cnndesk(*args)
        err = one_line(out)
        assert out.returncode == 2, (args, err)
        if where == "missing":
            assert "does not exist" in err, err
        else:  # export writes a bundle *folder*: an existing one is refused as existing
            assert ("already exists" if args[0] == "export" else "is a folder") in err, err
        assert time.perf_counter() - t0 < 20, args  # before any model or training work
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created


def test_classify_out_refuses_to_overwrite_without_force(tmp_path, samples):
    out_file = tmp_path / "r.csv"
    out_file.write_text("keep me")
    out = cnndesk("classify", samples["cat"], "--out", out_file)
    assert out.returncode == 2 and "already exists (use --force" in one_line(out)
    assert out_file.read_text() == "keep me"
    out = cnndesk("classify", samples["cat"], "--out", out_file, "--force")
    assert out.returncode == 0 and out_file.read_text().startswith("path,label_1")


def test_classify_out_through_a_planted_symlink_writes_nowhere_else(tmp_path, samples):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "r.csv.part").symlink_to(victim)
    out = cnndesk("classify", samples["cat"], "--out", tmp_path / "r.csv")
    assert out.returncode == 0, out.stderr
    assert victim.read_text() == "precious" and not (tmp_path / "r.csv").is_symlink()
    assert (tmp_path / "r.csv").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


@needs_mount
def test_classify_out_onto_a_full_or_read_only_disk(tmp_path, samples):
    full = runtime.Tmpfs(tmp_path / "full", "128k")
    ro = runtime.Tmpfs(tmp_path / "ro", "128k", readonly=True)
    try:
        full.fill()
        folder = samples["cat"].parent
        out = cnndesk("classify", folder, folder, folder, "--out", full.path / "r.json")
        err = one_line(out)
        assert out.returncode in (1, 2) and ("disk is full" in err or "cannot write" in err), err
        assert not (full.path / "r.json").exists() and not _leftovers(full.path)
        out = cnndesk("classify", samples["cat"], "--out", ro.path / "r.csv")
        assert out.returncode == 2 and "read-only" in one_line(out)
    finally:
        full.close()
        ro.close()


# -- 3-6: hostile model files -------------------------------------------------------------------
def test_models_lists_hostile_files_as_unusable(hostile_data):
    out = cnndesk("models", env=hostile_data, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if "UNUSABLE" in ln]
    assert len(lines) == len(make_corpus.EXPECT_MODELS) + 1  # + the FIFO
    assert "efficientnet-lite0" in out.stdout
    rows = json.loads(cnndesk("models", "-f", "json", env=hostile_data, timeout=60).stdout)
    bad = {r["name"]: r["reason"] for r in rows if not r["usable"]}
    assert "nested" in bad["deep_json"] and "named pipe" in bad["fifo"]


@pytest.mark.parametrize("name", ["deep_json", "labels_string", "name_number", "resize_infinity", "base_self",
                                  "arch_hf_hub", "head_1d", "fifo"])
def test_classify_with_a_hostile_model_name_is_one_line(hostile_data, samples, name):
    out = cnndesk("classify", samples["cat"], "--model", name, env={**hostile_data, "CNNDESK_OFFLINE": "1"}, timeout=60)
    err = one_line(out)
    assert out.returncode == 2 and "unusable" in err and len(err.splitlines()) == 1, err


def test_hostile_model_files_by_path_in_classify_explain_export(hostile_data, samples, tmp_path):
    folder = Path(hostile_data["CNNDESK_DATA_DIR"]) / "models"
    env = {**hostile_data, "CNNDESK_OFFLINE": "1"}
    for name in ("head_wrong_width", "arch_unknown_torchvision", "base_number", "fifo"):
        model = folder / f"{name}.safetensors"
        for args in (("classify", samples["cat"], "--model", model),
                     ("explain", samples["cat"], "--model", model, "--out", tmp_path / "o.png"),
                     ("export", model, "--format", "onnx", "--out", tmp_path / "m.onnx")):
            t0 = time.perf_counter()
            out = cnndesk(*args, env=env, timeout=180)
            err = one_line(out)
            assert out.returncode in (2, 3), (name, args[0], err)
            assert len(err.splitlines()) == 1, err
            assert time.perf_counter() - t0 < 120
    assert not list(tmp_path.glob("o.png")) and not list(tmp_path.glob("m.onnx*"))


# -- 7: explain caps the overlay ------------------------------------------------------------------
def test_explain_overlay_is_capped(tmp_path):
    big = runtime.big_png(tmp_path / "big.png", (5000, 3000), "RGB")
    out = cnndesk("explain", big, "--method", "occlusion", "--out", tmp_path / "o.png", "--raw", tmp_path / "h.npy")
    assert out.returncode == 0, out.stderr
    import numpy as np
    from PIL import Image

    w, h = Image.open(tmp_path / "o.png").size
    assert 1024 < w <= 2048 and h == round(w * 3 / 5)  # decoded reduced, aspect kept
    assert np.load(tmp_path / "h.npy").shape == (h, w)


# -- 8: bomb in a training folder ----------------------------------------------------------------
def test_train_with_a_bomb_image_has_no_traceback(tmp_path, samples):
    (tmp_path / "data" / "a").mkdir(parents=True)
    shutil.copy(CORPUS / "images" / "bomb_header.png", tmp_path / "data" / "a" / "bomb.png")
    shutil.copy(samples["cat"], tmp_path / "data" / "a" / "x.jpg")
    out = cnndesk("train", tmp_path / "data", "--out", tmp_path / "m.safetensors")
    assert out.returncode == 2 and "at least two" in one_line(out)


# -- 9: CSV, JSON, names ------------------------------------------------------------------------
def test_hostile_file_names_give_safe_csv_and_valid_json(tmp_path, samples):
    folder = tmp_path / "photos"
    folder.mkdir()
    names = [b"=cmd.jpg", b"+1.jpg", b"@x.jpg", b"-2.jpg", b"\tx.jpg", b"a\rb.jpg", b"caf\xe9.jpg"]
    for n in names:
        shutil.copy(samples["cat"], os.path.join(os.fsencode(folder), n))
    out = cnndesk("classify", folder, "--out", tmp_path / "r.csv", "-k", "1")
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "r.csv").read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 1 + len(names)
    firsts = [os.path.basename(r[0].lstrip("'")) for r in rows[1:]]
    assert not any(r[0].startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows[1:])
    assert "caf\\xe9.jpg" in firsts and "a\rb.jpg" in firsts
    out = cnndesk("classify", folder, "-f", "json", "-k", "1")
    assert out.returncode == 0
    data = json.loads(out.stdout)
    assert len(data) == len(names) and all(r["error"] is None for r in data)
    assert not _leftovers(tmp_path)


def test_merge_of_malformed_parts_is_one_line(tmp_path):
    for name in make_corpus.EXPECT_PARTS:
        out = cnndesk("merge", CORPUS / "parts" / name, "--out", tmp_path / "m.csv", timeout=60)
        assert out.returncode == 2 and "not a cnndesk results file" in one_line(out)
    assert not list(tmp_path.iterdir())


def test_hostile_images_are_reported_one_per_line(tmp_path):
    images = sorted((CORPUS / "images").iterdir())
    pipe = runtime.fifo(tmp_path / "pipe.jpg")
    out = cnndesk("classify", *images, pipe, "/dev/zero", "-f", "json", timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    rows = {Path(r["path"]).name: r["error"] for r in json.loads(out.stdout)}
    for name, word in make_corpus.EXPECT_IMAGES.items():
        assert word in rows[name], (name, rows[name])
    assert "named pipe" in rows["pipe.jpg"] and "device" in rows["zero"]


# -- 11: permissions (root with file-access capabilities dropped, or a plain user) ---------------
def _no_dac() -> tuple[str, ...]:
    if os.geteuid() != 0:
        return ()
    if not shutil.which("capsh"):
        pytest.skip("needs capsh to drop CAP_DAC_OVERRIDE as root")
    return ("capsh", "--drop=cap_dac_override,cap_dac_read_search", "--")


def test_image_inside_a_folder_without_permission(tmp_path, samples):
    prefix = _no_dac()
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(samples["cat"], locked / "x.jpg")
    locked.chmod(0)
    try:
        cmd = [sys.executable, "-m", "cnndesk", "classify", str(locked / "x.jpg"), str(tmp_path), "-r", "-f", "json"]
        if prefix:
            cmd = [*prefix, "-c", " ".join(f"'{c}'" for c in cmd)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert "permission denied" in json.loads(out.stdout)[0]["error"]
        assert "skipped the folder" in out.stderr and "locked" in out.stderr
    finally:
        locked.chmod(0o755)


# -- the rule: a top-level handler, --debug, a log file --------------------------------------------
def test_unexpected_errors_are_one_line_with_a_log_and_debug_shows_the_trace(monkeypatch, capsys, tmp_path):
    import dataclasses

    from cnndesk import cli

    monkeypatch.setenv("CNNDESK_DATA_DIR", str(tmp_path))

    def boom(args):
        raise RuntimeError("something odd")

    monkeypatch.setitem(cli.COMMANDS, "models", dataclasses.replace(cli.COMMANDS["models"], run=boom))
    assert cli.main(["models"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "something odd" in err and "--debug" in err
    log = tmp_path / "logs" / "cnndesk.log"
    assert "RuntimeError: something odd" in log.read_text() and str(log) in err
    assert cli.main(["--debug", "models"]) == 1
    assert "Traceback" in capsys.readouterr().err

    def full(args):
        raise OSError(28, "No space left on device", "/x/out.csv")

    monkeypatch.setitem(cli.COMMANDS, "models", dataclasses.replace(cli.COMMANDS["models"], run=full))
    assert cli.main(["models"]) == 1
    assert "/x/out.csv: the disk is full" in capsys.readouterr().err
