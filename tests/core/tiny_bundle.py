"""A minimal export bundle without PyTorch: the app's predict.py, its vendored loader (the same
copy ``export_bundle`` makes) and a three-class ONNX model (global average pool), for tests of
what predict.py does with hostile images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _onnx_model(dest: Path, classes: int = 3) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.eye(classes, 3, dtype=np.float32), "w")
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(dest))


def make_bundle(folder: Path) -> Path:
    from cnndesk import __version__
    from cnndesk.core.export.bundle import vendor_sources
    from cnndesk.core.images.preprocess import Preprocess

    folder.mkdir(parents=True)
    shutil.copy(REPO / "cnndesk" / "export_kit" / "predict.py", folder / "predict.py")
    vendor_sources(folder / "_vendor")
    _onnx_model(folder / "model.onnx")
    info = {
        "name": "tiny", "title": "tiny", "kind": "full", "base": "tiny", "arch": "tiny",
        "labels": ["red", "green", "blue"],
        "preprocess": Preprocess(256, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bilinear").to_dict(),
        "temperature": 1.0, "unknown": None, "format": "onnx", "runtime": "onnxruntime",
        "files": {"model": "model.onnx"}, "input": {"layout": "NCHW", "dtype": "float32", "size": 224},
        "cnndesk_version": __version__, "exported": "2026-01-01T00:00:00+0000",
    }
    (folder / "model.json").write_text(json.dumps(info), encoding="utf-8")
    return folder
