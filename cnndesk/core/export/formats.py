"""The export formats (a table with no heavy imports: the CLI's --help reads it) and the export's
one-line error."""

from __future__ import annotations

from dataclasses import dataclass

from cnndesk.core.common.errors import CnndeskError


class ExportError(CnndeskError):
    """An export that cannot be done as asked; the message is one line for the user."""


@dataclass(frozen=True)
class Format:
    name: str
    runtime: str  # the Python package predict.py needs besides Pillow and numpy
    model_file: str
    description: str
    note: str = ""
    platforms: tuple[str, ...] = ()  # where its runtime runs (empty: everywhere); elsewhere parity is unchecked
    converter: str = ""  # the package that writes it, when it is not cnndesk's own dependency


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", "onnxruntime", "model.onnx", "ONNX, fp32 — onnxruntime on any OS, C#, Java, C++, JS"),
    Format("onnx-int8", "onnxruntime", "model.int8.onnx",
           "ONNX, int8 (static, per-channel, calibrated on the training images) — smaller, faster on CPUs"),
    Format("openvino", "openvino", "model.xml", "OpenVINO IR, fp32 — Intel CPUs, GPUs and NPUs"),
    Format("torchscript", "torch", "model.torchscript.pt", "TorchScript — PyTorch / LibTorch (C++)",
           note="TorchScript is deprecated in PyTorch 2.14 (torch.jit.trace/load warn); kept while it works — "
                "prefer pt2"),
    Format("pt2", "torch", "model.pt2", "torch.export program (.pt2) — PyTorch 2, AOTInductor, ExecuTorch"),
    Format("tflite", "ai_edge_litert", "model.tflite", "TensorFlow Lite / LiteRT — Android, iOS, microcontrollers",
           note="batch size 1; needs pip install 'cnndesk[mobile]' to convert", converter="litert_torch"),
    Format("coreml", "coremltools", "model.mlpackage", "Core ML program — iPhone, iPad, Mac",
           note="runs only on macOS: exported and converted here, its parity is checked on a Mac; "
                "needs pip install 'cnndesk[mobile]' to convert", platforms=("darwin",), converter="coremltools"),
)}
# top-1 agreement with fp32 below which an int8 export is refused
INT8_MIN_AGREEMENT = 0.99
