"""Which files are videos (and audio, which gets a clear no), by name: shared by the folder stream
and the video classifier, below both."""

from __future__ import annotations

import os

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"})
AUDIO_EXTENSIONS = frozenset({".mp3", ".wav", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma"})


def is_video_path(path) -> bool:
    base = os.path.basename(os.fspath(path))
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in VIDEO_EXTENSIONS


def is_media_path(path) -> bool:
    """Video or audio by extension: these go to :func:`classify_video` (audio gets a clear no)."""
    return is_video_path(path) or os.path.splitext(os.fspath(path))[1].lower() in AUDIO_EXTENSIONS
