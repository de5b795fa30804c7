"""One clip per label from a classified video: every segment of a label, joined in time order,
re-encoded (h264 MP4, picture only) so the cuts land on the segment boundaries exactly. One decode
pass feeds one encoder per label. Files are written through the safe writer (an exclusive,
unpredictable temporary file, renamed into place: a planted symlink is never written through) and
an existing file is never replaced (a free name such as ``clip_cat (1).mp4`` is used)."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

from cnndesk.core.common.errors import Cancelled, CnndeskError
from cnndesk.core.common.progress import CancelToken, ProgressCallback, report
from cnndesk.core.common.safeio import PendingFile, unique_path
from cnndesk.core.predict.video import Segment, open_video


def _safe(label: str) -> str:
    return re.sub(r"[^\w\-. ]+", "_", label).strip(" .") or "label"


def clip_names(labels: list[str]) -> dict[str, str]:
    """A distinct file-name part for each label: labels that clean to the same name (``c/at``,
    ``c:at``; ``Cat``/``cat`` on case-insensitive disks) get a short hash of the label, so no clip
    is written over (or lost to) another's."""
    import hashlib

    out, used = {}, set()
    for lab in labels:
        name = _safe(lab)
        if name.casefold() in used:
            name = f"{name}_{hashlib.sha1(lab.encode('utf-8', 'surrogateescape')).hexdigest()[:6]}"
        used.add(name.casefold())
        out[lab] = name
    return out


def export_label_clips(path, segments: list[Segment], folder, *, progress: ProgressCallback | None = None,
                       cancel: CancelToken | None = None) -> list[Path]:
    """Write ``<folder>/<video stem>_<label>.mp4`` for each label; returns the files written."""
    import av

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    labels = sorted({s.label for s in segments}, key=lambda lab: min(s.start for s in segments if s.label == lab))
    spans = sorted((s.start, s.end, s.label) for s in segments)
    container, stream = open_video(path)
    rate = stream.average_rate or Fraction(30)
    cc = stream.codec_context
    total = spans[-1][1] if spans else 0.0
    outs: dict[str, tuple] = {}
    written: list[Path] = []
    names = clip_names(labels)
    try:
        for lab in labels:
            final, _ = unique_path(folder / f"{Path(path).stem}_{names[lab]}.mp4")
            tmp = PendingFile(final)
            try:
                out = av.open(tmp.fh, "w", format="mp4")
            except BaseException:
                tmp.discard()
                raise
            vs = out.add_stream("h264", rate=rate)
            vs.width, vs.height, vs.pix_fmt = (cc.width // 2) * 2, (cc.height // 2) * 2, "yuv420p"
            outs[lab] = (out, vs, tmp, final, [0])
        first = None
        k = 0
        for frame in container.decode(stream):
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            t = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
            first = t if first is None else first
            t -= first
            while k < len(spans) - 1 and t >= spans[k][1]:
                k += 1
            if not spans or not spans[k][0] <= t < spans[k][1] + 1e-6:
                continue
            out, vs, _, _, count = outs[spans[k][2]]
            img = frame.reformat(width=vs.width, height=vs.height, format="yuv420p")
            img.pts, img.time_base = count[0], Fraction(1, 1) / rate
            count[0] += 1
            for packet in vs.encode(img):
                out.mux(packet)
            if count[0] % 30 == 0:
                report(progress, int(t * 1000), int(total * 1000), f"Writing clips: {t:.0f} of {total:.0f} s")
        for lab in labels:
            out, vs, tmp, final, count = outs[lab]
            for packet in vs.encode():
                out.mux(packet)
            out.close()
            if count[0] == 0:
                tmp.discard()
                del outs[lab]
                continue
            for _attempt in range(100):  # never replaces a file that appeared meanwhile
                try:
                    written.append(tmp.commit(unique_path(final)[0]))
                    del outs[lab]
                    break
                except FileExistsError:
                    continue
            else:
                raise CnndeskError(f"no free name for {final.name}")
    except av.error.FFmpegError as exc:
        raise CnndeskError(f"writing the clips failed: {exc}") from None
    finally:
        container.close()
        for out, _, tmp, _, _ in outs.values():
            try:
                out.close()
            except Exception:  # noqa: BLE001 - already failing; remove the partial file
                pass
            tmp.discard()
    return written
