"""The streaming folder pipeline: order, bounded memory, errors that do not stop it, cancel."""

from __future__ import annotations

import os
import random
import threading
import time

import numpy as np
import pytest

from cnndesk.core.common.errors import Cancelled, ImageLoadError
from cnndesk.core.common.progress import CancelToken
from cnndesk.core.images.preprocess import Preprocess
from cnndesk.core.predict.classifier import Prediction, top_k
from cnndesk.core.predict.stream import classify_stream, expand_paths


class FakeClassifier:
    """Predicts the number encoded in each array, so order can be checked."""

    preprocess = Preprocess()
    labels = [str(i) for i in range(10)]

    def __init__(self, delay=0.0):
        self.delay = delay
        self.batches = []

    def prepare(self, img):
        raise AssertionError("tests pass their own loader")

    def predict_arrays(self, batch, k):
        self.batches.append(len(batch))
        time.sleep(self.delay)
        probs = np.zeros((len(batch), 10), np.float32)
        for row, arr in zip(probs, batch, strict=True):
            row[int(arr[0]) % 10] = 1.0
        return top_k(probs, self.labels, k)


def test_results_come_back_in_input_order_despite_random_decode_times():
    rng = random.Random(0)

    def load(path):
        time.sleep(rng.random() * 0.003)
        n = int(path.split("-")[1])
        if n % 7 == 3:
            raise ImageLoadError(path, "the file is damaged")
        return np.full(4, n, np.float32)

    paths = [f"img-{i}" for i in range(300)]
    results = list(classify_stream(paths, FakeClassifier(), load=load, batch_size=8, decode_workers=4))
    assert [r.path for r in results] == paths
    assert [r.index for r in results] == list(range(300))
    for i, r in enumerate(results):
        if i % 7 == 3:
            assert r.prediction is None and "damaged" in r.error
        else:
            assert r.ok and r.prediction.label == str(i % 10)


def test_memory_is_bounded_for_a_huge_stream():
    """At most max_in_flight decoded images exist at once, whatever the number of files; the
    input is consumed lazily (a generator of 100,000 paths is never materialized)."""
    alive = 0
    peak = 0
    lock = threading.Lock()
    taken = 0

    def paths():
        nonlocal taken
        for i in range(100_000):
            taken += 1
            yield f"img-{i}"

    def load(path):
        nonlocal alive, peak
        with lock:
            alive += 1
            peak = max(peak, alive)
        return np.full(4, int(path[4:]), np.float32)

    yielded = 0
    max_lead = 0
    for _result in classify_stream(paths(), FakeClassifier(), load=load, batch_size=16, decode_workers=2, max_in_flight=40):
        with lock:
            alive -= 1
        yielded += 1
        max_lead = max(max_lead, taken - yielded)
        if yielded == 20_000:
            break
    assert peak <= 40 + 16  # queued decodes plus the batch being predicted
    assert max_lead <= 40 + 16
    assert taken < 20_100  # lazily consumed


def test_real_folder_with_bad_files_continues(classifier, samples, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, p in samples.items():
        (folder / f"{name}.jpg").write_bytes(p.read_bytes())
    (folder / "broken.jpg").write_bytes(samples["cat"].read_bytes()[:3000])
    (folder / "zero.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, skipped inside folders")
    (folder / ".hidden.jpg").write_bytes(samples["cat"].read_bytes())
    files = expand_paths([folder])
    assert [os.path.basename(f) for f in files] == sorted(
        ["astronaut.jpg", "broken.jpg", "cat.jpg", "coffee.jpg", "grace_hopper.jpg", "rocket.jpg", "zero.png"]
    )
    progress = []
    results = list(classify_stream(files, classifier, top_k=3, progress=lambda d, t, m: progress.append((d, t))))
    by_name = {os.path.basename(r.path): r for r in results}
    assert "truncated" in by_name["broken.jpg"].error and "empty" in by_name["zero.png"].error
    assert by_name["coffee.jpg"].prediction.label == "espresso"
    assert sum(r.ok for r in results) == 5
    assert progress[-1] == (7, 7)


def test_expand_paths_recursion_and_symlink_loops(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for p in ["a/1.jpg", "a/b/2.png", "a/b/3.JPEG", "a/.git/x.jpg", "a/skip.txt"]:
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_bytes(b"x")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "loop")
    flat = expand_paths([tmp_path / "a"])
    deep = expand_paths([tmp_path / "a"], recursive=True)
    assert [os.path.relpath(p, tmp_path) for p in flat] == ["a/1.jpg"]
    assert sorted(os.path.relpath(p, tmp_path) for p in deep) == ["a/1.jpg", "a/b/2.png", "a/b/3.JPEG"]
    assert expand_paths([tmp_path / "missing.jpg", tmp_path / "a/skip.txt"]) == [
        str(tmp_path / "missing.jpg"), str(tmp_path / "a/skip.txt")
    ]


def test_cancel_stops_promptly():
    token = CancelToken()

    def load(path):
        time.sleep(0.002)
        return np.zeros(4, np.float32)

    got = 0
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        for _ in classify_stream((f"x{i}" for i in range(100_000)), FakeClassifier(), load=load, cancel=token):
            got += 1
            if got == 50:
                token.cancel()
    assert time.perf_counter() - t0 < 5 and got < 60


def test_prediction_dict_shape():
    p = Prediction(("a", "b"), (0.75, 0.25), (0, 1))
    assert p.as_list() == [{"label": "a", "score": 0.75}, {"label": "b", "score": 0.25}]
