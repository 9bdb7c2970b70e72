"""What every dataset of labelled videos shares: one sample (a `VideoRecord`, or a tar shard's members) becomes one
item, decoded, sampled and transformed in ``__getitem__`` / ``__iter__``, so in the DataLoader's worker processes.

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
calls :meth:`ClipDatasetState.set_epoch` at the start of every epoch, a resumed one included; with persistent
DataLoader workers the workers keep the epoch they started with, so leave ``dataloader_persistent_workers`` off.

Unreadable samples: with ``skip_bad_samples=True`` a sample that fails to decode (a corrupt file, a decode that
runs past ``timeout`` seconds, a missing frame) is logged, counted (`BadSampleCounter`) and replaced by another
sample chosen deterministically from ``(seed, epoch, index, attempt)``; past ``max_bad_samples`` in one process
(each DataLoader worker counts its own) it raises :class:`~actionclip.errors.TooManyBadSamplesError`. Without it
the :class:`~actionclip.errors.VideoDecodeError` propagates. Decoding has a timeout, so a worker never hangs on a
file.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import get_worker_info

from ..errors import (
    DatasetFormatError,
    MissingProcessorError,
    SamplingError,
    TooManyBadSamplesError,
    VideoDecodeError,
)

logger = logging.getLogger(__name__)

FRAME_TEMPLATE = "img_{:05d}.jpg"
# Frames per clip when neither num_frames nor a processor is given (the paper's 8-frame models).
DEFAULT_NUM_FRAMES = 8


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


class ClipLoader:
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


class BadSampleCounter:
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
UNREADABLE_ERRORS: tuple[type[BaseException], ...] = (VideoDecodeError, SamplingError)


class ClipDatasetState:
    """What the map-style and the streaming dataset (`datasets.VideoClassificationDataset`,
    `tar_shards.TarShardVideoDataset`) expose about their clip loader, epoch and bad samples (they set ``loader``,
    ``epoch`` and ``bad`` in ``__init__``)."""

    loader: ClipLoader
    epoch: int
    bad: BadSampleCounter

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


__all__ = [
    "DEFAULT_NUM_FRAMES",
    "FRAME_TEMPLATE",
    "UNREADABLE_ERRORS",
    "BadSampleCounter",
    "ClipDatasetState",
    "ClipLoader",
    "VideoRecord",
    "sample_seed_sequence",
]
