"""Fixtures for the labelling tests: a small generated pile (4 classes x 8 images, flat) and a
session on it with the fast stand-in embeddings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from label_data import fake_embed, make_pile  # noqa: E402


@pytest.fixture
def pile(tmp_path):
    root = tmp_path / "pile"
    truth = make_pile(root, per_class=8)
    return root, truth


@pytest.fixture
def session(pile):
    from cnndesk.core.labelling import LabelSession

    root, _ = pile
    return LabelSession.open(root, embed=fake_embed)


@pytest.fixture
def journal(tmp_path):
    from cnndesk.core.organize.journal import Journal

    return Journal(tmp_path / "journal.jsonl")
