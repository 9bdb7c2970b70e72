"""List files as a dataset source: lines ``relative/path.mp4 label_id``, the original ActionCLIP's frame-folder lines
``relative/frame_dir num_frames label_id`` (frames ``img_00001.jpg``, ``img_00002.jpg``, ...), and the official
UCF101 / HMDB51 split files (parsed by :mod:`actionclip.data.splits`). `datasets.VideoClassificationDataset`'s
``from_list_file``, ``from_ucf101_splits`` and ``from_hmdb51_splits`` read them."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetFormatError
from .clip_loader import VideoRecord
from .labels import is_label_id, resolve_label_names
from .splits import DatasetSplit, load_hmdb51_splits, load_ucf101_splits

# Classes named by their ids when a list file comes without class names: larger ids are a mistake, not classes.
MAX_UNNAMED_CLASSES = 100_000


def list_file_records(
    list_file: str | os.PathLike,
    label_names=None,
    root: str | os.PathLike | None = None,
    line_format: str = "auto",
) -> tuple[list[VideoRecord], list[str]]:
    """``(records, class names)`` of a list file. ``line_format``: ``"video"`` (``path label``), ``"frames"`` (``dir
    num_frames label``, the original's frame-folder lists) or ``"auto"`` (a line ending in two integers is a frame
    folder). Paths are relative to ``root`` (default: the list file's folder). Blank lines and ``#`` comments are
    skipped. Without ``label_names`` the classes are named by their ids.

    Raises:
        DatasetFormatError: a missing or empty file, or a malformed line (named ``file:line``).
    """
    if line_format not in ("auto", "video", "frames"):
        raise DatasetFormatError(f"line_format must be 'auto', 'video' or 'frames', got {line_format!r}")
    list_file = Path(list_file)
    if not list_file.is_file():
        raise DatasetFormatError(f"list file {str(list_file)!r} not found")
    root = Path(root) if root is not None else list_file.parent
    records = []
    # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the first path.
    for number, line in enumerate(list_file.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.strip().rsplit(maxsplit=2)  # any whitespace separates: spaces or tabs
        frames_line = len(parts) == 3 and is_label_id(parts[1]) and is_label_id(parts[2])
        if line_format == "frames" or (line_format == "auto" and frames_line):
            if not frames_line:
                raise DatasetFormatError(
                    f"{list_file}:{number}: expected 'frame_dir num_frames label_id', got {line!r}"
                )
            records.append(VideoRecord(str(root / parts[0]), int(parts[2]), True, int(parts[1])))
            continue
        path, label = (line.strip().rsplit(maxsplit=1) + [""])[:2]
        if not path or not is_label_id(label):
            raise DatasetFormatError(
                f"{list_file}:{number}: expected 'relative/path label_id' (a label id is a non-negative "
                f"integer), got {line!r}"
            )
        records.append(VideoRecord(str(root / path), int(label)))
    if not records:
        raise DatasetFormatError(f"list file {str(list_file)!r} has no samples")
    largest = max(record.label for record in records)
    if label_names is None and largest >= MAX_UNNAMED_CLASSES:
        raise DatasetFormatError(
            f"{list_file}: label id {largest} without class names would make {largest + 1} classes (at most "
            f"{MAX_UNNAMED_CLASSES} are named by their ids): pass label_names (--class_names)"
        )
    fallback = None if label_names is not None else [str(i) for i in range(largest + 1)]
    return records, resolve_label_names(label_names, fallback)


def ucf101_split_records(
    split_dir: str | os.PathLike, video_root: str | os.PathLike, split: int = 1, subset: str = "train"
) -> tuple[list[VideoRecord], list[str]]:
    """``(records, class names)`` of UCF101's official split ``split`` (``classInd.txt``, ``trainlist0{k}.txt``,
    ``testlist0{k}.txt`` in ``split_dir``), ``subset`` ``"train"`` or ``"test"``; videos in
    ``video_root/<Class>/v_*.avi``."""
    return _split_records(load_ucf101_splits(split_dir, splits=(split,))[0], video_root, subset)


def hmdb51_split_records(
    split_dir: str | os.PathLike,
    video_root: str | os.PathLike,
    split: int = 1,
    subset: str = "train",
    class_names=None,
) -> tuple[list[VideoRecord], list[str]]:
    """``(records, class names)`` of HMDB51's official split ``split`` (``<class>_test_split{k}.txt`` files in
    ``split_dir``; ``class_names`` as :func:`~actionclip.data.splits.load_hmdb51_splits` takes them), ``subset``
    ``"train"`` or ``"test"``; videos in ``video_root/<class>/<video>.avi``."""
    splits = load_hmdb51_splits(split_dir, splits=(split,), class_names=class_names)
    return _split_records(splits[0], video_root, subset)


def _split_records(
    dataset_split: DatasetSplit, video_root: str | os.PathLike, subset: str
) -> tuple[list[VideoRecord], list[str]]:
    if subset not in ("train", "test"):
        raise DatasetFormatError(f"subset must be 'train' or 'test', got {subset!r}")
    samples = dataset_split.train if subset == "train" else dataset_split.test
    records = [VideoRecord(str(Path(video_root) / path), label) for path, label in samples]
    return records, list(dataset_split.class_names)


__all__ = ["MAX_UNNAMED_CLASSES", "hmdb51_split_records", "list_file_records", "ucf101_split_records"]
