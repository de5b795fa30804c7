"""The doctor on a folder of few images a class (issue 23 item 2): the clean folder a new user
writes with ``cnndesk label --write`` (6 images a class) gets no "wrong class" report for its
mirror arrows, while an image moved into another class folder still does."""

from __future__ import annotations

import os
import random
import shutil

import pytest
import trust_data

from cnndesk.core.doctor import check as doctor


def _symbols(root, seed: int, per_class: int) -> None:
    """bench/label_data.py's ``symbols`` family as class folders (the same images as its
    ``make_pile(..., "symbols", seed, per_class)``; not imported: tests/core/labelling has a
    ``label_data`` of its own)."""
    rng = random.Random(f"label-symbols-{seed}")
    jobs = [c for c in trust_data.SYMBOLS for _ in range(per_class)]
    order = list(range(len(jobs)))
    rng.shuffle(order)
    for pos, j in enumerate(order):
        (root / jobs[j]).mkdir(parents=True, exist_ok=True)
        trust_data.symbol(jobs[j], rng).save(root / jobs[j] / f"img_{pos:05d}.png")


@pytest.fixture(scope="module")
def symbols(tmp_path_factory):
    """10 classes of small symbols (arrow_left / arrow_right among them), 6 images a class: the
    folder on which check VERSION 8 reported 3 rightly labelled arrows as each other."""
    root = tmp_path_factory.mktemp("few") / "data"
    _symbols(root, 101, 6)
    return root


def _reported(rep):
    return [(os.path.basename(i.path), i.label, i.suggested) for i in rep.issues if i.kind == "label" and i.likely]


def test_a_clean_folder_of_six_a_class_gets_no_wrong_class_report(symbols):
    rep = doctor.check_dataset(symbols)
    assert rep.summary["images"] == 60
    assert _reported(rep) == []


def test_a_moved_image_in_a_folder_of_six_a_class_is_still_reported(symbols, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(symbols, root)
    moved = sorted((root / "plus").iterdir())[0]
    target = root / "ring" / moved.name
    moved.rename(target)
    reported = _reported(doctor.check_dataset(root))
    assert (target.name, "ring", "plus") in reported
