"""The folder job gives the answers a plain per-image classify gives, whether its first decodes
started while the model loaded (``EarlyDecode``, as ``cnndesk classify FOLDER`` does) or not."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from cnndesk.core.predict.prefetch import EarlyDecode
from cnndesk.core.predict.stream import classify_stream


def _folder(tmp_path, n=14):
    rng = np.random.default_rng(7)
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for i in range(n):
        size = (1600, 1200) if i % 3 else (700, 900)  # big ones go through draft decoding
        img = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 255, 3)))
        d = ImageDraw.Draw(img)
        for _ in range(12):
            x0, y0 = int(rng.integers(0, size[0] - 50)), int(rng.integers(0, size[1] - 50))
            d.ellipse((x0, y0, x0 + int(rng.integers(20, 400)), y0 + int(rng.integers(20, 400))),
                      fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        p = folder / f"img_{i:02d}.jpg"
        img.save(p, quality=90)
        paths.append(str(p))
    broken = folder / "img_99.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    return [*paths[:5], str(broken), *paths[5:]]


def _rows(results):
    return [(r.path, r.prediction.labels if r.prediction else None, r.error) for r in results]


def test_stream_with_early_decoding_matches_per_image_classify(classifier, tmp_path):
    paths = _folder(tmp_path)
    plain = list(classify_stream(paths, classifier, top_k=5))
    early = EarlyDecode(paths, classifier.preprocess, workers=2, count=6)
    fast = list(classify_stream(paths, classifier, top_k=5, early=early))
    assert early.futures == {}  # taken over and closed
    assert _rows(fast) == _rows(plain)
    for a, b in zip(fast, plain, strict=True):  # same batches: the very same numbers
        if a.prediction:
            assert a.prediction.scores == b.prediction.scores
    assert [r.error is not None for r in fast] == [p.endswith("img_99.jpg") for p in paths]
    assert "img_99.jpg" in fast[5].error
    for r in fast:  # one image at a time through the classifier: same top-5, same scores
        if r.prediction is None:
            continue
        one = classifier.predict([r.path], 5)[0]
        assert one.labels == r.prediction.labels
        assert np.allclose(one.scores, r.prediction.scores, atol=1e-5)


def test_early_decodes_for_another_preprocessing_are_not_used(classifier, tmp_path):
    from dataclasses import replace

    paths = _folder(tmp_path, n=4)
    other = replace(classifier.preprocess, resize=160, crop=128)
    early = EarlyDecode(paths, other, workers=1, count=5)
    got = list(classify_stream(paths, classifier, top_k=3, early=early))
    want = list(classify_stream(paths, classifier, top_k=3))
    assert _rows(got) == _rows(want) and early.futures == {}
