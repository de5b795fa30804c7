"""``cnndesk cache info|clear``, run as a user would: JSON shape, table, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def cnndesk(*args, cache, env=None):
    return subprocess.run([sys.executable, "-m", "cnndesk", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CNNDESK_CACHE_DIR": str(cache), **(env or {})})


def test_cache_info_json_table_and_clear(tmp_path):
    cache = tmp_path / "cache"
    (cache / "embeddings").mkdir(parents=True)
    (cache / "embeddings" / "m.npz").write_bytes(b"x" * 3000)
    (cache / "onnx").mkdir()
    (cache / "onnx" / "m-key.onnx").write_bytes(b"y" * 5000)
    (cache / "onnx" / "m-key.json").write_text("{}")
    r = cnndesk("cache", "info", "--format", "json", cache=cache, env={"CNNDESK_CACHE_LIMIT_MB": "500"})
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {"caches", "total_bytes", "limit_bytes"}
    assert data["limit_bytes"] == 500_000_000 and data["total_bytes"] == 8002
    by = {c["name"]: c for c in data["caches"]}
    assert list(by) == ["embeddings", "thumbnails", "exports"]
    assert set(by["exports"]) == {"name", "title", "folder", "bytes", "entries"}
    assert (by["embeddings"]["bytes"], by["exports"]["bytes"], by["exports"]["entries"]) == (3000, 5002, 1)
    assert by["thumbnails"]["bytes"] == 0
    table = cnndesk("cache", "info", cache=cache)
    assert table.returncode == 0 and "exports" in table.stdout and "cap 2.0 GB" in table.stdout
    r = cnndesk("cache", "clear", "--what", "exports", "-f", "json", cache=cache)
    assert r.returncode == 0 and json.loads(r.stdout) == {"what": "exports", "freed_bytes": 5002, "removed": 1,
                                                          "kept_in_use": 0}
    assert not (cache / "onnx" / "m-key.onnx").exists() and (cache / "embeddings" / "m.npz").exists()
    r = cnndesk("cache", "clear", cache=cache)
    assert r.returncode == 0 and "cleared all: 1 entries" in r.stdout
    assert not (cache / "embeddings" / "m.npz").exists()


def test_cache_usage_errors_exit_2(tmp_path):
    for args in (("cache",), ("cache", "clear", "--what", "models"), ("cache", "info", "-f", "xml")):
        r = cnndesk(*args, cache=tmp_path)
        assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr, args


def test_cache_info_on_a_missing_cache_folder_is_all_zero(tmp_path):
    r = cnndesk("cache", "info", "-f", "json", cache=tmp_path / "never-made")
    assert r.returncode == 0 and json.loads(r.stdout)["total_bytes"] == 0
