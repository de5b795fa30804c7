"""A dataset folder stays a dataset folder: links that leave it are not followed (train, doctor),
files that live outside it are never moved, a non-UTF-8 file name is one reported file (doctor,
classify --shard), the doctor's ignore file is size- and depth-capped, identical pictures are
grouped (not searched pair by pair), and the CLI refuses `explain --out X --raw X` and sizes
its output by the classes, not by -k."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnndesk.core.doctor import check as doctor
from cnndesk.core.doctor import duplicates as doctor_dupes
from cnndesk.core.training.datasets import DatasetError, scan

BAD = b"bad\xff\xfe.png"


def cnndesk(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "cnndesk", *map(os.fsdecode, args)], capture_output=True,
                          timeout=timeout, env=os.environ.copy(), text=True, errors="backslashreplace")


def _images(folder: Path, n: int, colour=(200, 30, 30), seed=0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = (rng.random((24, 24, 3)) * 60 + np.array(colour) * 0.7).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{i}.png")


@pytest.fixture
def linked(tmp_path):
    """A dataset with one real class and links out of it: a class folder linked to / and a
    subfolder linked to a folder with an image outside the dataset."""
    data = tmp_path / "data"
    _images(data / "one", 6)
    outside = tmp_path / "outside"
    _images(outside, 1)
    (data / "everything").symlink_to("/")
    (data / "one" / "elsewhere").symlink_to(outside)
    return data, outside


def test_doctor_does_not_follow_links_out_of_the_dataset(linked):
    data, outside = linked
    files = doctor.collect(data)
    assert files.classes == ["one"]
    assert all(str(data / "one") in p and "elsewhere" not in p for p, _, _ in files.items)
    reasons = " ".join(i.reason for i in files.problems)
    assert "everything: a link to a folder outside the dataset" in reasons
    assert "elsewhere: a link to a folder outside the dataset" in reasons


def test_train_does_not_walk_a_link_to_the_root_folder(linked):
    data, _ = linked
    out = cnndesk("train", data, "--out", data.parent / "m", timeout=60)  # it walked / for minutes
    assert out.returncode == 2 and "found 1 class folder(s)" in out.stderr, out.stderr
    _images(data / "two", 6, colour=(30, 30, 200))
    ds = scan(data)
    assert ds.classes == ["one", "two"] and not any("elsewhere" in p for p, _ in ds.train + ds.val)
    assert any("everything is a link to a folder outside the dataset" in w for w in ds.warnings)
    assert any("elsewhere" in w and "outside the dataset" in w for w in ds.warnings)


def test_move_to_class_never_moves_a_file_that_lives_outside(linked):
    data, outside = linked
    with pytest.raises(DatasetError, match="outside the dataset"):
        doctor.move_to_class(str(data / "one" / "elsewhere" / "0.png"), "two", label="one")
    assert (outside / "0.png").is_file() and not (data / "two").exists()
    (data / "two").symlink_to(outside)  # a planted class folder leading out: nothing is moved into it
    with pytest.raises(DatasetError, match="outside the dataset"):
        doctor.move_to_class(str(data / "one" / "1.png"), "two", label="one")
    assert (data / "one" / "1.png").is_file() and sorted(p.name for p in outside.iterdir()) == ["0.png"]


def test_a_huge_or_deep_ignore_file_is_ignored_not_fatal(tmp_path):
    (tmp_path / doctor.IGNORE_FILE).write_text("[" * 200_000 + "]" * 200_000)
    assert doctor.load_ignores(tmp_path) == set()
    row = {"kind": "duplicate", "path": "a/1.png", "other": "a/2.png"}
    big = {"ignored": [row] * 60_000 + [{"kind": "x" * 100, "path": "p" * 100}] * 40_000}
    (tmp_path / doctor.IGNORE_FILE).write_text(json.dumps(big))
    assert os.path.getsize(tmp_path / doctor.IGNORE_FILE) > 8 << 20
    assert doctor.load_ignores(tmp_path) == set()
    (tmp_path / doctor.IGNORE_FILE).write_text(json.dumps({"ignored": [row]}))
    assert doctor.load_ignores(tmp_path) == {("duplicate", "a/1.png", "a/2.png")}


def test_identical_pictures_are_grouped_not_aligned_pair_by_pair(monkeypatch):
    """3,000 copies of one 2x2 picture: 2,999 duplicates found without a single aligned match
    (they made `doctor` take 106 s for 5,000 and be killed at 900 s for 50,000, finding none)."""
    n = 3000
    thumb = np.asarray(Image.new("RGB", (2, 2), (10, 200, 30)).resize((32, 32)), np.uint8).reshape(-1)
    thumbs = np.tile(thumb, (n, 1))
    sizes = np.tile([2, 2], (n, 1))
    emb = np.tile(np.eye(1, 8, 0, dtype=np.float32), (n, 1))
    paths = [f"/d/{'ab'[i % 2]}/{i}.png" for i in range(n)]

    def no_alignment(*a):
        raise AssertionError("aligned_match ran on identical pictures")

    monkeypatch.setattr(doctor_dupes, "aligned_match", no_alignment)
    issues = doctor.pair_issues(paths, {p: p.split("/")[2] for p in paths}, dict.fromkeys(paths, "all"),
                           thumbs, emb, np.arange(n), None, sizes)
    assert len(issues) == n - 1 and {i.kind for i in issues} == {"duplicate"}
    assert {i.other for i in issues} == {paths[0]}


@pytest.fixture
def non_utf8(tmp_path):
    data = tmp_path / "data"
    _images(data / "a", 6)
    _images(data / "b", 6, colour=(30, 30, 200), seed=1)
    os.rename(data / "a" / "0.png", os.path.join(os.fsencode(data / "a"), BAD))
    return data


def test_a_non_utf8_file_name_does_not_stop_doctor(non_utf8, classifier):
    out = cnndesk("doctor", non_utf8, "--format", "json", timeout=300)
    assert out.returncode in (0, 1) and "Traceback" not in out.stderr, out.stderr
    rep = json.loads(out.stdout)
    assert rep["summary"]["images"] == 12
    table = cnndesk("doctor", non_utf8, timeout=300)
    assert "\udcff" not in table.stdout and "\ufffd" not in table.stdout


def test_a_non_utf8_file_name_does_not_stop_a_shard(non_utf8, classifier):
    names = []
    for i in range(2):
        out = cnndesk("classify", non_utf8, "-r", "--shard", f"{i}/2", "--format", "json", timeout=300)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
        names += [r["path"] for r in json.loads(out.stdout)]
    assert len(names) == 12 and sum("bad\\xff\\xfe.png" in n for n in names) == 1


def test_explain_refuses_the_same_file_for_out_and_raw(tmp_path, samples):
    target = tmp_path / "x.png"
    out = cnndesk("explain", samples["cat"], "--method", "occlusion", "--out", target, "--raw", target)
    assert out.returncode == 2 and "same file" in out.stderr
    assert not target.exists()


def test_top_k_is_clamped_to_the_classes(samples, classifier):
    out = cnndesk("classify", samples["cat"], "-k", "100000", "--format", "csv", timeout=300)
    assert out.returncode == 0, out.stderr
    header = out.stdout.splitlines()[0].split(",")
    assert len(header) < 2 * 1000 + 10 and "label_1000" in header and "label_1001" not in header
