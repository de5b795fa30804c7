"""The doctor tells a copy from a shared part: overlapping crops of one photo are "overlap", real
near-copies planted among them stay "duplicate"; weak label suspicions only when asked."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import doctor_data  # noqa: E402

from cnndesk.core.doctor import check as doctor  # noqa: E402
from cnndesk.core.doctor.duplicates import pair_kind  # noqa: E402


def test_pair_kind_says_same_picture_only_when_nearly_all_pixels_agree():
    assert pair_kind(0.97, 5.0, "all", "all")[0] == "duplicate"
    assert pair_kind(0.5, 2.0, "all", "all")[0] == "duplicate"  # flat pictures: colours decide
    kind, text = pair_kind(0.61, 5.0, "all", "all")
    assert kind == "overlap" and "share a part" in text
    assert pair_kind(0.95, 4.0, "train", "val")[0] == "leak"
    kind, text = pair_kind(0.7, 6.0, "train", "val")
    assert kind == "overlap" and "val" in text


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    """Pairs of 128-px crops of the rocket photo (mostly sky: little structure, like grass or
    sand) shifted by a quarter of their size against each other, so each pair shares a part;
    crops of another photo; and near-copies (resized, cropped by 1-3 px, re-encoded) of three."""
    from cnndesk.core.common.paths import sample_images
    from cnndesk.core.images.load import load_image

    root = tmp_path_factory.mktemp("crops") / "data"
    rng = random.Random(5)
    photos = {p.stem: load_image(str(p), min_side=480) for p in sample_images()}
    sky, other = photos["rocket"], photos["cat"]
    (root / "sky").mkdir(parents=True)
    (root / "other").mkdir()
    shared, bases = [], []
    for i in range(8):
        x, y = rng.randint(0, sky.width - 170), rng.randint(0, sky.height - 150)
        a, b = root / "sky" / f"a{i}.png", root / "sky" / f"b{i}.png"
        sky.crop((x, y, x + 128, y + 128)).save(a)
        sky.crop((x + 32, y + 13, x + 160, y + 141)).save(b)
        shared.append(frozenset((str(a), str(b))))
        bases.append(a)
    for i in range(16):
        x, y = rng.randint(0, other.width - 128), rng.randint(0, other.height - 128)
        other.crop((x, y, x + 128, y + 128)).save(root / "other" / f"o{i}.png")
    copies = []
    for k, src in enumerate(bases[:3]):
        with Image.open(src) as im:
            c = doctor_data.near_copy(im.convert("RGB"), rng)
        target = src.parent / f"copy_{k}.jpg"
        c.save(target, quality=80)
        copies.append(frozenset((str(src), str(target))))
    return root, copies, shared, doctor.check_dataset(root)


def test_planted_copies_are_duplicates_and_crops_that_share_a_part_are_overlaps(crops):
    root, copies, shared, rep = crops
    kinds = {frozenset((i.path, i.other)): i for i in rep.issues if i.kind in ("duplicate", "overlap", "leak")}
    assert all(k in kinds and kinds[k].kind == "duplicate" for k in copies), [kinds.get(k) for k in copies]
    overlaps = [kinds[k] for k in shared if k in kinds and kinds[k].kind == "overlap"]
    assert len(overlaps) >= 2 and all("share a part" in i.reason for i in overlaps), [kinds.get(k) for k in shared]
    # "the same picture" only with nearly all aligned pixels alike
    for i in (i for i in kinds.values() if i.kind == "duplicate"):
        alike = int(i.reason.split("pixels ")[1].split("%")[0])
        within = int(i.reason.split("colours within ")[1].split("/")[0])
        assert alike >= 90 or within <= 3, i.reason
    assert rep.summary["issues"].get("overlap", 0) == sum(i.kind == "overlap" for i in rep.issues)


def test_weak_label_suspicions_only_when_asked(tmp_path):
    root = tmp_path / "data"
    doctor_data.make(root, per_class=30, n_dupes=0, n_leaks=0, flip_share=0.1, seed=4,
                     classes=("circle", "square", "stripes", "dots"))
    strong = doctor.check_dataset(root)
    everything = doctor.check_dataset(root, less_likely=True)
    s_labels = [i for i in strong.issues if i.kind == "label"]
    a_labels = [i for i in everything.issues if i.kind == "label"]
    assert all(i.likely for i in s_labels)
    assert len(a_labels) == len(s_labels) + strong.summary["less_likely"]
    assert {i.key() for i in s_labels} <= {i.key() for i in a_labels}
    assert everything.summary["less_likely"] == 0
