"""Bytes to frames: the public functions, and the one table that chooses a decoding backend.

Decoding returns ``numpy.ndarray`` uint8 ``(T, H, W, 3)`` RGB frames, upright (rotation metadata applied). The
work is done by one module per concern, all flat in ``actionclip/`` (remote code copies sibling modules):

- :mod:`.video_reader_pyav`: :class:`VideoReader`, the PyAV reader and its seek planner (the default backend; how
  frames are found, what replaces frames that do not decode, time limits);
- :mod:`.video_reader_torchcodec`: :class:`~.video_reader_torchcodec.TorchCodecReader` (``backend="torchcodec"``,
  optional);
- :mod:`.video_frame_folders`: :func:`read_frame_folder`, one image per frame;
- :mod:`.video_common`: what they share (:class:`VideoInfo`, :class:`DecodeStats`, :class:`DecodedVideo`, the size
  limits and the checks of the size options).

Writing test videos moved to :mod:`actionclip.data.video_writer`; ``actionclip.video_io.write_video`` still works for
one release and warns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from .errors import (
    FrameIndexError,
    PartialDecodeWarning,
    VideoDecodeError,
    VideoTimeoutError,
    VideoTooLargeError,
    VideoWriteError,
)
from .video_common import MAX_FRAME_PIXELS, MAX_OUTPUT_BYTES, DecodedVideo, DecodeStats, VideoInfo
from .video_frame_folders import read_frame_folder
from .video_reader_pyav import VideoReader, check_hwaccel
from .video_reader_torchcodec import TorchCodecReader

BACKENDS: dict[str, type] = {"pyav": VideoReader, "torchcodec": TorchCodecReader}
"""Backend name -> reader class, the one place a backend is chosen. A reader is opened as
``cls(source, threads=..., timeout=..., hwaccel=...)``, is a context manager, and has ``num_frames``, ``info``,
``stats`` and ``read(indices, *, shorter_side=None, size=None, max_shorter_side=None)``."""


def open_reader(
    source, *, backend: str = "pyav", threads: int = 1, timeout: float | None = 30.0, hwaccel: str | None = None
):
    """Open ``source`` with the reader of ``backend`` (a key of :data:`BACKENDS`), decoding on the ``hwaccel``
    device type when given (PyAV: ``"cuda"`` for NVDEC; see `VideoReader`).

    Raises:
        VideoDecodeError: an unknown backend, or the reader's own errors on opening.
    """
    reader_class = BACKENDS.get(backend) if isinstance(backend, str) else None
    if reader_class is None:
        known = " or ".join(repr(name) for name in BACKENDS)
        raise VideoDecodeError(source, f"unknown backend {backend!r}; use {known}")
    return reader_class(source, threads=threads, timeout=timeout, hwaccel=hwaccel)


def is_video_source(item) -> bool:
    """A video still to decode: a path, a URL, bytes or a binary file object (not frames)."""
    return isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(item, "read")


def undecoded_video_source(item):
    """The video source in a ``datasets.Video(decode=False)`` value, ``{"bytes": ..., "path": ...}``: its bytes when
    it holds them (the path of a file inside an archive, or a relative one, need not exist here), else its path;
    ``None`` when ``item`` is not such a value or holds neither."""
    if not isinstance(item, dict) or not item or not set(item) <= {"bytes", "path"}:
        return None
    return item.get("bytes") or item.get("path") or None


def probe_video(source, *, timeout: float | None = 30.0) -> VideoInfo:
    """What a video holds, without decoding more than its first frame.

    Counts frames by demuxing the packets (see :mod:`.video_reader_pyav`) and decodes the first frame for the
    rotation and the real frame size.

    Raises:
        VideoDecodeError: missing/empty/unreadable source, no video stream, unsupported codec, absurd size,
            no decodable frame. VideoTimeoutError when it takes longer than ``timeout`` seconds.
    """
    with VideoReader(source, timeout=timeout) as reader:  # probing is PyAV's: it needs no frame but the first
        return reader.info


def read_frames(
    source,
    indices: Sequence[int],
    *,
    shorter_side: int | None = None,
    size: tuple[int, int] | None = None,
    max_shorter_side: int | None = None,
    threads: int = 1,
    backend: str = "pyav",
    timeout: float | None = 30.0,
    hwaccel: str | None = None,
) -> np.ndarray:
    """Decode the frames at 0-based ``indices`` (any order, repeats allowed) of a video.

    Args:
        source: path, http(s) URL, bytes or binary file object.
        indices: integer array-like; the output follows its shape and order.
        shorter_side: scale the shorter upright side to this many pixels, keeping the aspect ratio (bicubic).
        size: ``(height, width)`` of the output, or the video processor's ``{"shortest_edge": n}`` (the longer side
            truncated) / ``{"height": h, "width": w}``; exclusive with ``shorter_side``.
        max_shorter_side: scale only frames whose shorter side is longer than this, to this shorter side (in the
            same libswscale call that converts to RGB, so a huge frame never exists as RGB); smaller frames keep
            their size. Exclusive with ``shorter_side`` and ``size``.
        threads: decoder threads (1 = none, 0 = FFmpeg decides).
        backend: ``"pyav"`` or ``"torchcodec"`` (when installed; not a dependency of this package). torchcodec
            returns the same frames at the same indices; it resizes with torch (bicubic, antialiased, from RGB)
            where PyAV scales the stored planes with libswscale, so resized frames differ slightly. It does not replace
            undecodable frames and does not take ``timeout``.
        timeout: seconds for opening plus decoding, ``None`` for no limit (PyAV backend).
        hwaccel: ``None`` (CPU) or an FFmpeg device type to decode on (PyAV backend; see :func:`open_reader`).

    Returns:
        uint8 ``(len(indices), H, W, 3)`` RGB (generally ``indices.shape + (H, W, 3)``), upright.

    Raises:
        VideoDecodeError (FrameIndexError for bad indices), VideoTimeoutError.
    """
    with open_reader(source, backend=backend, threads=threads, timeout=timeout, hwaccel=hwaccel) as reader:
        return reader.read(indices, shorter_side=shorter_side, size=size, max_shorter_side=max_shorter_side)


def sample_and_read(source, sampler: Callable, *, rng=None, **read_kwargs) -> DecodedVideo:
    """Open a video, let ``sampler(num_frames, rng)`` choose indices, decode them.

    Args:
        source: path, http(s) URL, bytes or binary file object.
        sampler: callable ``(num_video_frames, rng) -> int array`` of 0-based indices, ``(T,)`` or ``(views, T)``
            (the samplers of :mod:`actionclip.sampling`).
        rng: passed to the sampler (``numpy.random.Generator`` or ``None``).
        read_kwargs: ``shorter_side``, ``size``, ``max_shorter_side``, ``threads``, ``timeout``, ``backend`` (as
            :func:`read_frames`), ``hwaccel`` (as :func:`open_reader`).

    Returns:
        :class:`DecodedVideo` with ``frames`` of shape ``indices.shape + (H, W, 3)``; each distinct index is
        decoded once. With ``backend="torchcodec"`` the frame count and ``info`` come from torchcodec's metadata
        and ``stats`` is empty.
    """
    opening = {"threads", "timeout", "backend", "hwaccel"}
    unknown = set(read_kwargs) - {"shorter_side", "size", "max_shorter_side"} - opening
    if unknown:
        raise VideoDecodeError(source, f"unknown read options {sorted(unknown)}")
    open_kwargs = {name: read_kwargs.pop(name) for name in opening & set(read_kwargs)}
    with open_reader(source, **open_kwargs) as reader:
        indices = np.asarray(sampler(reader.num_frames, rng))
        frames = reader.read(indices, **read_kwargs)
        return DecodedVideo(frames=frames, indices=indices.astype(np.int64), info=reader.info, stats=reader.stats)


__all__ = [
    "BACKENDS",
    "MAX_FRAME_PIXELS",
    "MAX_OUTPUT_BYTES",
    "DecodeStats",
    "DecodedVideo",
    "FrameIndexError",
    "PartialDecodeWarning",
    "TorchCodecReader",
    "VideoDecodeError",
    "VideoInfo",
    "VideoReader",
    "VideoTimeoutError",
    "VideoTooLargeError",
    "VideoWriteError",
    "check_hwaccel",
    "is_video_source",
    "open_reader",
    "probe_video",
    "read_frame_folder",
    "read_frames",
    "sample_and_read",
    "undecoded_video_source",
]
