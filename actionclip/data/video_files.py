"""Which files are videos: the one list of video file extensions, and finding video files under a folder.

Standard library and `actionclip.errors` only, so the command line can list a folder before torch is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import EmptyVideoFolderError, VideoIndexError

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


def find_video_files(folder: str | os.PathLike) -> list[str]:
    """The video files under ``folder`` (`list_video_files`), as sorted POSIX paths relative to it: what a video
    index (`actionclip.apps.search`, ``actionclip index``) holds.

    Raises:
        VideoIndexError: ``folder`` is not a directory.
        EmptyVideoFolderError: it holds no video file.
    """
    root = Path(folder)
    if not root.is_dir():
        raise VideoIndexError(f"{str(folder)!r} is not a directory")
    found = [video.relative_to(root).as_posix() for video in list_video_files(root)]
    if not found:
        raise EmptyVideoFolderError(
            f"folder {str(folder)!r} holds no video file ({', '.join(sorted(VIDEO_EXTENSIONS))})"
        )
    return sorted(found)


__all__ = ["VIDEO_EXTENSIONS", "find_video_files", "list_video_files"]
