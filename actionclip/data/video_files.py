"""Which files are videos: the one list of video file extensions, and finding video files under a folder.

Standard library only, so the command line can list a folder before torch is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".nut", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv"}
)
"""Lower-case suffixes of the files that folder datasets, `actionclip classify DIR` and `actionclip index` take."""


def list_video_files(folder: str | os.PathLike) -> list[Path]:
    """Every file under ``folder`` (recursively) whose suffix is in `VIDEO_EXTENSIONS`, sorted by path."""
    return sorted(
        Path(root) / name
        for root, _, names in os.walk(folder)
        for name in names
        if Path(name).suffix.lower() in VIDEO_EXTENSIONS
    )


__all__ = ["VIDEO_EXTENSIONS", "list_video_files"]
