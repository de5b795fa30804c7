"""``cnndesk classify FOLDER`` decodes its first images while the model loads: a model that
cannot load still ends with its one-line reason and exit code (the early decoders are stopped),
and a folder's results are the per-file ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys


def cnndesk(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cnndesk", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def _folder(tmp_path, samples):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, p in sorted(samples.items()):
        shutil.copy(p, folder / f"{name}.jpg")
    (folder / "zz_broken.jpg").write_bytes(b"\xff\xd8 truncated")
    return folder


def test_folder_whose_model_cannot_load_exits_3_or_2_without_hanging(tmp_path, samples):
    folder = _folder(tmp_path, samples)
    out = cnndesk("classify", folder, "--model", "resnet50", env={"CNNDESK_OFFLINE": "1"})
    assert out.returncode == 3 and "needs a network connection" in out.stderr and "Traceback" not in out.stderr
    out = cnndesk("classify", folder, "--model", "no-such-model")
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_folder_results_equal_single_file_runs(tmp_path, samples, classifier):
    folder = _folder(tmp_path, samples)
    out = cnndesk("classify", folder, "-f", "json", "-k", "3")
    assert out.returncode == 1  # the broken file
    rows = json.loads(out.stdout)
    assert len(rows) == len(samples) + 1 and rows[-1]["error"] and not rows[-1]["predictions"]
    for row in rows[:-1]:
        one = json.loads(cnndesk("classify", row["path"], "-f", "json", "-k", "3").stdout)[0]
        assert [p["label"] for p in one["predictions"]] == [p["label"] for p in row["predictions"]]
        for a, b in zip(one["predictions"], row["predictions"], strict=True):
            assert abs(a["score"] - b["score"]) <= 1e-4
