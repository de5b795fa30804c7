"""What a video must pass before and after its frames are classified: the image loader's pixel
limit for every frame (a 177-byte GIF named ``.mp4`` can declare 16,000 x 16,000 pixels, and the
decoder would allocate them) and finite scores (a model with NaN weights gives NaN everywhere; the
pipeline makes that an error for images, so it is one for videos too); and the duration the file
declares (to tell a cut-short file from a whole one). Qt-free, torch-free.
"""

from __future__ import annotations

import numpy as np


def frame_too_big(width: int | None, height: int | None) -> str | None:
    """The reason a frame of ``width`` x ``height`` is refused (the images' decompression-bomb
    limit), or None when it may be decoded."""
    from cnndesk.core.images.load import bomb_reason, pixel_limit

    w, h = int(width or 0), int(height or 0)
    if w * h > pixel_limit():
        return bomb_reason((w, h)).replace("the image has", "the video's frames have")
    return None


def invalid_scores(samples) -> str | None:
    """The reason the scores of classified samples cannot be used (NaN or infinite), or None."""
    bad = sum(1 for s in samples if not (np.isfinite(s.probs).all()
                                         and (s.cut_probs is None or np.isfinite(s.cut_probs).all())))
    if not bad:
        return None
    return (f"the model gave no valid score for {bad} of {len(samples)} sampled frames "
            "(NaN or infinite: its weights are damaged)")


def declared_duration(container, stream) -> float:
    """The duration in seconds the stream (else the container) declares; 0.0 when neither does."""
    if stream.duration is not None and stream.time_base is not None:
        d = float(stream.duration * stream.time_base)
        if d > 0:
            return d
    if container.duration:
        return container.duration / 1_000_000
    return 0.0
