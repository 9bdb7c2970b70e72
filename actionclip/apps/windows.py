"""Windows on one time grid, the frames they hold, and their video embeddings, shared by localisation, search and
streaming (`actionclip.apps.localization`, `actionclip.apps.search`, `actionclip.apps.streaming`).

Windows of ``window`` seconds slide over the video every ``stride`` seconds. Every window holds ``T`` frames
(the model's ``num_frames``) on one time grid of step ``window / T`` seconds: grid cell ``k`` is the frame shown at
``(k + 1/2) * step`` seconds, and a window starting at cell ``s`` holds cells ``s .. s + T - 1``. Because windows
share grid cells, each distinct frame is decoded once, and:

- with a post-network prompt (meanP, conv1d, lstm, transf, transf_cls), frames do not see each other before the
  fusion, so the vision tower runs once per distinct frame (`ActionCLIPModel.get_frame_features`) and only the
  small fusion runs per window, on the cached frame embeddings;
- with the Shift (in-network) or Joint (pre-network) prompt, a frame's embedding depends on the other frames of
  its clip, so every window is encoded whole (`get_video_features`), from frames decoded once and kept only while
  later windows still need them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvalidWindowError, PipelineArgumentError, VideoDecodeError, positive_number
from ..video_io import VideoReader, is_video_source

FRAME_BATCH_SIZE = 32
"""Frames decoded, pre-processed and embedded together (bounds the memory of the cached-frame path)."""

WINDOW_BATCH_SIZE = 8
"""Windows encoded together by the per-window path (Shift, Joint)."""


def positive_seconds(value, name: str) -> float:
    """``value`` as a finite positive float of seconds; otherwise `InvalidWindowError` naming ``name``."""
    return positive_number(value, name, InvalidWindowError, unit="seconds")


@dataclass(frozen=True)
class WindowGrid:
    """Where the windows lie and which video frames they hold.

    Attributes:
        duration: seconds of video.
        num_video_frames: frames in the video.
        window: seconds per window.
        stride: seconds between window starts, as used (a whole number of grid steps).
        step: seconds between grid cells, ``window / T``.
        frame_indices: int64 ``(W, T)`` 0-based video frame index of every window's frames.
        starts: float64 ``(W,)`` window start times in seconds.
    """

    duration: float
    num_video_frames: int
    window: float
    stride: float
    step: float
    frame_indices: np.ndarray
    starts: np.ndarray

    @property
    def num_windows(self) -> int:
        return len(self.starts)

    @property
    def distinct_frames(self) -> np.ndarray:
        """Sorted distinct frame indices over all windows, ``(U,)``."""
        return np.unique(self.frame_indices)

    def answer_spans(self) -> np.ndarray:
        """``(W, 2)`` seconds each window answers for: its central ``stride`` seconds, the first from 0 and the
        last to the end of the video."""
        centres = self.starts + self.window / 2
        spans = np.stack([centres - self.stride / 2, centres + self.stride / 2], axis=1)
        spans[0, 0] = 0.0
        spans[-1, 1] = self.duration
        return np.clip(spans, 0.0, self.duration)


def make_window_grid(
    duration: float, num_video_frames: int, window: float, stride: float, num_frames: int
) -> WindowGrid:
    """Lay windows of ``num_frames`` frames on a video (see the module docstring).

    ``stride`` is rounded to a whole number of grid steps (``window / num_frames``), at least one.

    Raises:
        InvalidWindowError: ``window`` or ``stride`` not a positive number, or ``window`` longer than the video.
    """
    window = positive_seconds(window, "window")
    stride = positive_seconds(stride, "stride")
    if not duration or not math.isfinite(duration) or duration <= 0 or num_video_frames < 1:
        raise InvalidWindowError(f"the video has no usable duration ({duration!r} s, {num_video_frames} frames)")
    # Half a frame of slack: a window as long as the whole video must fit despite rounded timestamps.
    if window > duration + 0.5 * duration / num_video_frames:
        raise InvalidWindowError(f"window {window:g} s is longer than the video ({duration:.3f} s)")
    step = window / num_frames
    stride_cells = max(1, int(round(stride / step)))
    span_cells = max(0, math.floor((duration - window) / step + 1e-6))
    window_cells = np.arange(0, span_cells + 1, stride_cells, dtype=np.int64)
    cells = window_cells[:, None] + np.arange(num_frames, dtype=np.int64)[None, :]
    times = (cells + 0.5) * step
    frame_indices = frames_at(times, duration, num_video_frames)
    return WindowGrid(
        duration=float(duration),
        num_video_frames=int(num_video_frames),
        window=window,
        stride=stride_cells * step,
        step=step,
        frame_indices=frame_indices,
        starts=window_cells * step,
    )


def frames_at(times: np.ndarray, duration: float, num_video_frames: int) -> np.ndarray:
    """The 0-based index of the video frame shown at each of ``times`` (seconds, any shape), frames spread evenly
    over ``duration`` seconds; int64, the shape of ``times``, clipped to the video."""
    return np.clip(np.floor(times * num_video_frames / duration).astype(np.int64), 0, num_video_frames - 1)


class FrameSource:
    """Decoded frames by index from a video source (opened once, through `VideoReader`) or a frame array.

    Attributes: ``num_frames``, ``duration`` (seconds), ``name`` (printable), ``read(indices)`` -> uint8 frames.
    """

    def __init__(self, video, fps: float | None, timeout: float):
        self.reader = None
        if is_video_source(video):
            if fps is not None:
                raise PipelineArgumentError("fps= is for decoded frames; a video file carries its own timing")
            self.reader = VideoReader(video, timeout=timeout)
            info = self.reader.info
            self.num_frames = info.num_frames
            self.duration = info.duration or (info.num_frames / info.fps if info.fps and info.fps > 0 else None)
            self.name = str(video) if not isinstance(video, (bytes, bytearray, memoryview)) else "<bytes>"
            return
        if isinstance(video, torch.Tensor):
            video = video.numpy()
        if not (
            isinstance(video, np.ndarray) and video.ndim == 4 and video.shape[-1] == 3 and video.dtype == np.uint8
        ):
            shape = getattr(video, "shape", None)
            raise VideoDecodeError(
                f"<{type(video).__name__}{' of shape ' + str(tuple(shape)) if shape is not None else ''}>",
                "localisation needs a path, URL, bytes, a file object or uint8 frames (T, H, W, 3) with fps=",
            )
        if fps is None:
            raise PipelineArgumentError("decoded frames need fps= (frames per second) to be placed in time")
        fps = positive_seconds(fps, "fps")
        self.frames = video
        self.num_frames = len(video)
        self.duration = len(video) / fps
        self.name = f"<frames {tuple(video.shape)} at {fps:g} fps>"

    def read(self, indices: np.ndarray) -> np.ndarray:
        if self.reader is not None:
            return self.reader.read(indices)
        return self.frames[indices]

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def frame_pixel_values(pipeline, frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(k, H, W, 3)`` frames -> ``(k, C, h, w)`` model inputs, by the pipeline's own processor."""
    pixel_values = pipeline.processor.video_processor([frames], return_tensors="pt")["pixel_values"][0]
    return pixel_values.to(device=pipeline.device, dtype=pipeline.model.dtype)


def cached_window_embeddings(pipeline, read: Callable, grid: WindowGrid, frame_batch_size: int = FRAME_BATCH_SIZE):
    """Video embeddings of every window, the vision tower running once per distinct frame.

    Only for post-network prompts (frames independent until the fusion).

    Returns:
        ``(W, D)`` video embeddings (after fusion, not normalised) and the number of frames embedded.
    """
    model = pipeline.model
    distinct = grid.distinct_frames
    chunks = []
    with torch.no_grad():
        for start in range(0, len(distinct), frame_batch_size):
            indices = distinct[start : start + frame_batch_size]
            chunks.append(model.get_frame_features(frame_pixel_values(pipeline, read(indices))[None])[0])
        frame_embeds = torch.cat(chunks)  # (U, D)
        rows = torch.from_numpy(np.searchsorted(distinct, grid.frame_indices)).to(frame_embeds.device)
        video_embeds = [
            model.fusion(frame_embeds[rows[start : start + 256]]) for start in range(0, grid.num_windows, 256)
        ]
    return torch.cat(video_embeds), len(distinct)


def per_window_embeddings(pipeline, read: Callable, grid: WindowGrid, window_batch_size: int = WINDOW_BATCH_SIZE):
    """Video embeddings of every window, each window encoded whole (any prompt, Shift and Joint included).

    Frames are decoded once and kept only while a later window still needs them.

    Returns:
        ``(W, D)`` video embeddings and the number of frames the vision tower embedded (``W * T``).
    """
    model = pipeline.model
    kept: dict[int, torch.Tensor] = {}
    embeds = []
    with torch.no_grad():
        for start in range(0, grid.num_windows, window_batch_size):
            batch = grid.frame_indices[start : start + window_batch_size]
            missing = np.setdiff1d(np.unique(batch), np.fromiter(kept, dtype=np.int64, count=len(kept)))
            if missing.size:
                kept.update(zip(missing.tolist(), frame_pixel_values(pipeline, read(missing))))
            pixel_values = torch.stack([torch.stack([kept[int(i)] for i in row]) for row in batch])
            embeds.append(model.get_video_features(pixel_values).pooler_output)
            following = grid.frame_indices[start + window_batch_size : start + window_batch_size + 1]
            first_needed = int(following.min()) if following.size else None
            for index in [i for i in kept if first_needed is None or i < first_needed]:
                del kept[index]
    return torch.cat(embeds), grid.frame_indices.size


def window_embeddings(
    pipeline, read: Callable, grid: WindowGrid, cache_frames: bool, frame_batch_size: int = FRAME_BATCH_SIZE
):
    """``(W, D)`` video embeddings of the grid's windows and the frames embedded, by the path ``cache_frames`` names
    (:func:`cached_window_embeddings` or :func:`per_window_embeddings`)."""
    if cache_frames:
        return cached_window_embeddings(pipeline, read, grid, frame_batch_size)
    return per_window_embeddings(pipeline, read, grid)


def uses_cached_frames(config) -> bool:
    """Whether frames stay independent until the fusion (no Shift, no Joint), so their embeddings can be shared."""
    return not (config.shift or config.joint)


def frames_per_window(pipeline, num_frames: int | None = None) -> int:
    """Frames per window (a clip the model sees): ``num_frames``, else the pipeline's processor's, else the model's.
    The one rule for localisation, search and streaming."""
    return num_frames or pipeline.processor.num_frames or pipeline.model.config.num_frames


__all__ = [
    "FRAME_BATCH_SIZE",
    "WINDOW_BATCH_SIZE",
    "FrameSource",
    "WindowGrid",
    "cached_window_embeddings",
    "frame_pixel_values",
    "frames_at",
    "frames_per_window",
    "make_window_grid",
    "per_window_embeddings",
    "positive_seconds",
    "uses_cached_frames",
    "window_embeddings",
]
