"""A labelling session's unknown flag also says "unlike the whole folder" (issue 22 item 4): a
noise photo in a folder of object photos with 30 answers was suggested as "bottle 94 %" and not
flagged, because the flag only compared images with the few answered ones."""

from __future__ import annotations

import numpy as np
from label_data import fake_embed, make_pile
from PIL import Image

from cnndesk.core.labelling.oddities import odd_images
from cnndesk.core.labelling.session import LabelSession


def test_a_far_image_is_odd_and_the_cluster_is_not():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1, (200, 16)).astype(np.float32)
    z[7] *= 4  # far out (its norm): a cosine distance would not see it
    z[50] = z[51] + 0.01  # a near-duplicate pair is not odd
    odd = odd_images(z)
    assert odd[7] and odd.sum() <= 2, np.flatnonzero(odd)
    assert not odd[50] and not odd[51]
    assert not odd_images(z[:10]).any()  # too few images to say what is usual


def test_noise_in_a_pile_is_flagged_before_and_after_answers(tmp_path):
    truth = make_pile(tmp_path / "pile", per_class=40)
    rng = np.random.default_rng(1)
    noise = []
    for i in range(2):
        p = tmp_path / "pile" / f"zz_noise_{i}.png"
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(p)
        noise.append(str(p.resolve()))
    s = LabelSession.open(tmp_path / "pile", embed=fake_embed, duplicates=False, cache_space=False)
    flagged = {r.path for r in s.suggestions().rows if r.unknown}
    assert set(noise) <= flagged and len(flagged) <= 4  # no answers yet: the folder alone says so
    for p, c in list(truth.items())[::8]:  # a few answers of every class
        s.answer(p, c)
    rows = {r.path: r for r in s.suggestions().rows}
    assert all(rows[p].unknown for p in noise)
    ordinary = [r for p, r in rows.items() if p not in noise]
    assert sum(r.unknown for r in ordinary) <= 0.15 * len(ordinary)


def test_bursts_of_near_copies_make_no_single_photo_odd():
    """10 bursts of 6 near-identical frames and 40 single photos: the median distance to the 5
    nearest was about 0, so the spread was too, and all 40 single photos were flagged."""
    rng = np.random.default_rng(3)
    bursts = [rng.normal(0, 1, 32) for _ in range(10)]
    z = [b + rng.normal(0, 0.01, 32) for b in bursts for _ in range(6)]
    z += [rng.normal(0, 1, 32) for _ in range(40)]
    z.append(rng.normal(0, 1, 32) * 5)  # one far out
    odd = odd_images(np.array(z, np.float32))
    assert odd[-1] and odd.sum() <= 2, np.flatnonzero(odd)
    assert not odd[60:100].any()


def test_non_finite_rows_do_not_break_it():
    z = np.random.default_rng(4).normal(0, 1, (60, 8)).astype(np.float32)
    z[3] = np.nan
    assert odd_images(z).dtype == bool



def test_a_folder_of_identical_images_warns_nothing():
    """Every row a near-copy of the others: no neighbour is left to measure with, and numpy's
    'Mean of empty slice' went to stderr of every `cnndesk label` call on such a folder (it is made
    while opening now)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not odd_images(np.zeros((30, 8), np.float32)).any()
        assert not odd_images(np.ones((25, 4), np.float32)).any()
