"""Images unlike the rest of the folder: the label-free half of a labelling session's unknown flag.

The session's other half (``suggest.Suggester.unknown``) compares an image with the answered
ones, which says little while there are few answers: a 6,000 x 4,000 noise photo in a folder of
300 object photos with 30 answers was suggested as "bottle 94 %" and not flagged. Such an image is
far from *every* image of the folder, answered or not, and hundreds of unanswered images say so
from the first question on.

An image is odd when the mean Euclidean distance to its ``K`` nearest *other-looking* images in
the labelling space (standardized features on their principal axes, magnitude kept: an odd image
has a large norm there, which a cosine distance ignores) lies more than ``SPREAD`` robust standard
deviations (MAD, floored at ``MIN_SPREAD`` of the median) above the folder's median -- the
doctor's outlier rule on this space. Near-copies (bursts of shots, video frames) are not counted
as neighbours: within ``NEAR`` x the typical distance to the ``SEARCH``-th neighbour, so a folder
of bursts neither hides its odd images nor makes every single photo among them odd (10 bursts of
6 frames and 40 single photos flagged all 40 before).
Measured (bench/exp_label_oddities.py, 10 odd images -- noise, gradients, flat colour, lines,
photos -- among each of four generated folders): 35 of 40 found, 5 of 3,436 ordinary images
flagged.
"""

from __future__ import annotations

import numpy as np

from cnndesk.core.common import neighbours

K = 5
SEARCH = 20  # neighbours looked at, near-copies among them skipped
NEAR = 0.3  # a neighbour this close (x the folder's median distance to its SEARCH-th) is a near-copy
SPREAD = 4.5
MIN_SPREAD = 0.05
MIN_IMAGES = 20  # fewer: no robust spread to compare with


def settings() -> str:
    """What the answer depends on besides the rows (kept with cached answers: other settings, made again)."""
    return f"k={K},search={SEARCH},near={NEAR},spread={SPREAD},min_spread={MIN_SPREAD},min={MIN_IMAGES}"


def odd_images(z: np.ndarray, k: int = K, spread: float = SPREAD, cancel=None) -> np.ndarray:
    """Bool per row of ``z`` (the session's space.z): unlike the rest of the folder."""
    z = np.asarray(z, np.float32)
    n = len(z)
    if n < MIN_IMAGES or not len(z.shape) == 2:
        return np.zeros(n, bool)
    finite = np.isfinite(z).all(axis=1)  # a damaged row (never odd) sits at the centre meanwhile
    z = np.where(finite[:, None], z, 0.0).astype(np.float32)
    dist, _ = neighbours.knn(z, z, min(SEARCH, n - 1), metric="l2", exclude_self=True, cancel=cancel)
    dist = np.where(np.isfinite(dist), dist, np.nan)
    last = dist[:, -1][np.isfinite(dist[:, -1])]
    far = float(np.median(last)) if len(last) else float("nan")  # (nanmedian warns on all-NaN)
    near = NEAR * far if np.isfinite(far) else 0.0
    kept = np.where(dist > near, dist, np.nan)  # near-copies are not neighbours
    first = np.sort(kept, axis=1)[:, :k]  # NaN sort last
    count = np.isfinite(first).sum(axis=1)
    with np.errstate(all="ignore"):  # a row with only near-copies: NaN -> not odd (nanmean warns there)
        score = np.where(count > 0, np.nansum(first, axis=1) / np.maximum(count, 1), np.nan)
    ok = np.isfinite(score)
    if ok.sum() < MIN_IMAGES:
        return np.zeros(n, bool)
    med = float(np.median(score[ok]))
    mad = max(float(np.median(np.abs(score[ok] - med))) * 1.4826, MIN_SPREAD * med, 1e-6)
    out = np.zeros(n, bool)
    out[ok] = (score[ok] - med) / mad > spread
    return out & finite
