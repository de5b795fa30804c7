"""A video gets the images' limits: the decompression-bomb pixel limit for its frames (a tiny GIF
named .mp4 declaring 16,000² px) and NaN scores are an error, never a label with score 1.0; the
table never crashes on a segment without a score and shows labels escaped."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from cnndesk.core.images.preprocess import Preprocess
from cnndesk.core.predict import results as results_io
from cnndesk.core.predict import video
from tests.core.videos import make_scene_clip


def big_gif(path, w=16000, h=16000):
    """A few dozen bytes that declare a w × h picture (the decoder would allocate all of it)."""
    data = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    data += b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02\x02\x44\x01\x00\x3b"
    path.write_bytes(data)
    return path


def test_a_video_whose_frames_exceed_the_pixel_limit_is_refused_before_decoding(tmp_path):
    path = big_gif(tmp_path / "tiny.mp4")
    with pytest.raises(video.VideoError, match="too many pixels"):
        video.open_video(path)


def test_cli_reports_the_oversized_video_as_one_error_row(tmp_path, classifier):
    path = big_gif(tmp_path / "tiny.mp4")
    out = subprocess.run([sys.executable, "-m", "cnndesk", "classify", str(path), "-f", "json"],
                         capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert out.returncode == 1, out.stderr
    rows = json.loads(out.stdout)
    assert rows[0]["predictions"] == [] and "too many pixels" in rows[0]["error"]
    assert "Traceback" not in out.stderr


class NanModel:
    """A model with NaN weights: every score is NaN."""

    labels = ("tench", "goldfish", "shark")
    preprocess = Preprocess(64, 56, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

    def prepare(self, img):
        return np.zeros((3, 56, 56), np.float32)

    def logits(self, batch):
        return np.full((len(batch), 3), np.nan, np.float32)


def test_nan_scores_on_a_video_are_an_error_not_a_label(tmp_path):
    clip = make_scene_clip(tmp_path / "c.mp4", ["coffee"], seconds=1.0, fps=6, size=(96, 64))
    rows = list(video.classify_paths([str(clip)], NanModel()))
    assert rows[0]["segments"] == [] and rows[0]["predictions"] == []
    assert "no valid score" in rows[0]["error"]


def test_the_table_shows_a_segment_without_a_score_and_escapes_its_label():
    buf = io.StringIO()
    out = results_io.writer("table", buf, 3, segments=True)
    out.write({"path": "v.mp4", "predictions": [], "error": None,
               "segments": [{"start": 0.0, "end": 1.0, "label": "t\x1b[31mench", "score": float("nan")}]})
    out.close()
    text = buf.getvalue()
    assert "\x1b" not in text and "t\\x1b[31mench (?)" in text


def test_labels_that_clean_to_one_file_name_each_get_their_clip(tmp_path):
    """`c/at` and `c:at` both cleaned to `c_at`: the second clip was lost with a bare FileNotFoundError."""
    from cnndesk.core.predict.clips import clip_names, export_label_clips

    clip = make_scene_clip(tmp_path / "v.mp4", ["coffee", "cat", "coffee"], seconds=1.0, fps=6, size=(96, 64))
    segs = [video.Segment(0.0, 1.0, "c/at", 0.9), video.Segment(1.0, 2.0, "c:at", 0.9), video.Segment(2.0, 3.0, "c/at", 0.9)]
    out = tmp_path / "clips"
    written = export_label_clips(clip, segs, out)
    assert len(written) == 2 and len({p.name for p in written}) == 2 and all(p.stat().st_size > 0 for p in written)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)  # no temporary file left
    import av

    frames = []
    for p in written:
        with av.open(str(p)) as c:
            frames.append(sum(1 for _ in c.decode(video=0)))
    assert frames == [12, 6]  # c/at: 2 s, c:at: 1 s at 6 fps
    names = clip_names(["c/at", "c:at", "Cat", "cat"])
    assert len({n.casefold() for n in names.values()}) == 4 and names["c/at"] == "c_at"
