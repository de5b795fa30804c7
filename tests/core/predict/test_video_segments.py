"""Video files over time: segments and boundaries on generated clips (still scenes with a slow zoom
and noise), variable frame rates, damaged and wrong inputs, CSV/JSON shapes, sharding and merge."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from videos import make_audio_only, make_scene_clip

from cnndesk.core.predict.video import VideoError, classify_video, smooth_labels

SCENES = ["coffee", "rocket", "coffee", "grace_hopper", "rocket"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_scene_clip(tmp_path_factory.mktemp("v") / "scenes.mp4", SCENES, seconds=2.0, fps=15)


@pytest.fixture(scope="module")
def mkv_clip(tmp_path_factory):
    return make_scene_clip(tmp_path_factory.mktemp("v") / "scenes.mkv", SCENES, seconds=2.0, fps=15, seed=1)


def scene_label(classifier, name):
    from videos import SAMPLES

    return classifier.predict([SAMPLES / f"{name}.jpg"])[0].label


@pytest.mark.parametrize("every", [0.5, 1.0])
def test_segments_in_order_with_boundaries_on_the_cuts(classifier, clip, every):
    r = classify_video(clip, classifier, every=every)
    assert r.ok and r.stopped_at is None
    labels = [s.label for s in r.segments]
    assert len(labels) == len(SCENES), [(s.start, s.end, s.label) for s in r.segments]
    assert labels[0] == labels[2] and labels[1] == labels[4]
    assert len({labels[0], labels[1], labels[3]}) == 3
    assert labels[0] == scene_label(classifier, "coffee")
    for k, seg in enumerate(r.segments):
        assert seg.start == pytest.approx(2.0 * k, abs=0.5 if every > 0.5 else 0.25)
        assert seg.end == pytest.approx(2.0 * (k + 1), abs=0.5 if every > 0.5 else 0.25)
        assert 0 < seg.score <= 1
    # a clear cut: the boundary lands on the first frame of the new scene (1/15 s frames)
    assert max(abs(s.start - 2.0 * k) for k, s in enumerate(r.segments)) < 0.07
    assert r.samples == pytest.approx(10.0 / every, abs=1)
    d = r.as_dict()
    assert set(d) >= {"path", "predictions", "error", "segments", "duration"}
    assert d["predictions"][0]["label"] in (labels[0], labels[1])  # 4 s each
    assert sum(p["score"] for p in d["predictions"]) == pytest.approx(1.0, abs=1e-3)


def test_variable_frame_rate_uses_timestamps(classifier, tmp_path):
    # 5 fps for 3 s, then 30 fps for 3 s: counting frames at the average rate would put the
    # change at 15/((15 + 90)/6) = 0.86 s
    times = [i / 5 for i in range(15)] + [3.0 + i / 30 for i in range(90)]
    path = make_scene_clip(tmp_path / "vfr.mkv", ["coffee", "rocket"], seconds=3.0, fps=30, times=times)
    r = classify_video(path, classifier, every=0.5)
    assert [s.label for s in r.segments] == [scene_label(classifier, "coffee"), scene_label(classifier, "rocket")]
    assert r.segments[0].end == pytest.approx(3.0, abs=0.05)
    assert r.duration == pytest.approx(6.0, abs=0.1)


def test_truncated_file_returns_segments_up_to_the_damage(classifier, mkv_clip, tmp_path):
    data = mkv_clip.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    r = classify_video(cut, classifier)
    assert not r.ok and r.stopped_at is not None
    assert 3.0 < r.stopped_at < 9.0
    assert "analysed up to" in r.error and "0:10.0" in r.error and "\n" not in r.error
    assert r.segments[-1].end == pytest.approx(r.stopped_at)
    assert r.segments[1].start == pytest.approx(2.0, abs=0.07)


def test_corrupt_middle_does_not_crash(classifier, mkv_clip, tmp_path):
    data = bytearray(mkv_clip.read_bytes())
    rng = np.random.default_rng(0)
    mid = len(data) // 2
    data[mid:mid + 4000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    bad = tmp_path / "corrupt.mkv"
    bad.write_bytes(bytes(data))
    r = classify_video(bad, classifier)  # FFmpeg conceals or stops: either way segments come back
    assert r.segments and r.segments[0].start == 0.0
    assert r.error is None or "\n" not in r.error


@pytest.mark.parametrize("kind,needle", [
    ("empty", "the file is empty (0 bytes)"),
    ("audio", "audio file with no pictures"),
    ("text", "not a readable video"),
    ("mp4-cut", "not a readable video"),  # mp4 keeps its index at the end: nothing to read
    ("missing", "does not exist"),
])
def test_unreadable_inputs_one_line_messages(classifier, clip, tmp_path, kind, needle):
    path = tmp_path / {"audio": "song.m4a"}.get(kind, f"{kind}.mp4")
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "audio":
        make_audio_only(path)
    elif kind == "text":
        path.write_text("hello, I am not a video\n" * 50)
    elif kind == "mp4-cut":
        path.write_bytes(clip.read_bytes()[:20000])
    with pytest.raises(VideoError) as info:
        classify_video(path, classifier)
    msg = str(info.value)
    assert needle in msg and msg.startswith(path.name + ": ") and "\n" not in msg


def test_smoothing_ignores_one_odd_sample_and_keeps_real_changes():
    p = np.full((12, 3), 0.05, np.float32)
    p[:6, 0] = 0.9
    p[6:, 1] = 0.9
    p[3] = (0.02, 0.03, 0.95)  # one confident odd frame inside the first scene
    labels = smooth_labels(p)
    assert labels.tolist() == [0] * 6 + [1] * 6
    flicker = np.tile(np.array([[0.45, 0.40, 0.15], [0.40, 0.45, 0.15]], np.float32), (5, 1))
    assert len(set(smooth_labels(flicker).tolist())) == 1  # two similar classes taking turns


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cnndesk", "classify", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_cli_json_csv_and_bad_files(classifier, clip, samples, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    out = cli(clip, samples["coffee"], empty, "-f", "json", "-k", "3")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    rows = json.loads(out.stdout)
    assert [r["path"] for r in rows] == [str(clip), str(samples["coffee"]), str(empty)]
    video, image, bad = rows
    assert len(video["segments"]) == 5 and video["error"] is None
    assert set(video["segments"][0]) == {"start", "end", "label", "score"}
    assert len(video["predictions"]) == 3 and "segments" not in image
    assert bad["error"] == "empty.mp4: the file is empty (0 bytes)" and bad["segments"] == []
    out = cli(clip, samples["coffee"], "-f", "csv", "-k", "2", "--every", "1")
    assert out.returncode == 0, out.stderr
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    assert list(table[0]) == ["path", "start", "end", "label_1", "score_1", "label_2", "score_2", "error"]
    assert [r["path"] for r in table] == [str(clip)] * 5 + [str(samples["coffee"])]
    assert [float(r["start"]) for r in table[:5]] == pytest.approx([0, 2, 4, 6, 8], abs=0.07)
    assert table[5]["start"] == "" and table[5]["label_1"] == "espresso"
    assert cli(clip, "--every", "0").returncode == 2


def test_folders_shards_and_merge(classifier, clip, mkv_clip, samples, tmp_path):
    folder = tmp_path / "media"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.mp4", "sub/b.mkv"):
        (folder / name).write_bytes((clip if name.endswith("mp4") else mkv_clip).read_bytes())
    for name in ("cat", "rocket"):
        (folder / f"{name}.jpg").write_bytes(samples[name].read_bytes())
    assert len(json.loads(cli(folder, "-f", "json").stdout)) == 3  # no -r: b.mkv not included
    for fmt in ("csv", "json"):
        whole = tmp_path / f"whole.{fmt}"
        assert cli(folder, "-r", "-o", whole).returncode == 0
        parts = [tmp_path / f"part{i}.{fmt}" for i in range(2)]
        for i, part in enumerate(parts):
            assert cli(folder, "-r", "--shard", f"{i}/2", "-o", part).returncode == 0
        merged = tmp_path / f"merged.{fmt}"
        out = subprocess.run([sys.executable, "-m", "cnndesk", "merge", *map(str, parts), "-o", str(merged)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        if fmt == "csv":
            assert merged.read_text() == whole.read_text()
        else:
            a, b = json.loads(whole.read_text()), json.loads(merged.read_text())
            assert [r["path"] for r in a] == [r["path"] for r in b]
            assert [r.get("segments") for r in a] == [r.get("segments") for r in b]
            assert sum(len(r.get("segments") or []) for r in b) == 10


def test_long_steps_seek_instead_of_decoding_everything(classifier, clip, monkeypatch):
    import cnndesk.core.predict.video as video

    monkeypatch.setattr(video, "SEEK_STEP", 0.9)
    r = classify_video(clip, classifier, every=1.0)
    assert r.samples == 10 and r.times == pytest.approx([float(k) for k in range(10)], abs=0.1)
    assert len(r.segments) == len(SCENES)
    for k, seg in enumerate(r.segments[1:], 1):  # no cut detection: midway between samples
        assert seg.start == pytest.approx(2.0 * k, abs=0.55)
    assert r.segments[-1].end == pytest.approx(10.0, abs=0.01) and r.ok


def test_video_path_imports_neither_torch_nor_qt(classifier, clip):
    code = ("import sys; from cnndesk.core.predict.classifier import Classifier; from cnndesk.core.predict.video import classify_video;"
            f"r = classify_video({str(clip)!r}, Classifier(threads=1)); "
            "print(len(r.segments), 'torch' in sys.modules, 'PySide6' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["5", "False", "False"], out.stderr


class _Flagging:
    """The default model, but flagging "rocket" frames as not one of its classes (as a user model
    with a novelty detector would): exercises the unknown flag on segments."""

    def __init__(self, classifier, rocket_label):
        self._c, self.rocket = classifier, rocket_label
        self.preprocess, self.labels, self.novelty_threshold = classifier.preprocess, classifier.labels, 0.5

    def prepare(self, image):
        return self._c.prepare(image)

    def run(self, batch):
        logits = self._c.logits(batch)
        rocket = self._c.labels.index(self.rocket)
        return logits, (logits.argmax(1) == rocket).astype(np.float32)

    def probabilities(self, logits):
        from cnndesk.core.trust.scores import softmax

        return softmax(logits)


def test_segments_of_a_model_with_a_novelty_detector_carry_unknown(classifier, clip):
    rocket = scene_label(classifier, "rocket")
    r = classify_video(clip, _Flagging(classifier, rocket), every=0.5)
    segs = r.as_dict()["segments"]
    assert all("unknown" in s for s in segs)
    assert [s["unknown"] for s in segs] == [s["label"] == rocket for s in segs]
