"""One clip per label goes through the safe writer: symlinks planted at the final name or at the
old fixed temporary name (``.NAME.part.mp4``) are never written through, existing files are never
replaced, and nothing temporary is left behind (after success and after a failure)."""

from __future__ import annotations

import os

import pytest

from cnndesk.core.predict.clips import export_label_clips
from cnndesk.core.predict.video import Segment
from tests.core.videos import make_scene_clip


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_scene_clip(tmp_path_factory.mktemp("v") / "walk.mp4", ["coffee", "rocket"], seconds=1.0,
                           fps=10, size=(96, 64))


SEGMENTS = [Segment(0.0, 1.0, "cup", 0.9), Segment(1.0, 2.0, "rocket", 0.8)]


def _frames(path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_planted_symlinks_are_not_written_through(video, tmp_path):
    out = tmp_path / "clips"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in (".walk_cup.part.mp4", "walk_rocket.mp4", ".walk_rocket.part.mp4"):
        os.symlink(victim, out / name)
    written = export_label_clips(video, SEGMENTS, out)
    assert victim.read_text() == "precious"
    names = sorted(p.name for p in written)
    assert names == ["walk_cup.mp4", "walk_rocket (1).mp4"]
    for p in written:
        assert not p.is_symlink() and p.is_file() and _frames(p) >= 8
    assert all((out / n).is_symlink() for n in (".walk_cup.part.mp4", "walk_rocket.mp4", ".walk_rocket.part.mp4"))
    assert sorted(os.listdir(out)) == sorted([".walk_cup.part.mp4", ".walk_rocket.part.mp4", "walk_rocket.mp4", *names])


def test_colliding_labels_keep_both_clips(video, tmp_path):
    written = export_label_clips(video, [Segment(0.0, 1.0, "c/at", 0.9), Segment(1.0, 2.0, "c:at", 0.8)], tmp_path)
    names = sorted(p.name for p in written)  # distinct names (clip_names gives them up front)
    assert len(set(names)) == 2 and all(n.startswith("walk_c_at") and n.endswith(".mp4") for n in names)
    assert sorted(os.listdir(tmp_path)) == names


def test_a_failure_leaves_no_temporary_file(video, tmp_path, monkeypatch):
    from cnndesk.core.common.errors import Cancelled
    from cnndesk.core.common.progress import CancelToken
    from cnndesk.core.predict import clips as video_clips

    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        video_clips.export_label_clips(video, SEGMENTS, tmp_path / "o", cancel=token)
    assert os.listdir(tmp_path / "o") == []
