"""A stopped embedding keeps what it computed (review round): Cancel or Ctrl+C during a first
``cnndesk label --ask`` on 800 images threw away every embedding computed so far (about 40 s),
so the next run started from zero. Now the rows computed before the stop are in the cache."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnndesk.core.common.errors import Cancelled
from cnndesk.core.common.progress import CancelToken


def test_a_stopped_embedding_keeps_the_rows_it_computed(tmp_path, classifier):
    from cnndesk.core.models.registry import default_model
    from cnndesk.core.predict.embeddings import EmbeddingCache, FeatureExtractor

    rng = np.random.default_rng(0)
    paths = []
    for i in range(24):
        p = tmp_path / f"img_{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    fx = FeatureExtractor(default_model(), stages="multi")
    cache = EmbeddingCache(fx.key, folder=tmp_path / "cache")
    token = CancelToken()

    def progress(done, total, message):
        if done >= 8:
            token.cancel()  # the user stops a third of the way

    with pytest.raises(Cancelled):
        fx.embed_paths(paths, cache, progress=progress, cancel=token)
    again = EmbeddingCache(fx.key, folder=tmp_path / "cache")
    kept = [p for p in paths if again.get(p) is not None]
    assert 8 <= len(kept) < len(paths)
    got, errors = fx.embed_paths(paths, again)  # the next run goes on from there, with the same rows
    assert not errors and len(got) == len(paths)
    for p in kept:
        np.testing.assert_array_equal(got[p], cache.get(p))
