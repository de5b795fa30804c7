"""The doctor's folder walk: a class folder nested deeper than Python's recursion limit is read
(the walk recursed: an archive made 1,100 levels deep stopped the check with RecursionError), and a
link looping back is still an issue, not a hang."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from cnndesk.core.doctor.check import Issue
from cnndesk.core.doctor.walk import walk


def test_a_class_folder_nested_deeper_than_the_recursion_limit_is_walked(tmp_path):
    root = tmp_path / "data"
    cls = root / "cats"
    deep = str(cls)
    os.makedirs(deep)
    Image.new("RGB", (40, 40), "red").save(cls / "top.png")
    for _ in range(1100):
        deep = os.path.join(deep, "a")
        os.mkdir(deep)
    Image.new("RGB", (40, 40), "blue").save(os.path.join(deep, "deep.png"))
    os.symlink("..", os.path.join(deep, "up"))  # loops back to a folder already walked
    problems: list = []
    try:
        found = walk(cls, {os.path.realpath(root)}, problems, Issue, os.path.realpath(root))
        assert sorted(Path(p).name for p in found) == ["deep.png", "top.png"]
        assert [p.kind for p in problems] == ["unreadable"] and "loops back" in problems[0].reason
    finally:  # removed bottom up: pytest's cleanup (shutil.rmtree) recurses too
        os.unlink(os.path.join(deep, "up"))
        os.unlink(os.path.join(deep, "deep.png"))
        while deep != str(cls):
            os.rmdir(deep)
            deep = os.path.dirname(deep)
