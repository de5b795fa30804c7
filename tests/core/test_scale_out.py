"""Beyond one machine: sharded classification, torchrun (DDP, gloo) fine-tuning, Ray Data."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from shapes import make_dataset

from cnndesk.core.predict.stream import expand_paths, select_shard


@pytest.fixture(scope="module")
def folder(tmp_path_factory, samples):
    root = tmp_path_factory.mktemp("scale") / "photos"
    make_dataset(root, (12, 12, 12))
    (root / "square" / "deeper").mkdir()
    shutil.copy(samples["coffee"], root / "square" / "deeper" / "espresso.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    return root


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cnndesk", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_union_of_shards_equals_the_unsharded_run(folder, tmp_path, fmt, classifier):
    whole = _cli("classify", folder, "-r", "-k", "3", "-f", fmt, "-q")
    assert whole.returncode == 1  # broken.jpg
    parts = []
    for i in range(3):
        part = tmp_path / f"part{i}.{fmt}"
        r = _cli("classify", folder, "-r", "-k", "3", "--shard", f"{i}/3", "--out", part, "-q")
        assert r.returncode in (0, 1) and part.is_file()
        parts.append(part)
    merged = tmp_path / f"merged.{fmt}"
    m = _cli("merge", *parts, "--out", merged)
    assert m.returncode == 0, m.stderr
    assert merged.read_text() == whole.stdout  # row for row, byte for byte
    assert _cli("merge", *parts, "--out", merged).returncode == 2  # never overwritten silently
    assert _cli("merge", parts[0], parts[0], "--out", tmp_path / f"dup.{fmt}").returncode == 2
    assert _cli("classify", folder, "--shard", "3/3").returncode == 2


def test_shards_are_stable_across_machines(folder, tmp_path):
    other = tmp_path / "mnt" / "elsewhere"
    shutil.copytree(folder, other)
    a = expand_paths([folder], recursive=True)
    b = expand_paths([other], recursive=True)
    for i in range(4):
        rel_a = [os.path.relpath(p, folder) for p in select_shard(a, [folder], i, 4)]
        rel_b = [os.path.relpath(p, other) for p in select_shard(b, [other], i, 4)]
        assert rel_a == rel_b
    sizes = [len(select_shard(a, [folder], i, 4)) for i in range(4)]
    assert sum(sizes) == len(a) and min(sizes) > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_gloo_processes(folder, tmp_path, classifier):
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.predict.classifier import Classifier

    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "cnndesk", "train", str(folder), "--out", str(out),
           "--mode", "full", "--epochs", "2", "--image-size", "64", "--batch-size", "8", "--val-split", "0.25"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # only rank 0 prints its metrics
    metrics = json.loads(lines[0])
    assert metrics["processes"] == 2 and out.is_file()
    spec = get_spec(str(out))
    assert spec.preprocess.crop == 64 and spec.labels == ("circle", "square", "triangle")
    held = spec.metadata["evaluation"]  # what rank 0 predicted at the end
    clf = Classifier(spec, backend="torch")
    preds = clf.predict(held["paths"], 1)
    assert [p.indices[0] for p in preds] == held["pred"]
    assert np.allclose([p.scores[0] for p in preds], held["confidence"], atol=1e-4)


def test_ray_data_equals_the_local_pipeline(folder, tmp_path, classifier):
    ray = pytest.importorskip("ray")
    import pyarrow.parquet as pq

    from cnndesk.cluster.ray_classify import classify_with_ray
    from cnndesk.core.predict.stream import classify_stream

    files = expand_paths([folder], recursive=True)
    local = list(classify_stream(files, classifier, top_k=3))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        n = classify_with_ray(files, str(tmp_path / "r.parquet"), top_k=3)
    finally:
        ray.shutdown()
    table = pq.read_table(tmp_path / "r.parquet").to_pydict()
    assert n == len(files) == len(table["path"])
    assert list(table) == ["path", "label_1", "score_1", "label_2", "score_2", "label_3", "score_3", "error"]
    assert table["path"] == files  # the local order
    for i, r in enumerate(local):
        if r.error:
            assert "broken.jpg" in table["error"][i] and table["label_1"][i] == ""
            continue
        assert [table[f"label_{k}"][i] for k in (1, 2, 3)] == list(r.prediction.labels)
        assert np.allclose([table[f"score_{k}"][i] for k in (1, 2, 3)], r.prediction.scores, atol=1e-5)
