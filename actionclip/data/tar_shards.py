"""WebDataset-style tar shards as a dataset source: :func:`write_tar_shards` packs videos and labels, and
:class:`TarShardVideoDataset` streams them with the standard library's ``tarfile``, for data that does not fit one
disk. Shards are split between DataLoader workers (and, optionally, between distributed processes). Items, seeds
and bad samples are as :mod:`actionclip.data.clip_loader` describes.
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..errors import DatasetFormatError, InvalidLabelsError, VideoDecodeError, VideoTooLargeError
from .clip_loader import (
    FRAME_TEMPLATE,
    UNREADABLE_ERRORS,
    BadSampleCounter,
    ClipDatasetState,
    ClipLoader,
    VideoRecord,
    sample_seed_sequence,
)
from .labels import is_label_id, resolve_label_names


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


class TarShardVideoDataset(ClipDatasetState, IterableDataset):
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
        self.label_names = resolve_label_names(label_names)
        self.loader = ClipLoader(
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
        self.bad = BadSampleCounter(skip_bad_samples, max_bad_samples)

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
        for shard_number, shard in self._my_shards():
            try:
                for position, (key, fields) in enumerate(_iter_tar_samples(shard)):
                    where = f"{shard}:{key}"
                    try:
                        record = self._record(fields, where)
                        fields, sample_seed = self.loader.load(
                            record, sample_seed_sequence(self.seed, self.epoch, shard_number, position)
                        )
                    except UNREADABLE_ERRORS as error:
                        if not self.bad.skip:
                            raise
                        self.bad.record(where, error)
                        continue
                    yield {**fields, "labels": record.label, "sample_seed": sample_seed}
            except UNREADABLE_ERRORS as error:
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


__all__ = ["MAX_TAR_MEMBER_BYTES", "TarShardVideoDataset", "write_tar_shards"]
