"""A tiny model file asking for a huge network is refused from its weights' header, before the
network is built (a 460-byte file for timm:vit_gigantic_patch14_clip_224 cost 8.16 GB and 36 s
before "weights do not fit")."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from cnndesk.core.images.preprocess import Preprocess
from cnndesk.core.models.files import save_model_file

# runs the CLI in a child and reports that child's peak memory (RUSAGE_CHILDREN of a fresh parent)
PEAK = """
import json, resource, subprocess, sys
out = subprocess.run([sys.executable, "-m", "cnndesk", *sys.argv[1:]], capture_output=True, text=True)
print(json.dumps({"rc": out.returncode, "err": out.stderr,
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def test_a_tiny_file_for_a_huge_network_is_refused_before_building_it(tmp_path, samples):
    path = save_model_file(tmp_path / "giant.safetensors", {"w": np.zeros(2, np.float32)},
                           arch="timm:vit_huge_patch14_224", labels=["a", "b"],
                           preprocess=Preprocess(256, 224, (0.5,) * 3, (0.5,) * 3))
    assert path.stat().st_size < 1000
    res = json.loads(subprocess.run([sys.executable, "-c", PEAK, "classify", str(samples["cat"]), "--model", str(path)],
                                    capture_output=True, text=True, timeout=600).stdout)
    assert res["rc"] == 3 and "weights do not fit the architecture" in res["err"], res
    assert "Traceback" not in res["err"]
    # the network's 632 M parameters would be 2.5 GB; torch + timm themselves take about 1 GB
    assert res["peak_mb"] < 2000, res["peak_mb"]
