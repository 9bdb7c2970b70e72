"""Kinetics annotation CSVs as a dataset source: rows ``label,youtube_id,time_start,time_end[,split]``; the video of a
row is the file ``{youtube_id}_{time_start:06d}_{time_end:06d}.mp4`` (the name the common download scripts write).
`datasets.VideoClassificationDataset.from_kinetics_csv` reads them."""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

from ..errors import DatasetFormatError, InvalidLabelsError
from .clip_loader import VideoRecord
from .labels import resolve_label_names

logger = logging.getLogger(__name__)


def kinetics_csv_records(
    csv_file: str | os.PathLike,
    video_root: str | os.PathLike,
    label_names=None,
    split: str | None = None,
    extension: str = ".mp4",
) -> tuple[list[VideoRecord], list[str]]:
    """``(records, class names)`` of a Kinetics annotation CSV (header ``label,youtube_id,time_start,time_end[,split]``).

    The video of a row is ``{youtube_id}_{time_start:06d}_{time_end:06d}{extension}`` in ``video_root/<label>/`` or
    ``video_root/``. Class names: ``label_names`` (e.g. ``"kinetics400"``) or the sorted labels of the CSV. Rows of
    another ``split`` and rows whose file is missing are skipped (missing ones are counted in a warning: Kinetics
    downloads always miss some videos).

    Raises:
        DatasetFormatError: a missing file, a wrong header, a time that is not a number, or no video found.
        InvalidLabelsError: a row's label is not among the class names.
    """
    csv_file, video_root = Path(csv_file), Path(video_root)
    if not csv_file.is_file():
        raise DatasetFormatError(f"Kinetics CSV {str(csv_file)!r} not found")
    with open(csv_file, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"label", "youtube_id", "time_start", "time_end"}
    if not rows or not needed <= set(rows[0]):
        raise DatasetFormatError(
            f"{csv_file}: expected the header 'label,youtube_id,time_start,time_end,split', got "
            f"{list(rows[0]) if rows else 'no rows'}"
        )
    if split is not None:
        rows = [row for row in rows if row.get("split") == split]
    names = resolve_label_names(label_names, sorted({row["label"] for row in rows}))
    label_of = {name: i for i, name in enumerate(names)}
    records, missing = [], 0
    for number, row in enumerate(rows, start=2):
        if row["label"] not in label_of:
            raise InvalidLabelsError(f"{csv_file}:{number}: label {row['label']!r} is not in the class names")
        try:
            name = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
        except ValueError:
            raise DatasetFormatError(f"{csv_file}:{number}: time_start/time_end must be numbers") from None
        for candidate in (video_root / row["label"] / f"{name}{extension}", video_root / f"{name}{extension}"):
            if candidate.is_file():
                records.append(VideoRecord(str(candidate), label_of[row["label"]]))
                break
        else:
            missing += 1
    if missing:
        logger.warning("%d of %d videos of %s are missing under %s; skipped", missing, len(rows), csv_file, video_root)
    if not records:
        raise DatasetFormatError(f"none of the {len(rows)} videos of {csv_file} was found under {video_root}")
    return records, names


__all__ = ["kinetics_csv_records"]
