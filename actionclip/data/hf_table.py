"""Hugging Face ``datasets`` tables as a dataset source: a ``datasets.Dataset`` with a path column or a
``Video(decode=False)`` column (for instance ``load_dataset("videofolder", data_dir=...)``). Decoding stays this
package's (``datasets`` would need torchcodec). `datasets.VideoClassificationDataset.from_hf_dataset` and the
``hf`` format of `datasets.load_video_dataset` read them; ``datasets`` is imported only here, on use."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetFormatError
from .clip_loader import VideoRecord
from .labels import resolve_label_names


def load_hf_table(path: str | os.PathLike):
    """The ``datasets.Dataset`` at ``path``: one saved with ``save_to_disk``, else the ``"train"`` split of the
    folder read as ``datasets``' "videofolder" (class folders)."""
    import datasets

    if Path(path, "dataset_info.json").is_file() or Path(path, "state.json").is_file():
        return datasets.load_from_disk(str(path))
    return datasets.load_dataset("videofolder", data_dir=str(path), split="train")


def hf_table_records(
    hf_dataset,
    label_names=None,
    video_column: str = "video",
    label_column: str = "label",
    root: str | os.PathLike | None = None,
) -> tuple[list[VideoRecord], list[str]]:
    """``(records, class names)`` of a ``datasets.Dataset`` whose ``video_column`` holds paths or
    ``Video(decode=False)`` dicts (``{"path", "bytes"}``) and whose ``label_column`` holds class ids. Class names:
    ``label_names``, else the column's ``ClassLabel`` names, else the ids. Relative paths are resolved against
    ``root``. A ``Video()`` column is read undecoded.

    Raises:
        DatasetFormatError: a missing column, or a row with neither a path nor bytes.
    """
    from datasets import Video

    # video_io imports PyAV: importing this module stays cheap (the factory imports it).
    from ..video_io import undecoded_video_source

    missing = [column for column in (video_column, label_column) if column not in hf_dataset.column_names]
    if missing:
        raise DatasetFormatError(f"the dataset has no column {missing}; its columns: {hf_dataset.column_names}")
    if isinstance(hf_dataset.features[video_column], Video) and hf_dataset.features[video_column].decode:
        hf_dataset = hf_dataset.cast_column(video_column, Video(decode=False))
    feature = hf_dataset.features[label_column]
    fallback = list(feature.names) if hasattr(feature, "names") else None
    columns = hf_dataset.select_columns([video_column, label_column])
    records = []
    for row in columns:
        value = row[video_column]
        if isinstance(value, dict):
            value = undecoded_video_source(value)
        if value is None:
            raise DatasetFormatError(f"a row of column {video_column!r} has neither a path nor bytes")
        if isinstance(value, str) and root is not None and not os.path.isabs(value):
            value = str(Path(root) / value)
        records.append(VideoRecord(value, int(row[label_column])))
    if fallback is None and label_names is None:
        fallback = [str(i) for i in range(max(record.label for record in records) + 1)]
    return records, resolve_label_names(label_names, fallback)


__all__ = ["hf_table_records", "load_hf_table"]
