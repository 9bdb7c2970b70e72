"""Torch datasets of labelled videos, by source: the map-style :class:`VideoClassificationDataset` (one constructor per
source) and :func:`load_video_dataset`, a dataset by format name (the training script's ``--dataset_format``).

Items, seeds, device-side transforms and unreadable samples are the same for every source:
:mod:`actionclip.data.clip_loader` describes them. Sources, each read by its own module into records:

- ``from_folder``: ``root/<class name>/<video>`` (the layout of ``datasets``' "videofolder"); class names are the
  folder names with underscores read as spaces, or come from a label file (:mod:`~actionclip.data.folder_dataset`);
- ``from_list_file``: lines ``relative/path.mp4 label_id``, or the original ActionCLIP's frame-folder lines
  ``relative/frame_dir num_frames label_id`` with frames ``img_00001.jpg``, ``img_00002.jpg``, ...;
  ``from_ucf101_splits`` / ``from_hmdb51_splits``: the official split files (:mod:`~actionclip.data.list_dataset`);
- ``from_kinetics_csv``: the Kinetics annotation CSVs ``label,youtube_id,time_start,time_end,split``; the video of a
  row is the file ``{youtube_id}_{time_start:06d}_{time_end:06d}.mp4`` (the name the common download scripts
  write), looked up in ``root/<label>/`` and then in ``root/``; rows whose file is missing (videos removed from
  YouTube) are skipped and counted (:mod:`~actionclip.data.kinetics_csv`);
- ``from_hf_dataset``: a ``datasets.Dataset`` with a path column or a ``Video(decode=False)`` column (for
  instance ``load_dataset("videofolder", data_dir=...)``); decoding stays ours (no torchcodec needed)
  (:mod:`~actionclip.data.hf_table`);
- WebDataset-style tar shards (``key.mp4`` + ``key.cls`` members), streamed by
  :class:`~actionclip.data.tar_shards.TarShardVideoDataset` (:mod:`~actionclip.data.tar_shards`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset

from ..errors import DatasetFormatError, InvalidLabelsError, TooManyBadSamplesError
from .clip_loader import (
    FRAME_TEMPLATE,
    UNREADABLE_ERRORS,
    BadSampleCounter,
    ClipDatasetState,
    ClipLoader,
    VideoRecord,
    sample_seed_sequence,
)
from .folder_dataset import folder_records
from .hf_table import hf_table_records, load_hf_table
from .kinetics_csv import kinetics_csv_records
from .labels import resolve_label_names
from .list_dataset import hmdb51_split_records, list_file_records, ucf101_split_records
from .tar_shards import TarShardVideoDataset
from .video_files import VIDEO_EXTENSIONS

DATASET_FORMATS: tuple[str, ...] = ("folder", "list", "ucf101", "hmdb51", "kinetics_csv", "tar", "hf")


class VideoClassificationDataset(ClipDatasetState, Dataset):
    """Labelled videos (files or frame folders) as a map-style torch dataset.

    Args:
        records: the samples (see :class:`~actionclip.data.clip_loader.VideoRecord`); the constructors below build them.
        label_names: class names in label-id order (``labels`` index them).
        num_frames: frames per clip (TSN segments); default the processor's, else 8.
        training: random TSN sampling and the training augmentation; otherwise the deterministic evaluation
            sampling (segment centres) and transform (resize + centre crop).
        processor: the model's `ActionCLIPProcessor`, or the folder (or Hub id) of a model saved with one: items
            then have that model's frame size, transform and (unless ``num_frames`` is given) frame count.
        video_processor: an :class:`~actionclip.video_processing_actionclip.ActionCLIPVideoProcessor`; defaults to
            the processor's, else one for ``image_size`` pixels (224, the size of the paper's models).
        seed: the seed of sampling, augmentation and prompts (with the epoch and the index).
        timeout: seconds allowed to open and decode one video (``None``: no limit).
        skip_bad_samples, max_bad_samples: see :mod:`actionclip.data.clip_loader`.
        transform_on_device: hand over uint8 frames (and the augmentation's parameters) instead of pixel values
            (see :mod:`actionclip.data.clip_loader`).
        frame_template, frame_start_index: file names of frame-folder samples (frame ``i``, 0-based, is
            ``frame_template.format(i + frame_start_index)``).
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        label_names: Sequence[str],
        *,
        num_frames: int | None = None,
        training: bool = False,
        processor=None,
        video_processor=None,
        image_size: int = 224,
        seed: int = 0,
        timeout: float | None = 30.0,
        skip_bad_samples: bool = False,
        max_bad_samples: int | None = 100,
        frame_template: str = FRAME_TEMPLATE,
        frame_start_index: int = 1,
        transform_on_device: bool = False,
    ):
        self.records = list(records)
        self.label_names = resolve_label_names(label_names)
        if not self.records:
            raise DatasetFormatError("the dataset has no samples")
        bad = [record.label for record in self.records if not 0 <= record.label < len(self.label_names)]
        if bad:
            raise InvalidLabelsError(
                f"label ids {sorted(set(bad))[:10]} are outside [0, {len(self.label_names)}): the class names and "
                "the samples do not match"
            )
        self.loader = ClipLoader(
            num_frames,
            training,
            video_processor,
            image_size,
            timeout,
            frame_template,
            frame_start_index,
            transform_on_device,
            processor,
        )
        self.seed = int(seed)
        self.epoch = 0
        self.bad = BadSampleCounter(skip_bad_samples, max_bad_samples)

    # ------------------------------------------------------------------ torch Dataset

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not 0 <= index < len(self.records):
            raise IndexError(f"index {index} is outside the dataset of {len(self.records)} samples")
        record_index = index
        for attempt in range(len(self.records) + 1):
            record = self.records[record_index]
            try:
                fields, sample_seed = self.loader.load(
                    record, sample_seed_sequence(self.seed, self.epoch, index, attempt)
                )
            except UNREADABLE_ERRORS as error:
                if not self.bad.skip:
                    raise
                self.bad.record(f"#{record_index} {_describe(record.source)}", error)
                replacement = np.random.default_rng(sample_seed_sequence(self.seed, self.epoch, index, attempt + 1))
                record_index = int(replacement.integers(len(self.records)))
                continue
            return {**fields, "labels": record.label, "sample_seed": sample_seed}
        raise TooManyBadSamplesError(
            f"no readable sample found for index {index} after {len(self.records) + 1} attempts; "
            "the dataset seems to hold no readable video"
        )

    # ------------------------------------------------------------------ constructors, one per source

    @classmethod
    def from_folder(
        cls,
        root: str | os.PathLike,
        label_names=None,
        *,
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        **kwargs,
    ) -> VideoClassificationDataset:
        """Videos in ``root/<class folder>/`` (`folder_dataset.folder_records`); ``kwargs`` go to the dataset."""
        return cls(*folder_records(root, label_names, extensions), **kwargs)

    @classmethod
    def from_list_file(
        cls,
        list_file: str | os.PathLike,
        label_names=None,
        *,
        root: str | os.PathLike | None = None,
        line_format: str = "auto",
        **kwargs,
    ) -> VideoClassificationDataset:
        """Samples from a list file of video or frame-folder lines (`list_dataset.list_file_records`); ``kwargs`` go
        to the dataset."""
        return cls(*list_file_records(list_file, label_names, root, line_format), **kwargs)

    @classmethod
    def from_ucf101_splits(
        cls, split_dir, video_root, *, split: int = 1, subset: str = "train", **kwargs
    ) -> VideoClassificationDataset:
        """UCF101's official split ``split`` (`list_dataset.ucf101_split_records`); ``kwargs`` go to the dataset."""
        return cls(*ucf101_split_records(split_dir, video_root, split, subset), **kwargs)

    @classmethod
    def from_hmdb51_splits(
        cls, split_dir, video_root, *, split: int = 1, subset: str = "train", class_names=None, **kwargs
    ) -> VideoClassificationDataset:
        """HMDB51's official split ``split`` (`list_dataset.hmdb51_split_records`); ``kwargs`` go to the dataset."""
        return cls(*hmdb51_split_records(split_dir, video_root, split, subset, class_names), **kwargs)

    @classmethod
    def from_kinetics_csv(
        cls,
        csv_file: str | os.PathLike,
        video_root: str | os.PathLike,
        label_names=None,
        *,
        split: str | None = None,
        extension: str = ".mp4",
        **kwargs,
    ) -> VideoClassificationDataset:
        """A Kinetics annotation CSV, rows whose video is missing skipped (`kinetics_csv.kinetics_csv_records`);
        ``kwargs`` go to the dataset."""
        return cls(*kinetics_csv_records(csv_file, video_root, label_names, split, extension), **kwargs)

    @classmethod
    def from_hf_dataset(
        cls,
        hf_dataset,
        label_names=None,
        *,
        video_column: str = "video",
        label_column: str = "label",
        root: str | os.PathLike | None = None,
        **kwargs,
    ) -> VideoClassificationDataset:
        """A ``datasets.Dataset`` with a path or ``Video(decode=False)`` column and a class-id column
        (`hf_table.hf_table_records`). Pass the model's ``processor`` (or its folder) for items of that model's size
        and frame count; ``kwargs`` go to the dataset."""
        return cls(*hf_table_records(hf_dataset, label_names, video_column, label_column, root), **kwargs)


def _describe(source) -> str:
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    return str(source)


# ----------------------------------------------------------------------------------------------------------------
# By name (the training script's --dataset_format)


def load_video_dataset(
    dataset_format: str,
    path: str | os.PathLike,
    *,
    label_names=None,
    video_root: str | os.PathLike | None = None,
    split: int = 1,
    subset: str = "train",
    **kwargs,
):
    """A dataset by format name: ``folder`` (path: the class-folder root), ``list`` (a list file, video or frame
    lines), ``ucf101`` / ``hmdb51`` (path: the split-file folder; ``video_root``, ``split``, ``subset``),
    ``kinetics_csv`` (path: the CSV; ``video_root``), ``tar`` (path: shards pattern), ``hf`` (path: a folder for
    ``datasets``' "videofolder", or a saved ``datasets.Dataset``). ``kwargs`` go to the dataset."""
    if dataset_format == "folder":
        return VideoClassificationDataset.from_folder(path, label_names, **kwargs)
    if dataset_format == "list":
        return VideoClassificationDataset.from_list_file(path, label_names, root=video_root, **kwargs)
    if dataset_format in ("ucf101", "hmdb51"):
        if video_root is None:
            raise DatasetFormatError(f"the {dataset_format} format needs video_root (the folder of class folders)")
        if dataset_format == "ucf101":
            return VideoClassificationDataset.from_ucf101_splits(
                path, video_root, split=split, subset=subset, **kwargs
            )
        return VideoClassificationDataset.from_hmdb51_splits(
            path, video_root, split=split, subset=subset, class_names=label_names, **kwargs
        )
    if dataset_format == "kinetics_csv":
        if video_root is None:
            raise DatasetFormatError("the kinetics_csv format needs video_root (where the clips are)")
        return VideoClassificationDataset.from_kinetics_csv(path, video_root, label_names, **kwargs)
    if dataset_format == "tar":
        if label_names is None:
            raise DatasetFormatError("the tar format needs label_names (a label file or a packaged list)")
        kwargs.pop("frame_template", None)
        kwargs.pop("frame_start_index", None)
        return TarShardVideoDataset(path, label_names, **kwargs)
    if dataset_format == "hf":
        return VideoClassificationDataset.from_hf_dataset(load_hf_table(path), label_names, **kwargs)
    raise DatasetFormatError(f"unknown dataset format {dataset_format!r}; known: {', '.join(DATASET_FORMATS)}")


__all__ = ["DATASET_FORMATS", "VideoClassificationDataset", "load_video_dataset"]
