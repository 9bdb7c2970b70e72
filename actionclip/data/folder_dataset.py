"""Class folders as a dataset source: ``root/<class name>/<video>`` (the layout of ``datasets``' "videofolder" and of
the synthetic data); `datasets.VideoClassificationDataset.from_folder` reads them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import DatasetFormatError, InvalidLabelsError
from .clip_loader import VideoRecord
from .labels import resolve_label_names
from .video_files import VIDEO_EXTENSIONS


def _folder_key(name: str) -> str:
    return name.replace("_", " ").strip().lower()


def folder_records(
    root: str | os.PathLike, label_names=None, extensions: Sequence[str] = VIDEO_EXTENSIONS
) -> tuple[list[VideoRecord], list[str]]:
    """``(records, class names)`` of the videos in ``root/<class folder>/`` (in subfolders too, files whose suffix is
    in ``extensions``). Class names are ``label_names`` (a list, label file or packaged list, matched to the folders
    with underscores read as spaces, case-insensitively) or else the sorted folder names with spaces for
    underscores.

    Raises:
        DatasetFormatError: ``root`` is not a folder of class folders, or holds no video.
        InvalidLabelsError: a class folder without a class name.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"{str(root)!r} is not a folder of class folders")
    folders = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not folders:
        raise DatasetFormatError(f"{str(root)!r} has no class folders")
    names = resolve_label_names(label_names, [folder.name.replace("_", " ") for folder in folders])
    label_of = {_folder_key(name): i for i, name in enumerate(names)}
    suffixes = {suffix.lower() for suffix in extensions}
    records = []
    for folder in folders:
        label = label_of.get(_folder_key(folder.name))
        if label is None:
            raise InvalidLabelsError(f"class folder {folder.name!r} has no class name in label_names")
        videos = sorted(path for path in folder.rglob("*") if path.suffix.lower() in suffixes and path.is_file())
        records.extend(VideoRecord(str(path), label) for path in videos)
    if not records:
        raise DatasetFormatError(f"no videos with suffixes {sorted(suffixes)} under {str(root)!r}")
    return records, names


__all__ = ["folder_records"]
