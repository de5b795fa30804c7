"""The one mover (``safeio.move_file`` / ``move_into``) used by the sort, the dataset check's
"Move to class", the evaluation page's relabel and undo: never a partial file under the final name
(full disk, kill), the source kept until the copy is safe, a killed mover's temporary file removed
by the next move into that folder, and a planted symlinked class folder never written through."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image

from cnndesk.core.common import safeio
from cnndesk.core.doctor import check as doctor
from cnndesk.core.organize import sorting
from tests.hostile import runtime

needs_mount = pytest.mark.skipif(not runtime.can_mount(), reason="needs root to mount a tmpfs")
REPO = Path(__file__).resolve().parents[3]


def _no_temps(folder: Path) -> None:
    left = [p.name for p in folder.rglob("*") if ".cnndesk-tmp" in p.name or ".part" in p.name]
    assert not left, left


def _dataset(root: Path) -> Path:
    for c, colour in (("a", "red"), ("b", "blue")):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            Image.new("RGB", (32, 32), colour).save(root / c / f"{c}{i}.png")
    return root


@pytest.fixture
def no_hard_links(monkeypatch):
    """Every move behaves as across filesystems (copy, fsync, rename, remove the source)."""
    def link(*_a, **_k):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", link)


def test_move_across_filesystems_is_whole_and_removes_the_source(tmp_path, no_hard_links):
    src = tmp_path / "src.bin"
    data = os.urandom(3 << 20)
    src.write_bytes(data)
    target, renamed = safeio.move_into(src, tmp_path / "out")
    assert target == tmp_path / "out" / "src.bin" and not renamed
    assert target.read_bytes() == data and not src.exists()
    _no_temps(tmp_path)


def test_a_full_disk_in_the_middle_leaves_nothing_under_the_final_name(tmp_path, no_hard_links, monkeypatch):
    root = _dataset(tmp_path / "d")
    src = root / "a" / "a0.png"
    before = src.read_bytes()

    def half_then_full(fin, fout, n=0):
        fout.write(fin.read(100))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", half_then_full)
    with pytest.raises(OSError, match="No space"):
        doctor.move_to_class(str(src), "b")
    assert src.read_bytes() == before
    assert sorted(os.listdir(root / "b")) == ["b0.png", "b1.png", "b2.png"]
    _no_temps(root)


@needs_mount
def test_move_to_class_onto_a_real_full_disk(tmp_path):
    root = _dataset(tmp_path / "d")
    big = root / "a" / "big.png"
    big.write_bytes(os.urandom(600_000))
    disk = runtime.Tmpfs(root / "full", "256k")  # the class folder "full" is another, small disk
    try:
        with pytest.raises(OSError) as err:
            doctor.move_to_class(str(big), "full")
        assert err.value.errno == errno.ENOSPC
        assert big.stat().st_size == 600_000 and os.listdir(disk.path) == []
    finally:
        disk.close()


def test_a_killed_move_leaves_no_final_file_and_its_temp_is_cleaned_next_time(tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(4 << 20))
    out = tmp_path / "out"
    out.mkdir()
    mark = tmp_path / "copying"
    child = textwrap.dedent(f"""
        import errno, os, shutil, sys, time
        from cnndesk.core.common import safeio
        def link(*a, **k):
            raise OSError(errno.EXDEV, "cross-device")
        os.link = link
        def slow(fin, fout, n=0):
            fout.write(fin.read(1 << 20)); fout.flush()
            os.close(os.open({str(mark)!r}, os.O_CREAT | os.O_WRONLY))
            time.sleep(120)
        shutil.copyfileobj = slow
        safeio.move_file({str(src)!r}, {str(out / "big.bin")!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 60
        while not mark.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert mark.exists(), "the child never started copying"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    left = os.listdir(out)
    assert len(left) == 1 and left[0].startswith(f"{safeio.MOVE_TEMP_PREFIX}{proc.pid}."), left
    assert src.stat().st_size == 4 << 20  # the source is still whole
    other = tmp_path / "small.bin"
    other.write_bytes(b"x" * 100)
    safeio.move_into(other, out)  # within a minute of the kill: kept (it might be a live copy elsewhere)
    assert len(os.listdir(out)) == 2
    old = time.time() - safeio.STALE_AFTER - 5
    os.utime(out / left[0], (old, old))
    safeio.forget_cleaned_folders()  # a later run (a new process)
    third = tmp_path / "third.bin"
    third.write_bytes(b"y")
    safeio.move_into(third, out)  # the next run into that folder removes the dead mover's file
    assert sorted(os.listdir(out)) == ["small.bin", "third.bin"]


def test_a_live_movers_temp_file_is_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mine = out / f"{safeio.MOVE_TEMP_PREFIX}{os.getpid()}.abc.cnndesk-tmp"
    mine.write_bytes(b"in progress")
    parent = out / f"{safeio.MOVE_TEMP_PREFIX}{os.getppid()}.abc.cnndesk-tmp"
    parent.write_bytes(b"in progress")
    old = time.time() - 3600
    for p in (mine, parent):
        os.utime(p, (old, old))
    assert safeio.clean_stale_move_temps(out) == []
    assert mine.exists() and parent.exists()


def test_sort_into_a_planted_symlinked_label_folder_writes_nothing_there(tmp_path, samples):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "sorted"
    dest.mkdir()
    os.symlink(elsewhere, dest / "dog")
    photos = tmp_path / "photos"
    photos.mkdir()
    rows = []
    for i, label in enumerate(("dog", "cat", "dog")):
        p = photos / f"p{i}.jpg"
        shutil.copy(samples["cat"], p)
        rows.append((str(p), label, 0.9, None))
    for mode in ("copy", "move"):
        rep = sorting.execute(sorting.plan_sort(rows, dest), mode)
        assert os.listdir(elsewhere) == []
        assert len(rep.failed) == 2 and all("symbolic link" in msg for _, msg in rep.failed), rep.failed
        assert all(Path(p).exists() for p, label, *_ in rows if label == "dog")  # refused: they stay
    assert (dest / "dog").is_symlink()


def test_move_to_class_into_a_symlinked_class_folder_is_refused(tmp_path):
    root = _dataset(tmp_path / "d")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, root / "c")
    from cnndesk.core.training.datasets import DatasetError

    # refused twice over: the class folder lies outside the dataset, and the mover never writes
    # through a link
    with pytest.raises((OSError, DatasetError), match="symbolic link|outside the dataset"):
        doctor.move_to_class(str(root / "a" / "a0.png"), "c")
    assert (root / "a" / "a0.png").exists() and os.listdir(elsewhere) == []


def test_move_undo_keeps_names_and_never_overwrites(tmp_path, no_hard_links):
    root = _dataset(tmp_path / "d")
    shutil.copy(root / "a" / "a0.png", root / "b" / "a0.png")  # the name is taken in b
    moved = doctor.move_to_class(str(root / "a" / "a0.png"), "b")
    assert Path(moved.target).name == "a0 (1).png"
    assert doctor.undo_move(moved) == str(root / "a" / "a0.png")
    assert sorted(os.listdir(root / "b")) == ["a0.png", "b0.png", "b1.png", "b2.png"]
    _no_temps(root)
