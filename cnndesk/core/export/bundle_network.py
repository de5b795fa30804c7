"""The network of an export bundle in each format: the app's verified ONNX export, its int8
quantization (calibrated, then compared with fp32), OpenVINO IR, TorchScript / torch.export, and the
mobile converters. Used by :mod:`cnndesk.core.export.bundle`."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from cnndesk.core.common.progress import check
from cnndesk.core.export.formats import FORMATS, ExportError
from cnndesk.core.models.registry import ModelSpec


def write_onnx(app, spec: ModelSpec, dest: Path) -> Path:
    """The app's own verified ONNX export, as one self-contained file."""
    import onnx

    if app.onnx_path is None:
        raise ExportError(f"{spec.title}: the app runs this model with PyTorch here ({app.fallback_reason}); "
                          "export to torchscript or pt2 instead")
    m = onnx.load(str(app.onnx_path))  # pulls in external weights (.onnx.data) if any
    onnx.save_model(m, str(dest), save_as_external_data=False)
    return dest


def preprocessed_batches(app, paths: list[str], size: int = 8) -> list[np.ndarray]:
    """The readable images among ``paths`` as the app feeds them to its network: decoded and
    preprocessed by the pipeline's own loader (``classify_stream``), stacked ``size`` at a time."""
    from cnndesk.core.predict.stream import classify_stream

    batches: list[np.ndarray] = []

    def keep(batch: np.ndarray) -> list:
        batches.append(batch)
        return [None] * len(batch)

    for _ in classify_stream(paths, app, batch_size=size, infer=keep):
        pass
    return batches


def quantize_int8(app, fp32: Path, dest: Path, calib_paths: list[str], cancel=None) -> None:
    """Static int8 quantization of the app's ONNX network: QDQ, per-channel int8 weights, uint8
    activations, MinMax ranges calibrated on ``calib_paths`` (the model's training images)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from cnndesk.core.runtime.export_cache import make_session

    name = make_session(fp32, threads=1).get_inputs()[0].name
    calib = preprocessed_batches(app, calib_paths)
    if not calib:
        raise ExportError("no readable training images to calibrate the int8 model with (--data DIR)")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {name: b}

    pre = dest.with_name(f".{dest.name}.pre.onnx")
    try:
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    except Exception:  # pre-processing is an optimisation; quantize the plain graph then
        shutil.copyfile(fp32, pre)
    try:
        check(cancel)
        quantize_static(str(pre), str(dest), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        pre.unlink(missing_ok=True)


def compare_int8(app, fp32: Path, int8: Path, val_paths: list[str]) -> dict:
    """Top-1 agreement of the int8 network with fp32 (after the app's head, if any) and speeds."""
    from cnndesk.core.runtime.export_cache import make_session

    val = preprocessed_batches(app, val_paths)
    s32, s8 = make_session(fp32, threads=app.threads), make_session(int8, threads=app.threads)
    name = s32.get_inputs()[0].name
    head = app.head

    def top1(sess, b):
        z = sess.run(None, {name: b})[0]
        if head is not None:
            z = z @ head[0].T + head[1]
        return z.argmax(1)

    same = total = 0
    for b in val:
        same += int((top1(s32, b) == top1(s8, b)).sum())
        total += len(b)
    b = val[0] if val else np.zeros((1, 3, app.preprocess.crop, app.preprocess.crop), np.float32)
    t32, t8 = time_batches(lambda: s32.run(None, {name: b})), time_batches(lambda: s8.run(None, {name: b}))
    return {"same": same, "total": total, "agreement": same / max(total, 1), "ms32": t32 * 1000 / len(b),
            "ms8": t8 * 1000 / len(b), "mb32": fp32.stat().st_size / 1e6, "mb8": int8.stat().st_size / 1e6}


def time_batches(fn, repeat: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def write_openvino(fp32: Path, dest: Path) -> None:
    try:
        import openvino as ov
    except ImportError:
        raise ExportError("the openvino format needs the openvino package (pip install 'cnndesk[export]')") from None
    ov.save_model(ov.convert_model(str(fp32)), str(dest), compress_to_fp16=False)


def write_torch(spec: ModelSpec, features_only: bool, dest: Path, fmt: str) -> None:
    """The same network as the app's ONNX export: for models whose head runs in numpy (quick models,
    full models with a novelty detector) the features network — multi-stage where the model uses it."""

    import torch

    from cnndesk.core.networks.surgery import feature_extractor
    from cnndesk.core.runtime.resolve import torch_model

    base = spec.base
    net = torch_model(base or spec).eval()
    if base is not None and spec.head.features == "multi":
        from cnndesk.core.networks.multistage import multistage_extractor

        net = multistage_extractor(net, base.arch).eval()
    elif features_only and base is None and _full_variant(spec) in ("multi", "multi_early"):  # a full model's detector
        from cnndesk.core.networks.multistage import multistage_extractor

        net = multistage_extractor(net, spec.arch, early=_full_variant(spec) == "multi_early").eval()
    elif features_only:
        net = feature_extractor(net, (base or spec).arch)[0].eval()
    from cnndesk.core.runtime.export_cache import EXPORT_LOCK, quiet_warnings_this_thread

    x = torch.zeros(2, 3, spec.input_size, spec.input_size)
    with quiet_warnings_this_thread(), EXPORT_LOCK:
        if fmt in ("tflite", "coreml"):
            write_mobile(net, x[:1], dest, fmt)
        elif fmt == "torchscript":
            with torch.inference_mode():
                torch.jit.trace(net, x).save(str(dest))
        else:
            batch = torch.export.Dim("batch", min=1, max=4096)
            ep = torch.export.export(net, (x,), dynamic_shapes=({0: batch},))
            torch.export.save(ep, str(dest))


def _full_variant(spec: ModelSpec) -> str:
    from cnndesk.core.trust.scores import load_trust

    return load_trust(spec).variant


def write_mobile(net, x, dest: Path, fmt: str) -> None:
    """TFLite through LiteRT's torch converter, Core ML through coremltools (both optional)."""
    form = FORMATS[fmt]
    try:
        converter = __import__(form.converter)
    except ImportError:
        raise ExportError(f"the {fmt} format needs {form.converter} (pip install 'cnndesk[mobile]')") from None
    if fmt == "tflite":
        converter.convert(net, (x,)).export(str(dest))
    else:
        import torch

        ep = torch.export.export(net, (x,)).run_decompositions({})
        ml = converter.convert(ep, convert_to="mlprogram", inputs=[converter.TensorType(name="image", shape=x.shape)],
                               compute_precision=converter.precision.FLOAT32)
        ml.save(str(dest))
