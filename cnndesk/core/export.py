"""Export a model to ONNX or TorchScript, then check the exported file against the app's own
model on the sample photos: top-1 agreement and the largest absolute difference of the
probabilities are reported, so an exported model that disagrees with the app never goes unnoticed.
Files are written atomically and never overwrite an existing file unless asked."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnndesk.core.errors import CnndeskError
from cnndesk.core.models.registry import ModelSpec, get_spec


class ExportError(CnndeskError):
    pass


@dataclass
class ExportReport:
    path: Path
    format: str
    top1_agreement: int
    images: int
    max_abs_diff: float

    @property
    def ok(self) -> bool:
        return self.top1_agreement == self.images and self.max_abs_diff < 1e-3

    def describe(self) -> str:
        verdict = "matches the app" if self.ok else "DIFFERS from the app"
        return (f"{self.path} ({self.format}) {verdict}: top-1 agreement {self.top1_agreement}/{self.images} "
                f"sample images, largest probability difference {self.max_abs_diff:.2g}")


def export_model(model: str | ModelSpec, fmt: str, out: str | os.PathLike, overwrite: bool = False) -> ExportReport:
    import torch

    from cnndesk.core.inference import Classifier, softmax
    from cnndesk.core.models.build import build_model
    from cnndesk.core.onnx_cache import sample_batch

    spec = model if isinstance(model, ModelSpec) else get_spec(model)
    out = Path(out)
    if fmt not in ("onnx", "torchscript"):
        raise ExportError(f"unknown export format '{fmt}' (onnx or torchscript)")
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists; choose another name (or --force to replace it)")
    net = build_model(spec).eval()
    x = sample_batch(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=".cnndesk-export-", dir=out.parent))
    try:
        tmp = tmpdir / out.name
        if fmt == "onnx":
            from cnndesk.core.onnx_cache import _export, make_session

            _export(net, spec, tmp)
            session = make_session(tmp, threads=1)
            got = session.run(None, {session.get_inputs()[0].name: x})[0]
        else:
            with torch.inference_mode():
                traced = torch.jit.trace(net, torch.from_numpy(x[:1]))
            traced.save(str(tmp))
            loaded = torch.jit.load(str(tmp))
            with torch.inference_mode():
                got = loaded(torch.from_numpy(x)).numpy()
        app = Classifier(spec)  # the app's own path (ONNX Runtime on the CPU, or PyTorch)
        ref = app.logits(x)
        p_ref, p_got = softmax(ref), softmax(got)
        report = ExportReport(out, fmt, int((p_ref.argmax(1) == p_got.argmax(1)).sum()), len(x),
                              float(np.abs(p_ref - p_got).max()))
        if out.exists() and overwrite:
            os.replace(tmp, out)
        else:
            os.link(tmp, out)  # never clobbers a file that appeared meanwhile
        return report
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
