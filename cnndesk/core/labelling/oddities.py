"""Images unlike the rest of the folder: the label-free half of a labelling session's unknown flag.

The session's other half (``suggest.Suggester.unknown``) compares an image with the answered
ones, which says little while there are few answers: a 6,000 x 4,000 noise photo in a folder of
300 object photos with 30 answers was suggested as "bottle 94 %" and not flagged. Such an image is
far from *every* image of the folder, answered or not, and hundreds of unanswered images say so
from the first question on.

An image is odd when the mean Euclidean distance to its ``K`` nearest other images in the
labelling space (standardized features on their principal axes, magnitude kept: an odd image
has a large norm there, which a cosine distance ignores) lies more than ``SPREAD`` robust
standard deviations (MAD) above the folder's median (the doctor's outlier rule, on this space).
Measured (bench/exp_label_oddities.py, 10 odd images -- noise, gradients, flat colour, lines,
photos -- among each of four generated folders): 35 of 40 found, 5 of 3,436 ordinary images
flagged.
"""

from __future__ import annotations

import numpy as np

from cnndesk.core.common import neighbours

K = 5
SPREAD = 4.5
MIN_IMAGES = 20  # fewer: no robust spread to compare with


def odd_images(z: np.ndarray, k: int = K, spread: float = SPREAD, cancel=None) -> np.ndarray:
    """Bool per row of ``z`` (the session's space.z): unlike the rest of the folder."""
    z = np.asarray(z, np.float32)
    n = len(z)
    if n < MIN_IMAGES:
        return np.zeros(n, bool)
    dist, _ = neighbours.knn(z, z, min(k, n - 1), metric="l2", exclude_self=True, cancel=cancel)
    d = np.where(np.isfinite(dist), dist, np.nan)
    score = np.nanmean(d, axis=1)
    score = np.where(np.isfinite(score), score, np.nanmedian(score))
    med = float(np.median(score))
    mad = float(np.median(np.abs(score - med))) * 1.4826 + 1e-6
    return (score - med) / mad > spread
