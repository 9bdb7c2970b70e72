"""The torchcodec backend (``backend="torchcodec"``): frames by index through torchcodec's exact-seek decoder.

torchcodec is not a dependency of this package; it is imported when a reader is opened, and a missing or broken
install is a :class:`~actionclip.errors.VideoDecodeError` that says so. It returns the same frames at the same
indices as the PyAV backend (:mod:`.video_reader_pyav`); it resizes with torch (bicubic, antialiased, from RGB) where
PyAV scales in one libswscale step, so resized frames differ slightly. It does not replace undecodable frames and
takes no time limit.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import VideoDecodeError, VideoTooLargeError
from .video_common import (
    MAX_FRAME_PIXELS,
    DecodeStats,
    FrameReader,
    VideoInfo,
    fit_target,
    output_size,
)


class TorchCodecReader(FrameReader):
    """An open video read with torchcodec; the same interface as :class:`~.video_reader_pyav.VideoReader`.

    Args:
        source: a path, an http(s) URL, bytes, or a binary file object.
        threads: FFmpeg decoder threads (0: FFmpeg picks).
        timeout: accepted for the common interface and ignored: torchcodec takes no time limit.
        hwaccel: accepted for the common interface; only ``None`` (hardware decoding is the PyAV backend's).
    """

    def __init__(self, source, *, threads: int = 1, timeout: float | None = None, hwaccel: str | None = None):
        if hwaccel is not None:
            raise VideoDecodeError(source, f"the torchcodec backend takes no hwaccel (got {hwaccel!r}); use 'pyav'")
        self.source = source
        self._decoder, self.info = _open_torchcodec(source, threads)

    @property
    def num_frames(self) -> int:
        return self.info.num_frames

    @property
    def stats(self) -> DecodeStats:
        """Always empty: torchcodec does not say what a read cost."""
        return DecodeStats()

    def _read(self, wanted: np.ndarray, target) -> np.ndarray:
        target = fit_target(target, (self.info.width, self.info.height))
        return _read_torchcodec(self._decoder, self.info, self.source, wanted, target)

    def close(self) -> None:
        self._decoder = None

    def __enter__(self) -> TorchCodecReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _open_torchcodec(source, threads: int):
    """torchcodec's exact-seek decoder for ``source`` and the :class:`VideoInfo` its metadata gives.

    ``seek_mode="exact"`` scans the whole file once, so frame ``i`` is the ``i``-th frame shown, as in the PyAV
    backend, and the frame count is exact.
    """
    try:
        from torchcodec.decoders import VideoDecoder as TorchCodecDecoder
    except Exception as error:  # ImportError, or OSError/RuntimeError when its FFmpeg libraries are missing
        raise VideoDecodeError(
            source,
            f"backend 'torchcodec' was asked for but torchcodec cannot be imported here "
            f"({type(error).__name__}: {error}); install it (`pip install torchcodec`) or use backend='pyav'",
        ) from None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise VideoDecodeError(source, f"threads must be a non-negative integer, got {threads!r}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise VideoDecodeError(source, "the data is empty (0 bytes)")
        source_arg = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        source_arg = os.fspath(source)
    elif hasattr(source, "read"):
        source_arg = source
    else:
        raise VideoDecodeError(
            source, f"expected a path, an http(s) URL, bytes or a binary file object, got {type(source).__name__}"
        )
    try:
        decoder = TorchCodecDecoder(source_arg, seek_mode="exact", num_ffmpeg_threads=threads, dimension_order="NHWC")
        metadata = decoder.metadata
    except Exception as error:  # torchcodec raises RuntimeError/ValueError for anything FFmpeg refuses
        raise VideoDecodeError(source, f"torchcodec cannot open it ({type(error).__name__}: {error})") from None
    num_frames = int(metadata.num_frames or 0)
    if num_frames < 1:
        raise VideoDecodeError(source, "the video stream has no frames (no video packets)")
    width, height = int(metadata.width or 0), int(metadata.height or 0)
    if width * height > MAX_FRAME_PIXELS:
        raise VideoTooLargeError(source, f"frame size {width}x{height} exceeds the limit of {MAX_FRAME_PIXELS} pixels")
    rotation = int(round(-metadata.rotation)) % 360 if metadata.rotation else 0  # torchcodec: counter-clockwise
    info = VideoInfo(
        num_frames=num_frames,
        fps=float(metadata.average_fps) if metadata.average_fps else float("nan"),
        duration=float(metadata.duration_seconds) if metadata.duration_seconds is not None else None,
        width=width,  # torchcodec reports, and returns, frames already turned upright
        height=height,
        rotation=rotation if rotation % 90 == 0 else 0,
        codec=str(metadata.codec),
        frame_count_exact=True,
    )
    return decoder, info


def _read_torchcodec(decoder, info: VideoInfo, source, wanted: np.ndarray, target) -> np.ndarray:
    """Frames at ``wanted`` (checked int64 indices) from an open torchcodec decoder; resizing is done by torch
    (bicubic, antialiased)."""
    import torch

    flat = wanted.reshape(-1)
    if flat.size == 0:  # torchcodec refuses an empty index list
        width, height = output_size(target, (info.width, info.height), 0)
        return np.empty((*wanted.shape, height, width, 3), dtype=np.uint8)
    try:
        frames = decoder.get_frames_at(flat.tolist()).data
    except Exception as error:
        raise VideoDecodeError(source, f"torchcodec failed to decode ({type(error).__name__}: {error})") from None
    if target is not None:
        height, width = frames.shape[1:3]
        width_out, height_out = output_size(target, (width, height), 0)
        if (width_out, height_out) != (width, height):
            resized = torch.nn.functional.interpolate(
                frames.permute(0, 3, 1, 2).float(), size=(height_out, width_out), mode="bicubic", antialias=True
            )
            frames = resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return frames.contiguous().numpy().reshape(*wanted.shape, *frames.shape[1:])
