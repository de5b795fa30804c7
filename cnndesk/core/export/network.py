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

from cnndesk.core.common.errors import CnndeskError
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
    unknown_agreement: int | None = None  # user models with a novelty detector: the extra outputs
    novelty_max_diff: float | None = None

    @property
    def ok(self) -> bool:
        trust_ok = self.unknown_agreement is None or (self.unknown_agreement == self.images
                                                      and (self.novelty_max_diff or 0.0) < 1e-3)
        return self.top1_agreement == self.images and self.max_abs_diff < 1e-3 and trust_ok

    def describe(self) -> str:
        verdict = "matches the app" if self.ok else "DIFFERS from the app"
        text = (f"{self.path} ({self.format}) {verdict}: top-1 agreement {self.top1_agreement}/{self.images} "
                f"sample images, largest probability difference {self.max_abs_diff:.2g}")
        if self.unknown_agreement is not None:
            text += (f"; outputs logits, probabilities (calibrated), novelty, unknown: unknown flag agreement "
                     f"{self.unknown_agreement}/{self.images}, largest novelty difference {self.novelty_max_diff:.2g}")
        return text


def _parity_batch(spec: ModelSpec) -> np.ndarray:
    """The sample photos (+ noise), and for a user model up to 8 of its own validation images:
    the unknown flag is then checked on both sides of the threshold."""
    from cnndesk.core.images.load import load_image
    from cnndesk.core.runtime.export_cache import sample_batch

    x = sample_batch(spec)
    own = []
    for p in ((spec.metadata.get("evaluation") or {}).get("paths") or [])[:8]:
        try:
            own.append(spec.preprocess(load_image(p, min_side=spec.preprocess.resize)))
        except Exception:  # moved or deleted since training: the samples still check the export
            continue
    return np.concatenate([x, np.stack(own)]) if own else x


def export_model(model: str | ModelSpec, fmt: str, out: str | os.PathLike, overwrite: bool = False) -> ExportReport:
    import torch

    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.runtime.export_cache import export_onnx, make_session
    from cnndesk.core.runtime.resolve import torch_model
    from cnndesk.core.trust.scores import softmax

    spec = model if isinstance(model, ModelSpec) else get_spec(model)
    out = Path(out)
    if fmt not in ("onnx", "torchscript"):
        raise ExportError(f"unknown export format '{fmt}' (onnx or torchscript)")
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists; choose another name (or --force to replace it)")
    trust = None
    if fmt == "onnx":
        from cnndesk.core.export.trustnet import trust_net

        trust = trust_net(spec)  # user models with a novelty detector: extra outputs
    net = trust if trust is not None else torch_model(spec)
    x = _parity_batch(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=".cnndesk-export-", dir=out.parent))
    try:
        tmp = tmpdir / out.name
        if fmt == "onnx":
            from cnndesk.core.export.trustnet import OUTPUTS

            export_onnx(net, spec.input_size, tmp, OUTPUTS if trust is not None else ("logits",))
            session = make_session(tmp, threads=1)
            outs = session.run(None, {session.get_inputs()[0].name: x})
            got = outs[0]
        else:
            with torch.inference_mode():
                traced = torch.jit.trace(net, torch.from_numpy(x[:1]))
            traced.save(str(tmp))
            loaded = torch.jit.load(str(tmp))
            with torch.inference_mode():
                got = loaded(torch.from_numpy(x)).numpy()
        app = Classifier(spec)  # the app's own path (ONNX Runtime on the CPU, or PyTorch)
        ref, ref_nov = app.run(x)
        p_ref, p_got = softmax(ref), softmax(got)
        report = ExportReport(out, fmt, int((p_ref.argmax(1) == p_got.argmax(1)).sum()), len(x),
                              float(np.abs(p_ref - p_got).max()))
        if trust is not None and ref_nov is not None:
            cal = app.probabilities(ref)
            report.max_abs_diff = max(report.max_abs_diff, float(np.abs(cal - outs[1]).max()))
            report.unknown_agreement = int(((ref_nov > app.novelty_threshold) == outs[3].astype(bool)).sum())
            report.novelty_max_diff = float(np.abs(ref_nov - outs[2]).max())
        if out.exists() and overwrite:
            os.replace(tmp, out)
        else:
            os.link(tmp, out)  # never clobbers a file that appeared meanwhile
        return report
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
