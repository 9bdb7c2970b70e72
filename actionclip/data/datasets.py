"""Torch datasets of labelled videos: decoding, frame sampling and the video transform run in ``__getitem__``, so
they run in the DataLoader's worker processes.

Every item is ``{"pixel_values": (T, C, H, W) float32, "labels": int, "sample_seed": int}``; with
``transform_on_device=True`` it holds uint8 ``"frames"`` instead (the evaluation's resized and centre-cropped
``(T, S, S, 3)``, or in training the clip's multi-scale crop ``(T, h, w, 3)`` and its ``"augmentation"``, a
`ClipAugmentation` drawn from the same seeded stream as the CPU augmentation), 4x less to copy between processes,
and `ActionCLIPTrainer` does the float work batched on the model's device. ``sample_seed`` is a
64-bit number derived from ``(seed, epoch, index)``; :class:`~actionclip.data.collator.ActionCLIPCollator` draws
the item's prompt template from it, so the prompts are as reproducible as the frames.

Randomness: each item's frame sampling (TSN train mode), augmentation and prompt are drawn from
``numpy.random.SeedSequence([seed, epoch, index])`` and nothing else: no global RNG, no per-worker state. A run
resumed from a checkpoint, or run with another number of workers, sees exactly the same data. `ActionCLIPTrainer`
calls :meth:`set_epoch` at the start of every epoch, a resumed one included; with persistent DataLoader
workers the workers keep the epoch they started with, so leave ``dataloader_persistent_workers`` off.

Sources (constructors of :class:`VideoClassificationDataset`, or :func:`load_video_dataset` by name):

- ``from_folder``: ``root/<class name>/<video>`` (the layout of ``datasets``' "videofolder"); class names are the
  folder names with underscores read as spaces, or come from a label file;
- ``from_list_file``: lines ``relative/path.mp4 label_id``, or the original ActionCLIP's frame-folder lines
  ``relative/frame_dir num_frames label_id`` with frames ``img_00001.jpg``, ``img_00002.jpg``, ...;
- ``from_ucf101_splits`` / ``from_hmdb51_splits``: the official split files (parsed by :mod:`actionclip.data.splits`);
- ``from_kinetics_csv``: the Kinetics annotation CSVs ``label,youtube_id,time_start,time_end,split``; the video of a
  row is the file ``{youtube_id}_{time_start:06d}_{time_end:06d}.mp4`` (the name the common download scripts
  write), looked up in ``root/<label>/`` and then in ``root/``; rows whose file is missing (videos removed from
  YouTube) are skipped and counted;
- ``from_hf_dataset``: a ``datasets.Dataset`` with a path column or a ``Video(decode=False)`` column (for
  instance ``load_dataset("videofolder", data_dir=...)``); decoding stays ours (no torchcodec needed).

:class:`TarShardVideoDataset` streams WebDataset-style tar shards (``key.mp4`` + ``key.cls`` members) with the
standard library's ``tarfile``, for data that does not fit one disk; shards are split between DataLoader workers
(and, optionally, between distributed processes).

Unreadable samples: with ``skip_bad_samples=True`` a sample that fails to decode (a corrupt file, a decode that
runs past ``timeout`` seconds, a missing frame) is logged, counted and replaced by another sample chosen
deterministically from ``(seed, epoch, index, attempt)``; past ``max_bad_samples`` in one process (each DataLoader
worker counts its own) it raises :class:`~actionclip.errors.TooManyBadSamplesError`. Without it the
:class:`~actionclip.errors.VideoDecodeError` propagates. Decoding has a timeout, so a worker never hangs on a file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..errors import (
    DatasetFormatError,
    InvalidLabelsError,
    MissingProcessorError,
    SamplingError,
    TooManyBadSamplesError,
    VideoDecodeError,
    VideoTooLargeError,
)
from .labels import is_label_id
from .video_files import VIDEO_EXTENSIONS

logger = logging.getLogger(__name__)

FRAME_TEMPLATE = "img_{:05d}.jpg"
# Frames per clip when neither num_frames nor a processor is given (the paper's 8-frame models).
DEFAULT_NUM_FRAMES = 8
DATASET_FORMATS: tuple[str, ...] = ("folder", "list", "ucf101", "hmdb51", "kinetics_csv", "tar", "hf")

# Classes named by their ids when a list file comes without class names: larger ids are a mistake, not classes.
MAX_UNNAMED_CLASSES = 100_000


@dataclass(frozen=True)
class VideoRecord:
    """One labelled sample of a map-style dataset.

    ``source`` is a video file path (or bytes), or the folder of a frame-folder sample (``frame_count`` frames
    named by the dataset's ``frame_template``; ``frame_count=None`` counts them on first use).
    """

    source: str | bytes
    label: int
    is_frame_folder: bool = False
    frame_count: int | None = None


def sample_seed_sequence(seed: int, epoch: int, index: int, attempt: int = 0) -> np.random.SeedSequence:
    """The root of every random draw of one item: frames, augmentation and prompt."""
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index), int(attempt)])


def _label_names(label_names, fallback: Sequence[str] | None = None) -> list[str]:
    """A list of class names from a list, a packaged list name or a label file (``id,name`` CSV or TXT)."""
    if label_names is None:
        if fallback is None:
            raise InvalidLabelsError("no class names: pass label_names (a list, a label file or a packaged list)")
        names = list(fallback)
    elif isinstance(label_names, (str, os.PathLike)):
        from .labels import load_label_names

        names = load_label_names(label_names)
    else:
        names = [str(name) for name in label_names]
    if not names:
        raise InvalidLabelsError("the list of class names is empty")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidLabelsError(f"duplicate class names {duplicates}")
    return names


def _folder_key(name: str) -> str:
    return name.replace("_", " ").strip().lower()


def _load_processor(processor):
    """``processor`` as an `ActionCLIPProcessor`: one as it is, or the one saved in a model folder (or Hub id).

    Raises:
        MissingProcessorError: the folder holds no processor.
    """
    from ..processing_actionclip import ActionCLIPProcessor

    if not isinstance(processor, (str, os.PathLike)):
        if type(processor).__name__ != "ActionCLIPProcessor":
            raise DatasetFormatError(
                f"processor must be an ActionCLIPProcessor or a model folder holding one, got {type(processor).__name__}"
            )
        return processor
    try:
        return ActionCLIPProcessor.from_pretrained(str(processor))
    except (OSError, ValueError) as error:
        raise MissingProcessorError(
            f"no ActionCLIPProcessor could be loaded from {str(processor)!r} ({error}): save one beside the model with "
            "ActionCLIPProcessor.from_model_config(model.config).save_pretrained(folder)"
        ) from None


class _ClipLoader:
    """Decoding + sampling + transform of one sample, shared by the map-style and the streaming datasets."""

    def __init__(
        self,
        num_frames: int | None,
        training: bool,
        video_processor,
        image_size: int,
        timeout: float | None,
        frame_template: str,
        frame_start_index: int,
        transform_on_device: bool = False,
        processor=None,
    ):
        from ..sampling import TSNSampler
        from ..video_clips import ClipSpec
        from ..video_processing_actionclip import ActionCLIPVideoProcessor

        # The model's processor, when given, decides the frame size, the transform and the frame count: a dataset
        # built for a model then gives that model's inputs without repeating its settings.
        if processor is not None:
            processor = _load_processor(processor)
            video_processor = video_processor or processor.video_processor
            if num_frames is None:
                num_frames = processor.num_frames
        if num_frames is None:
            num_frames = DEFAULT_NUM_FRAMES
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
            raise DatasetFormatError(f"num_frames must be a positive integer, got {num_frames!r}")
        self.num_frames = num_frames
        self.training = bool(training)
        self.sampler = TSNSampler(num_frames, mode="train" if training else "eval")
        self.video_processor = video_processor or ActionCLIPVideoProcessor(crop_size=image_size)
        self.clip_spec = ClipSpec(
            num_frames=num_frames,
            mode=self.sampler.mode,
            max_shorter_side=getattr(self.video_processor, "decode_max_shorter_side", None),
            timeout=timeout,
            frame_template=frame_template,
            frame_start_index=frame_start_index,
        )
        self.timeout = timeout
        self.frame_template = frame_template
        self.frame_start_index = frame_start_index
        self.transform_on_device = bool(transform_on_device)

    def load(self, record: VideoRecord, seed_sequence: np.random.SeedSequence) -> tuple[dict, int]:
        """``(clip fields, sample_seed)`` of ``record``, drawn from ``seed_sequence``: ``{"pixel_values": (T, C, H,
        W)}``, or with ``transform_on_device`` ``{"frames": uint8 (T, h, w, 3)}`` plus, in training, the clip's
        ``"augmentation"`` (`ClipAugmentation`; ``frames`` is then its multi-scale crop)."""
        from ..video_clips import FrameFolder, read_clip
        from ..video_decode_pool import keep_freed_memory

        if get_worker_info() is not None:
            # A DataLoader worker decodes clip after clip: it keeps the memory it frees (once per process; the main
            # process is the user's, and keeps its own settings).
            keep_freed_memory()
        sampling_seq, augmentation_seq, prompt_seq = seed_sequence.spawn(3)
        rng = np.random.default_rng(sampling_seq)
        source = record.source
        if record.is_frame_folder:
            source = FrameFolder(str(source), int(record.frame_count or self._count_frames(source)))
        # The engine in this process (a DataLoader worker runs it in parallel with the others): decoded frames at
        # their stored size (capped), for the augmentation below.
        frames = read_clip(source, self.clip_spec, rng)[0]
        generator = torch.Generator().manual_seed(int(augmentation_seq.generate_state(1, np.uint64)[0] >> 1))
        sample_seed = int(prompt_seq.generate_state(1, np.uint64)[0] >> 1)
        if not self.transform_on_device:
            pixel_values = self.video_processor(frames, training=self.training, generator=generator)["pixel_values"]
            return {"pixel_values": pixel_values[0]}, sample_seed
        # uint8 to the collator; the float work runs on the device (ActionCLIPTrainer), from the same draws.
        if self.training:
            crop, augmentation = self.video_processor.crop_for_augmentation(frames, generator)
            return {"frames": crop, "augmentation": augmentation}, sample_seed
        return {"frames": self.video_processor.evaluation_frames(frames)}, sample_seed

    def _count_frames(self, folder) -> int:
        pattern = re.sub(r"\{[^}]*\}", "*", self.frame_template)
        count = sum(1 for _ in Path(folder).glob(pattern))
        if count == 0:
            raise VideoDecodeError(folder, f"no frame files matching {pattern!r}")
        return count


class _BadSampleCounter:
    """Logs and counts unreadable samples; raises past the limit."""

    def __init__(self, skip: bool, limit: int | None):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise DatasetFormatError(f"max_bad_samples must be an integer >= 0 or None, got {limit!r}")
        self.skip = bool(skip)
        self.limit = limit
        self.bad_samples: list[tuple[object, str]] = []

    def record(self, where, error: Exception) -> None:
        reason = getattr(error, "reason", None) or str(error)
        self.bad_samples.append((where, reason))
        logger.warning("skipping unreadable sample %s: %s", where, reason)
        if self.limit is not None and len(self.bad_samples) > self.limit:
            shown = "; ".join(f"{w}: {r}" for w, r in self.bad_samples[-3:])
            raise TooManyBadSamplesError(
                f"{len(self.bad_samples)} unreadable samples in this process, more than max_bad_samples="
                f"{self.limit} (last ones: {shown}). Fix or remove these files, or raise max_bad_samples."
            )


# Errors that make a sample unreadable (and skippable); anything else is a bug and propagates.
def _unreadable_errors() -> tuple[type[BaseException], ...]:
    return (VideoDecodeError, SamplingError)


class _ClipDatasetState:
    """What both datasets expose about their clip loader, epoch and bad samples (they set ``loader``, ``epoch`` and
    ``bad`` in ``__init__``)."""

    loader: _ClipLoader
    epoch: int
    bad: _BadSampleCounter

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random draws (the Trainer calls this at the start of every epoch)."""
        self.epoch = int(epoch)

    @property
    def num_frames(self) -> int:
        return self.loader.num_frames

    @property
    def training(self) -> bool:
        return self.loader.training

    @property
    def video_processor(self):
        """The `ActionCLIPVideoProcessor` of the clips (the device-side transform uses its options)."""
        return self.loader.video_processor

    @property
    def bad_samples(self) -> list[tuple[object, str]]:
        """``(where, reason)`` of the samples this process could not read (``where`` names the record, or the shard
        and member)."""
        return list(self.bad.bad_samples)


class VideoClassificationDataset(_ClipDatasetState, Dataset):
    """Labelled videos (files or frame folders) as a map-style torch dataset.

    Args:
        records: the samples (see :class:`VideoRecord`); the constructors below build them.
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
        skip_bad_samples, max_bad_samples: see the module docstring.
        transform_on_device: hand over uint8 frames (and the augmentation's parameters) instead of pixel values
            (see the module docstring).
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
        self.label_names = _label_names(label_names)
        if not self.records:
            raise DatasetFormatError("the dataset has no samples")
        bad = [record.label for record in self.records if not 0 <= record.label < len(self.label_names)]
        if bad:
            raise InvalidLabelsError(
                f"label ids {sorted(set(bad))[:10]} are outside [0, {len(self.label_names)}): the class names and "
                "the samples do not match"
            )
        self.loader = _ClipLoader(
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
        self.bad = _BadSampleCounter(skip_bad_samples, max_bad_samples)

    # ------------------------------------------------------------------ torch Dataset

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not 0 <= index < len(self.records):
            raise IndexError(f"index {index} is outside the dataset of {len(self.records)} samples")
        unreadable = _unreadable_errors()
        record_index = index
        for attempt in range(len(self.records) + 1):
            record = self.records[record_index]
            try:
                fields, sample_seed = self.loader.load(
                    record, sample_seed_sequence(self.seed, self.epoch, index, attempt)
                )
            except unreadable as error:
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

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_folder(
        cls,
        root: str | os.PathLike,
        label_names=None,
        *,
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        **kwargs,
    ) -> VideoClassificationDataset:
        """Videos in ``root/<class folder>/``; class names are ``label_names`` (matched to the folders with
        underscores read as spaces, case-insensitively) or else the sorted folder names with spaces for
        underscores."""
        root = Path(root)
        if not root.is_dir():
            raise DatasetFormatError(f"{str(root)!r} is not a folder of class folders")
        folders = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
        if not folders:
            raise DatasetFormatError(f"{str(root)!r} has no class folders")
        names = _label_names(label_names, [folder.name.replace("_", " ") for folder in folders])
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
        return cls(records, names, **kwargs)

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
        """Samples from a list file. ``line_format``: ``"video"`` (``path label``), ``"frames"`` (``dir
        num_frames label``, the original's frame-folder lists) or ``"auto"`` (a line ending in two integers is a
        frame folder). Paths are relative to ``root`` (default: the list file's folder). Without ``label_names``
        the classes are named by their ids."""
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
        return cls(records, _label_names(label_names, fallback), **kwargs)

    @classmethod
    def from_ucf101_splits(
        cls, split_dir, video_root, *, split: int = 1, subset: str = "train", **kwargs
    ) -> VideoClassificationDataset:
        """UCF101's official split ``split`` (``classInd.txt``, ``trainlist0{k}.txt``, ``testlist0{k}.txt`` in
        ``split_dir``); videos in ``video_root/<Class>/v_*.avi``."""
        from .splits import load_ucf101_splits

        return cls._from_dataset_split(load_ucf101_splits(split_dir, splits=(split,))[0], video_root, subset, kwargs)

    @classmethod
    def from_hmdb51_splits(
        cls, split_dir, video_root, *, split: int = 1, subset: str = "train", class_names=None, **kwargs
    ) -> VideoClassificationDataset:
        """HMDB51's official split ``split`` (``<class>_test_split{k}.txt`` files in ``split_dir``); videos in
        ``video_root/<class>/<video>.avi``."""
        from .splits import load_hmdb51_splits

        splits = load_hmdb51_splits(split_dir, splits=(split,), class_names=class_names)
        return cls._from_dataset_split(splits[0], video_root, subset, kwargs)

    @classmethod
    def _from_dataset_split(cls, dataset_split, video_root, subset: str, kwargs) -> VideoClassificationDataset:
        if subset not in ("train", "test"):
            raise DatasetFormatError(f"subset must be 'train' or 'test', got {subset!r}")
        samples = dataset_split.train if subset == "train" else dataset_split.test
        records = [VideoRecord(str(Path(video_root) / path), label) for path, label in samples]
        return cls(records, list(dataset_split.class_names), **kwargs)

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
        """A Kinetics annotation CSV (header ``label,youtube_id,time_start,time_end[,split]``).

        The video of a row is ``{youtube_id}_{time_start:06d}_{time_end:06d}{extension}`` in
        ``video_root/<label>/`` or ``video_root/``. Class names: ``label_names`` (e.g. ``"kinetics400"``) or the
        sorted labels of the CSV. Rows of another ``split`` and rows whose file is missing are skipped (missing
        ones are counted in a warning: Kinetics downloads always miss some videos).
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
        names = _label_names(label_names, sorted({row["label"] for row in rows}))
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
            logger.warning(
                "%d of %d videos of %s are missing under %s; skipped", missing, len(rows), csv_file, video_root
            )
        if not records:
            raise DatasetFormatError(f"none of the {len(rows)} videos of {csv_file} was found under {video_root}")
        return cls(records, names, **kwargs)

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
        """A ``datasets.Dataset`` whose ``video_column`` holds paths or ``Video(decode=False)`` dicts
        (``{"path", "bytes"}``) and whose ``label_column`` holds class ids. Class names: ``label_names``, else
        the column's ``ClassLabel`` names. Relative paths are resolved against ``root``. A ``Video()`` column is
        read undecoded and decoded by this package's readers (``datasets`` would need torchcodec). Pass the
        model's ``processor`` (or its folder) for items of that model's size and frame count."""
        from datasets import Video

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
        return cls(records, _label_names(label_names, fallback), **kwargs)


def _describe(source) -> str:
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    return str(source)


# ----------------------------------------------------------------------------------------------------------------
# WebDataset-style tar shards


def write_tar_shards(
    samples: Iterable[tuple[str | os.PathLike, int]],
    output_pattern: str,
    samples_per_shard: int = 1000,
) -> list[Path]:
    """Pack ``(video path, label id)`` pairs into tar shards readable by :class:`TarShardVideoDataset`.

    ``output_pattern`` holds one ``{}`` (or a format such as ``{:06d}``) for the shard number, e.g.
    ``"shards/train-{:06d}.tar"``. Sample ``i`` is stored as ``{i:09d}.<suffix>`` plus ``{i:09d}.cls`` (the label).
    """
    if samples_per_shard < 1:
        raise DatasetFormatError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
    shards: list[Path] = []
    archive = None
    for i, (path, label) in enumerate(samples):
        if i % samples_per_shard == 0:
            if archive is not None:
                archive.close()
            shard = Path(output_pattern.format(len(shards)))
            shard.parent.mkdir(parents=True, exist_ok=True)
            shards.append(shard)
            archive = tarfile.open(shard, "w")
        key = f"{i:09d}"
        archive.add(str(path), arcname=f"{key}{Path(path).suffix.lower()}")
        data = str(int(label)).encode()
        info = tarfile.TarInfo(f"{key}.cls")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    if archive is not None:
        archive.close()
    if not shards:
        raise DatasetFormatError("no samples to write")
    return shards


def _expand_shards(shards) -> list[str]:
    """Shard paths from a list, a glob pattern, or a brace range ``train-{000000..000009}.tar``."""
    if isinstance(shards, (str, os.PathLike)):
        text = str(shards)
        match = re.search(r"\{(\d+)\.\.(\d+)\}", text)
        if match:
            first, last = match.groups()
            width = len(first)
            return [
                text[: match.start()] + str(n).zfill(width) + text[match.end() :]
                for n in range(int(first), int(last) + 1)
            ]
        if any(char in text for char in "*?["):
            import glob

            found = sorted(glob.glob(text))
            if not found:
                raise DatasetFormatError(f"no tar shards match {text!r}")
            return found
        return [text]
    return [str(shard) for shard in shards]


MAX_TAR_MEMBER_BYTES = 1 << 30
"""Largest tar member (declared size) read into memory; larger ones make their sample unreadable, unread."""


class _OversizedMember:
    """Stands in for a tar member whose declared size is over the limit (its data is skipped, never read)."""

    def __init__(self, name: str, size: int):
        self.name = name
        self.size = size


def _iter_tar_samples(
    shard: str, max_member_bytes: int = MAX_TAR_MEMBER_BYTES
) -> Iterator[tuple[str, dict[str, bytes | _OversizedMember]]]:
    """``(key, {extension: bytes})`` of consecutive members sharing a key (the name up to the first dot). A member
    declaring more than ``max_member_bytes`` (a sparse or crafted member) is not read: `_OversizedMember`."""
    key, fields = None, {}
    try:
        shard_size = os.path.getsize(shard)
        with tarfile.open(shard, mode="r|*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                directory, _, base = member.name.rpartition("/")
                stem, dot, extension = base.partition(".")
                if not dot:
                    continue
                member_key = f"{directory}/{stem}" if directory else stem
                if member_key != key:
                    if key is not None:
                        yield key, fields
                    key, fields = member_key, {}
                if member.size > max_member_bytes:
                    if not member.issparse() and member.offset_data + member.size > shard_size:
                        # Skipping it would mean reading to a position past the end, block by block.
                        raise VideoDecodeError(
                            shard,
                            f"tar member {member.name!r} declares {member.size} bytes, past the end of the "
                            f"{shard_size}-byte shard (truncated or crafted)",
                        )
                    fields[extension.lower()] = _OversizedMember(member.name, member.size)
                    continue
                fields[extension.lower()] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError) as error:
        raise VideoDecodeError(shard, f"unreadable tar shard ({error})") from None
    if key is not None:
        yield key, fields


class TarShardVideoDataset(_ClipDatasetState, IterableDataset):
    """Labelled videos streamed from WebDataset-style tar shards.

    A sample is the group of consecutive members sharing a key: a video (``mp4``, ``avi``, ``mkv``, ``webm``,
    ``mov``) and its label as ``cls`` (the label id as text) or ``json`` (``{"label": id}``).

    Args:
        shards: a list of tar paths, a glob pattern or a brace range (``train-{000000..000099}.tar``).
        label_names: class names in label-id order (list, label file or packaged list name).
        shuffle: in training, visit the shards in an order drawn from ``(seed, epoch)`` and shuffle samples in
            a buffer of ``shuffle_buffer`` (seeded by ``(seed, epoch, worker)``).
        split_by_rank: also split the shards between distributed processes. Leave it off under the Trainer:
            accelerate reads an iterable dataset in the main process and dispatches the batches.
        other arguments: as :class:`VideoClassificationDataset`.

    Each item's randomness comes from ``(seed, epoch, shard number, position in the shard)``, so the data does
    not depend on the number of workers (except for the order when ``shuffle_buffer > 1``).
    """

    def __init__(
        self,
        shards,
        label_names,
        *,
        num_frames: int | None = None,
        training: bool = False,
        processor=None,
        video_processor=None,
        image_size: int = 224,
        seed: int = 0,
        shuffle: bool = True,
        shuffle_buffer: int = 0,
        split_by_rank: bool = False,
        timeout: float | None = 30.0,
        skip_bad_samples: bool = False,
        max_bad_samples: int | None = 100,
        transform_on_device: bool = False,
    ):
        self.shards = _expand_shards(shards)
        if not self.shards:
            raise DatasetFormatError("no tar shards given")
        self.label_names = _label_names(label_names)
        self.loader = _ClipLoader(
            num_frames,
            training,
            video_processor,
            image_size,
            timeout,
            FRAME_TEMPLATE,
            1,
            transform_on_device,
            processor,
        )
        self.seed = int(seed)
        self.epoch = 0
        self.shuffle = shuffle
        self.shuffle_buffer = int(shuffle_buffer)
        self.split_by_rank = split_by_rank
        self.bad = _BadSampleCounter(skip_bad_samples, max_bad_samples)

    def _my_shards(self) -> list[tuple[int, str]]:
        order = list(range(len(self.shards)))
        if self.loader.training and self.shuffle:
            np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch]).shuffle(order)
        assigned = [(number, self.shards[number]) for number in order]
        if self.split_by_rank and torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
            assigned = assigned[rank::world]
        worker = get_worker_info()
        if worker is not None:
            assigned = assigned[worker.id :: worker.num_workers]
        return assigned

    def _samples(self) -> Iterator[dict]:
        unreadable = _unreadable_errors()
        for shard_number, shard in self._my_shards():
            try:
                for position, (key, fields) in enumerate(_iter_tar_samples(shard)):
                    where = f"{shard}:{key}"
                    try:
                        record = self._record(fields, where)
                        fields, sample_seed = self.loader.load(
                            record, sample_seed_sequence(self.seed, self.epoch, shard_number, position)
                        )
                    except unreadable as error:
                        if not self.bad.skip:
                            raise
                        self.bad.record(where, error)
                        continue
                    yield {**fields, "labels": record.label, "sample_seed": sample_seed}
            except unreadable as error:
                # A shard that cannot be read at all (truncated, not a tar).
                if not self.bad.skip:
                    raise
                self.bad.record(shard, error)

    def _record(self, fields: dict[str, bytes], where: str) -> VideoRecord:
        for value in fields.values():
            if isinstance(value, _OversizedMember):
                raise VideoTooLargeError(
                    where,
                    f"tar member {value.name!r} declares {value.size} bytes, more than the limit of "
                    f"{MAX_TAR_MEMBER_BYTES}; not read",
                )
        video = next((fields[ext] for ext in ("mp4", "avi", "mkv", "webm", "mov", "m4v") if ext in fields), None)
        if video is None:
            raise VideoDecodeError(where, f"no video member (members: {sorted(fields)})")
        if "cls" in fields:
            text = fields["cls"].decode("utf-8", "replace").strip()
        elif "json" in fields:
            try:
                text = str(json.loads(fields["json"])["label"])
            except (ValueError, KeyError, TypeError):
                raise DatasetFormatError(f"{where}: the json member has no 'label'") from None
        else:
            raise DatasetFormatError(f"{where}: no label member ('cls' or 'json')")
        if not is_label_id(text) or not 0 <= int(text) < len(self.label_names):
            raise InvalidLabelsError(f"{where}: label {text!r} is not a class id in [0, {len(self.label_names)})")
        return VideoRecord(video, int(text))

    def __iter__(self) -> Iterator[dict]:
        if self.shuffle_buffer <= 1 or not self.loader.training:
            yield from self._samples()
            return
        worker = get_worker_info()
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch, worker.id if worker else 0])
        buffer: list[dict] = []
        for item in self._samples():
            if len(buffer) < self.shuffle_buffer:
                buffer.append(item)
                continue
            slot = int(rng.integers(len(buffer)))
            yield buffer[slot]
            buffer[slot] = item
        rng.shuffle(buffer)
        yield from buffer


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
        import datasets

        if Path(path, "dataset_info.json").is_file() or Path(path, "state.json").is_file():
            hf_dataset = datasets.load_from_disk(str(path))
        else:
            hf_dataset = datasets.load_dataset("videofolder", data_dir=str(path), split="train")
        return VideoClassificationDataset.from_hf_dataset(hf_dataset, label_names, **kwargs)
    raise DatasetFormatError(f"unknown dataset format {dataset_format!r}; known: {', '.join(DATASET_FORMATS)}")


__all__ = [
    "DATASET_FORMATS",
    "FRAME_TEMPLATE",
    "VIDEO_EXTENSIONS",
    "DatasetFormatError",
    "TarShardVideoDataset",
    "VideoClassificationDataset",
    "VideoRecord",
    "load_video_dataset",
    "sample_seed_sequence",
    "write_tar_shards",
]
