"""The CPU fast path's cache: each model is exported to ONNX once, checked against PyTorch on the
sample photos, and cached in the user cache directory keyed by the content of its weights.

Later runs find the verified file and never import torch. A failed export or check is recorded
too (with its reason), so the app falls back to PyTorch without retrying every start.

Only :mod:`cnndesk.core.runtime.backends` looks entries up and exports on a miss (``runtime.resolve``);
this module neither downloads weights nor builds networks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cnndesk.core.common import cache_budget
from cnndesk.core.common.errors import Cancelled, ModelError
from cnndesk.core.common.paths import atomic_write, user_cache_dir
from cnndesk.core.common.progress import CancelToken, ProgressCallback, check, report
from cnndesk.core.models.registry import ModelSpec

log = logging.getLogger("cnndesk")

# Bump when the export recipe changes: old cache entries are then ignored.
EXPORT_VERSION = 2  # 2: keyed on the file's own content (no sidecars beside user files), entries verified
# Parity limits between the exported model and PyTorch on the sample photos.
MAX_LOGIT_DIFF = 1e-3


@dataclass(frozen=True)
class OnnxEntry:
    path: Path | None  # None when export or verification failed
    record: dict

    @property
    def ok(self) -> bool:
        return self.path is not None


# A failed export is retried by the next process that needs it, up to this many tries in all: a
# one-off failure (two exports at once before EXPORT_LOCK existed left such records in real caches)
# must not pin a machine to PyTorch (about 31 ms per image against 3-4 ms) for good, while a model
# that can never be exported costs at most two more attempts.
EXPORT_ATTEMPTS = 3


class OnnxUnavailable(ModelError):
    """ONNX export or its check failed; the reason says why (PyTorch is used instead)."""


def onnx_dir() -> Path:
    return user_cache_dir() / "onnx"


def file_sha256(path: Path) -> str:
    """Content hash of a weights or model file (weights and metadata alike: the whole file),
    remembered by (path, inode, size, mtime, ctime) so starts stay cheap; ctime cannot be set back
    by hand, so a file swapped under the same size and mtime is hashed again. A ``<file>.sha256``
    sidecar is believed only for the app's own weights (packaged builds: ``resources/weights``),
    never beside a user's file, where it could claim another model's identity."""
    if _is_app_resource(path):
        sidecar = path.with_name(path.name + ".sha256")
        if sidecar.is_file():
            return sidecar.read_text().split()[0]
    st = path.stat()
    index_path = user_cache_dir() / "hashes.json"
    key = f"{path.resolve()}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    if isinstance(index, dict) and isinstance(index.get(key), str):
        return index[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    index = index if isinstance(index, dict) else {}
    index[key] = digest
    try:
        with atomic_write(index_path, "w") as fh:
            json.dump(dict(list(index.items())[-200:]), fh)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return digest


def _is_app_resource(path: Path) -> bool:
    from cnndesk.core.common.paths import resource_path

    try:
        return os.path.realpath(path.parent) == os.path.realpath(resource_path("weights"))
    except (OSError, ValueError):
        return False


def cache_key(spec: ModelSpec, weights_path: Path, variant: str = "logits") -> str:
    """The cache key of an export: the hash of the file's whole content plus everything about the
    network that shapes its export — never its name, which any model file may claim."""
    content = file_sha256(weights_path)
    ident = (f"{EXPORT_VERSION}|{spec.source}|{spec.arch}|{spec.num_classes}|{spec.input_size}|"
             f"{spec.key_mapping}|{variant}|{content}")
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def entry_paths(spec: ModelSpec, key: str, variant: str = "logits") -> tuple[Path, Path]:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec.name)[:40]
    if variant != "logits":
        stem += f"-{variant}"
    base = onnx_dir() / f"{stem}-{key}"
    return base.with_suffix(".onnx"), base.with_suffix(".json")


def lookup(spec: ModelSpec, variant: str, weights: Path) -> tuple[OnnxEntry | None, str]:
    """Find a cached export without importing torch. Returns (entry or None, key).

    ``variant``: "logits" (the classifier), "features" (the pooled embedding before it) or
    "multi" (mean+max pooled late stages plus that embedding, see ``models.multistage``)."""
    key = cache_key(spec, weights, variant)
    onnx_path, record_path = entry_paths(spec, key, variant)
    if not record_path.is_file() and not os.environ.get("CNNDESK_NO_BUNDLED_EXPORT"):
        # a packaged app (or a checkout after `make run`: cnndesk.prepare) (the torch-free "lite" build) ships its verified exports as resources
        from cnndesk.core.common.paths import resource_path

        bundled = resource_path("onnx", record_path.name)
        if bundled.is_file():
            onnx_path, record_path = bundled.with_suffix(".onnx"), bundled
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None, key
    if not isinstance(record, dict):
        return None, key
    if record.get("ok") and onnx_path.is_file():
        if not _entry_matches(record, key, onnx_path):
            log.warning("ignoring the cached export %s: it does not match its record", onnx_path.name)
            return None, key
        if onnx_path.parent == onnx_dir():
            cache_budget.touch(onnx_path, record_path)  # used now: last in the LRU eviction order
        return OnnxEntry(onnx_path, record), key
    if record.get("ok") is False:
        return OnnxEntry(None, record), key
    return None, key


def _entry_matches(record: dict, key: str, onnx_path: Path) -> bool:
    """A verified entry is used only when its record was written for this very key and the
    exported file is still the one that was checked against PyTorch (its content hash)."""
    want = record.get("onnx_sha256")
    if record.get("key") != key or not isinstance(want, str):
        return False
    try:
        return file_sha256(onnx_path) == want
    except OSError:
        return False


def export_and_verify(
    spec: ModelSpec,
    model,
    weights: Path,
    key: str,
    variant: str = "logits",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    attempt: int = 1,
) -> OnnxEntry:
    """Export ``model`` (the torch network of ``spec``'s ``variant``, built by the runtime) to
    ONNX, check it on the samples, record the outcome under ``key``. ``attempt``: how many times
    this export has now been tried (a failure records it; the runtime retries up to
    ``EXPORT_ATTEMPTS`` times)."""
    import torch

    onnx_path, record_path = entry_paths(spec, key, variant)
    check(cancel)
    report(progress, 0, None, f"Optimising {spec.title} for this CPU (once)")
    record: dict = {
        "model": spec.name,
        "arch": spec.arch,
        "weights": str(weights),
        "torch": torch.__version__,
        "export_version": EXPORT_VERSION,
        "variant": variant,
        "attempts": int(attempt),
        "key": key,
        "weights_sha256": file_sha256(weights),
    }
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = tempfile.mkdtemp(prefix=".export-", dir=onnx_path.parent)  # exclusive, unpredictable
    tmp = Path(tmpdir) / onnx_path.name
    try:
        export_onnx(model, spec.input_size, tmp, (variant,))
        check(cancel)
        record.update(_verify(model, spec, tmp, variant))
        if not record["ok"]:
            raise OnnxUnavailable(record["reason"])
        os.replace(tmp, onnx_path)
        record["onnx_sha256"] = file_sha256(onnx_path)  # what a lookup checks the entry against
        shutil.rmtree(tmpdir, ignore_errors=True)
    except Exception as exc:
        shutil.rmtree(tmpdir, ignore_errors=True)
        if isinstance(exc, (Cancelled, ModelError)) and not isinstance(exc, OnnxUnavailable):
            raise
        record.update(ok=False, reason=record.get("reason") or f"{type(exc).__name__}: {exc}")
        log.warning("ONNX export of %s failed, using PyTorch: %s", spec.name, record["reason"])
        _write_record(record_path, record)
        return OnnxEntry(None, record)
    _write_record(record_path, record)
    cache_budget.after_write(onnx_path, record_path)  # the caches' size cap (LRU)
    return OnnxEntry(onnx_path, record)


# torch.export / torch.onnx.export are not thread-safe: two at once in one process fail ("SymInt
# ... is not tracked with proxy"), e.g. the background first-answer export beside a bundle export or
# a training's. Every export in the process takes this lock.
EXPORT_LOCK = threading.RLock()


class ThreadMutedStream:
    """sys.stdout for everyone but one thread, whose writes are dropped (an export running in the
    background must not swallow what the main thread prints meanwhile, as redirect_stdout did)."""

    def __init__(self, stream, thread_id: int):
        self._stream, self._muted = stream, thread_id

    def write(self, text: str) -> int:
        if threading.get_ident() == self._muted:
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def quiet_this_thread():
    previous = sys.stdout
    proxy = ThreadMutedStream(previous, threading.get_ident())
    sys.stdout = proxy
    try:
        yield
    finally:
        # muting ends here even where the proxy stays sys.stdout (someone who replaced it
        # meanwhile may put it back later; thread ids are reused by later threads)
        proxy._muted = None
        if sys.stdout is proxy:  # someone else may have replaced it meanwhile: leave theirs
            sys.stdout = previous


_WARNINGS_MUTED: set[int] = set()  # threads whose warnings are dropped (see quiet_warnings_this_thread)


@contextlib.contextmanager
def quiet_warnings_this_thread():
    """Drop the warnings this thread shows meanwhile (torch.onnx and torch.export are chatty), and
    nobody else's. ``warnings.catch_warnings()`` + ``simplefilter("ignore")`` did this by swapping
    the process-wide filter list: a decode thread or a second export leaving its own block in
    between restored the lists in the wrong order and silenced every warning for good (or
    brought back one it had filtered). Works through ``warnings.showwarning``, wrapped once."""
    import warnings

    if not getattr(warnings.showwarning, "_cnndesk_thread_muting", False):
        shown = warnings.showwarning

        def showwarning(message, category, filename, lineno, file=None, line=None):
            if threading.get_ident() not in _WARNINGS_MUTED:
                shown(message, category, filename, lineno, file, line)

        showwarning._cnndesk_thread_muting = True
        warnings.showwarning = showwarning
    me = threading.get_ident()
    outer = me in _WARNINGS_MUTED
    _WARNINGS_MUTED.add(me)
    try:
        yield
    finally:
        if not outer:
            _WARNINGS_MUTED.discard(me)


def export_onnx(model, input_size: int, dest: Path, output_names: tuple[str, ...] = ("logits",)) -> None:
    """Write ``model`` as one ONNX file with a dynamic batch size (imports torch), under the
    process-wide export lock. Used by the cache and by :mod:`cnndesk.core.export.network`."""
    import torch

    x = torch.zeros(2, 3, input_size, input_size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    # torch.onnx prints progress lines to stdout; keep the CLI's stdout clean (JSON output)
    with EXPORT_LOCK, quiet_warnings_this_thread(), quiet_this_thread():
        program = torch.onnx.export(
            model,
            (x,),
            dynamo=True,
            input_names=["input"],
            output_names=list(output_names),
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
        program.save(str(dest), external_data=False)


def sample_batch(spec: ModelSpec):
    """The bundled sample photos plus one noise image, preprocessed for ``spec``: the inputs on
    which exported models are checked against the app."""
    import numpy as np

    from cnndesk.core.common.paths import sample_images
    from cnndesk.core.images.load import load_image

    batch = []
    for p in sample_images():
        try:
            batch.append(spec.preprocess(load_image(p)))
        except Exception:  # a missing sample must not block the check
            continue
    rng = np.random.default_rng(0)
    batch.append(rng.standard_normal((3, spec.input_size, spec.input_size)).astype(np.float32))
    return np.stack(batch)


def _verify(model, spec: ModelSpec, onnx_path: Path, variant: str = "logits") -> dict:
    """Compare logits of PyTorch and ONNX Runtime on the sample photos (plus noise)."""
    import numpy as np
    import torch

    x = sample_batch(spec)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).float().numpy()
    session = make_session(onnx_path, threads=1)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    scale = max(1.0, float(np.abs(ref).max())) if variant != "logits" else 1.0
    diff = float(np.abs(ref - got).max()) / scale
    agree = int((ref.argmax(1) == got.argmax(1)).sum())
    ok = diff <= MAX_LOGIT_DIFF and (agree == len(x) or variant != "logits")
    result = {"ok": ok, "max_abs_diff": diff, "top1_agree": f"{agree}/{len(x)}"}
    if not ok:
        result["reason"] = (
            f"exported model disagrees with PyTorch (max logit diff {diff:.2g}, "
            f"top-1 agreement {agree}/{len(x)})"
        )
    return result


def make_session(onnx_path: Path, threads: int):
    """An ONNX Runtime CPU session: ``threads`` intra-op threads, no spin-waiting (a desktop is
    busy: spinning threads fight other programs for the cores)."""
    import onnxruntime as ort

    ort.disable_telemetry_events()  # with ORT_DISABLE_TELEMETRY (cnndesk/__init__.py): no telemetry
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise OnnxUnavailable(f"ONNX Runtime could not load {onnx_path.name}: {exc}") from None


def _write_record(path: Path, record: dict) -> None:
    try:
        with atomic_write(path, "w") as fh:
            json.dump(record, fh, indent=1)
    except OSError as exc:
        log.warning("could not write %s: %s", path, exc)
