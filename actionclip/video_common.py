"""What every video backend shares: the limits on sizes, the result types, the checks of a read's size options and
indices, and the readers' :meth:`FrameReader.read`.

The backends (:mod:`.video_reader_pyav`, :mod:`.video_reader_torchcodec`, :mod:`.video_frame_folders`) import this
module and nothing of each other; :mod:`.video_io` puts them together behind the public functions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .errors import FrameIndexError, VideoDecodeError

MAX_FRAME_PIXELS = 8192 * 8192
"""Largest frame (width * height, stored or requested) the decoder accepts; larger is refused before decoding."""

MAX_OUTPUT_BYTES = 1 << 32
"""Largest output array (``len(indices) * H * W * 3`` bytes) :func:`.video_io.read_frames` allocates."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds.

    Attributes:
        num_frames: frames in the video (video packets in presentation order, see :mod:`.video_reader_pyav`).
        fps: average frames per second (``num_frames / duration`` when the stream does not say).
        duration: seconds from the first frame shown to the end of the last, ``None`` when unknown.
        width: upright width in pixels (after rotation).
        height: upright height in pixels (after rotation).
        rotation: clockwise degrees (0, 90, 180, 270) the stored frames are turned by to show them upright.
        codec: the decoder's name (``h264``, ``hevc``, ``vp9``, ``libdav1d``, ...).
        frame_count_exact: ``True`` when ``num_frames`` comes from counting packets with usable timestamps,
            ``False`` when it is a packet count of a stream without them, a container's header value or
            ``round(duration * fps)``.
    """

    num_frames: int
    fps: float
    duration: float | None
    width: int
    height: int
    rotation: int
    codec: str
    frame_count_exact: bool


@dataclass
class DecodeStats:
    """What a read cost: packets fed to the decoder, frames it returned, frames it skipped, seeks made.

    A reader counts into one of these as it decodes and hands out copies (:meth:`copy`), so a copy a caller holds
    does not change under it.
    """

    packets_decoded: int = 0
    frames_decoded: int = 0
    packets_skipped: int = 0
    seeks: int = 0
    decode_errors: int = 0

    def copy(self) -> DecodeStats:
        return dataclasses.replace(self)


@dataclass(frozen=True)
class DecodedVideo:
    """Frames chosen by a sampler, with where they came from.

    Attributes:
        frames: uint8 ``indices.shape + (H, W, 3)`` RGB: ``(T, H, W, 3)`` or ``(views, T, H, W, 3)``.
        indices: int64 0-based frame indices the sampler chose, ``(T,)`` or ``(views, T)``.
        info: the video's :class:`VideoInfo`.
        stats: the decoding cost, :class:`DecodeStats`.
    """

    frames: np.ndarray
    indices: np.ndarray
    info: VideoInfo
    stats: DecodeStats = field(default_factory=DecodeStats)


def resized_shape(height: int, width: int, size) -> tuple[int, int]:
    """``(height, width)`` after the video processor's resize to ``size``: a ``{"shortest_edge": n}`` /
    ``{"height": h, "width": w}`` dict or a transformers ``SizeDict``; ``None`` or empty keeps the size.

    A shorter-side target keeps the aspect ratio with the longer side truncated (torchvision's rule, which the
    processor's resize, `video_clips` and the decoders' ``size={"shortest_edge": n}`` all follow).
    """
    if not size:
        return height, width
    get = size.get if isinstance(size, dict) else lambda key: getattr(size, key, None)
    edge = get("shortest_edge")
    if edge:
        short, long = sorted((height, width))
        new_short, new_long = edge, max(1, int(edge * long / short))
        return (new_short, new_long) if height <= width else (new_long, new_short)
    return get("height"), get("width")


class FrameReader:
    """What the readers of an open video share (the PyAV backend's ``VideoReader``, the torchcodec backend's
    ``TorchCodecReader``): :meth:`read`, which checks the indices and size options here, for every backend alike.

    A backend sets ``source`` and ``num_frames`` and implements ``_read(wanted, target)``: the frames at ``wanted``
    (int64 indices, checked, any shape) for ``target``, the size request `check_size_request` returns. Exceptions of
    its decoding library listed in ``_decoder_errors`` become :class:`~actionclip.errors.VideoDecodeError`.
    """

    _decoder_errors: tuple[type[BaseException], ...] = ()

    def read(
        self,
        indices,
        *,
        shorter_side: int | None = None,
        size: tuple[int, int] | dict | None = None,
        max_shorter_side: int | None = None,
    ) -> np.ndarray:
        """Decode the frames at ``indices`` (0-based, any order, repeats allowed).

        Args:
            indices: integer array-like of any shape.
            shorter_side: scale so that the shorter upright side has this many pixels, keeping the aspect ratio
                (the other side rounded to the nearest pixel, pixels assumed square).
            size: ``(height, width)`` of the upright output, or a video processor's resize target
                ``{"shortest_edge": n}`` (the longer side truncated, see `resized_shape`) /
                ``{"height": h, "width": w}``; exclusive with ``shorter_side``.
            max_shorter_side: only frames whose shorter side is longer are scaled, to this shorter side; smaller
                frames keep their size. Exclusive with ``shorter_side`` and ``size``.

        Returns:
            uint8 ``indices.shape + (H, W, 3)`` RGB, upright. Without ``shorter_side``/``size`` frames keep the
            size of the first decoded frame.
        """
        wanted = check_indices(self.source, indices, self.num_frames)
        target = check_size_request(self.source, shorter_side, size, max_shorter_side)
        try:
            return self._read(wanted, target)
        except self._decoder_errors as error:  # the ones not handled where they happen become typed here
            raise VideoDecodeError(self.source, f"decoding failed ({type(error).__name__}: {error})") from None

    def _read(self, wanted: np.ndarray, target) -> np.ndarray:
        raise NotImplementedError


def output_size(target, stored_size, rotation) -> tuple[int, int]:
    """(width, height) of the upright output for a stored frame of ``stored_size`` (width, height); a size not known
    yet (a side of 0: a damaged header, before the first frame is decoded) stays as it is for an aspect-keeping
    target."""
    width, height = stored_size
    if rotation in (90, 270):
        width, height = height, width
    if target is None:
        return width, height
    kind, value = target
    if kind == "size":
        height_out, width_out = value
        return width_out, height_out
    if width <= 0 or height <= 0:
        return width, height
    if kind == "shortest_edge":
        height_out, width_out = resized_shape(height, width, {"shortest_edge": value})
        return width_out, height_out
    if width <= height:
        return value, max(1, int(round(height * value / width)))
    return max(1, int(round(width * value / height))), value


def normalization_constants(mean, std, rescale_factor) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(scale, shift)`` float64 ``(3,)`` with ``(x * rescale_factor - mean) / std == x * scale + shift``;
    ``mean`` / ``std`` None skip the normalisation and ``rescale_factor`` None the rescaling. Computed in float64 and
    rounded once to the arithmetic's dtype by the caller, as the PyTorch (`device_transforms`) and numpy
    (:func:`normalize_frames`) transforms both do."""
    scale = np.full(3, 1.0 if rescale_factor is None else float(rescale_factor), dtype=np.float64)
    shift = np.zeros(3, dtype=np.float64)
    if mean is not None and std is not None:
        std64 = np.asarray(std, dtype=np.float64)
        scale, shift = scale / std64, -np.asarray(mean, dtype=np.float64) / std64
    return scale, shift


def normalize_frames(frames: np.ndarray, mean, std, rescale_factor) -> np.ndarray:
    """uint8 ``(..., T, H, W, 3)`` -> float32 ``(..., T, 3, H, W)`` ``pixel_values`` with numpy: the evaluation
    rescale and normalisation of `device_transforms.normalize_uint8_frames` (same float32 multiply-add), for a
    runtime without torch (the ONNX export run with onnxruntime). The result is a channels-first view of
    channels-last memory."""
    scale, shift = normalization_constants(mean, std, rescale_factor)
    values = frames.astype(np.float32)
    values *= scale.astype(np.float32)
    values += shift.astype(np.float32)
    return np.moveaxis(values, -1, -3)


def check_size_request(source, shorter_side, size, max_shorter_side=None):
    """Check a read's size options; returns the target ``("size", (h, w))``, ``("shortest_edge", n)``,
    ``("shorter_side", n)``, ``("max_shorter_side", n)`` or None (frames as stored). Every backend checks the
    options here.

    ``size`` is ``(height, width)`` or a video processor's resize target: ``{"height": h, "width": w}``, or
    ``{"shortest_edge": n}`` (the shorter side to ``n``, the longer one ``int(n * long / short)``: truncated, as
    the processor and torchvision resize, where ``shorter_side`` rounds)."""
    if sum(value is not None for value in (shorter_side, size, max_shorter_side)) > 1:
        raise VideoDecodeError(source, "pass at most one of shorter_side, size and max_shorter_side")
    if max_shorter_side is not None:
        if (
            isinstance(max_shorter_side, bool)
            or not isinstance(max_shorter_side, (int, np.integer))
            or max_shorter_side < 1
        ):
            raise VideoDecodeError(source, f"max_shorter_side must be a positive integer, got {max_shorter_side!r}")
        return ("max_shorter_side", int(max_shorter_side))
    if shorter_side is not None:
        if isinstance(shorter_side, bool) or not isinstance(shorter_side, (int, np.integer)) or shorter_side < 1:
            raise VideoDecodeError(source, f"shorter_side must be a positive integer, got {shorter_side!r}")
        if shorter_side * shorter_side > MAX_FRAME_PIXELS:
            raise VideoDecodeError(source, f"shorter_side {shorter_side} exceeds the frame limit")
        return ("shorter_side", int(shorter_side))
    if isinstance(size, dict):
        return _check_size_dict(source, size)
    if size is not None:
        try:
            height, width = (int(v) for v in size)
            ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
        except (TypeError, ValueError):
            ok = False
        if not ok or height < 1 or width < 1:
            raise VideoDecodeError(source, f"size must be (height, width) positive integers, got {size!r}")
        if height * width > MAX_FRAME_PIXELS:
            raise VideoDecodeError(source, f"size {height}x{width} exceeds the limit of {MAX_FRAME_PIXELS} pixels")
        return ("size", (height, width))
    return None


def _check_size_dict(source, size: dict):
    """``{"shortest_edge": n}`` or ``{"height": h, "width": w}`` (other keys None or absent) -> a target."""
    given = {key: value for key, value in size.items() if value is not None}
    if set(given) == {"shortest_edge"}:
        edge = given["shortest_edge"]
        if isinstance(edge, bool) or not isinstance(edge, (int, np.integer)) or edge < 1:
            raise VideoDecodeError(source, f"size['shortest_edge'] must be a positive integer, got {edge!r}")
        if edge * edge > MAX_FRAME_PIXELS:
            raise VideoDecodeError(source, f"size['shortest_edge'] {edge} exceeds the frame limit")
        return ("shortest_edge", int(edge))
    if set(given) == {"height", "width"}:
        return check_size_request(source, None, (given["height"], given["width"]))
    raise VideoDecodeError(
        source, f"size must be (height, width), {{'shortest_edge': n}} or {{'height': h, 'width': w}}, got {size!r}"
    )


def fit_target(target, stored_size: tuple[int, int]):
    """Resolve a ``max_shorter_side`` request against a frame size (width, height): a ``shorter_side`` target when
    the frame is larger, else None (frames as stored). The shorter side does not depend on rotation."""
    if target is None or target[0] != "max_shorter_side":
        return target
    return ("shorter_side", target[1]) if min(stored_size) > target[1] else None


def check_indices(source, indices, num_frames: int) -> np.ndarray:
    """``indices`` as an int64 array of the same shape, after checking they are integers in ``[0, num_frames)``.

    Raises:
        FrameIndexError: indices that are not integers, or one out of range (the message names it).
    """
    array = np.asarray(indices)
    if array.dtype == object or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
        raise FrameIndexError(source, f"frame indices must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= num_frames):
        bad = int(array.min()) if array.min() < 0 else int(array.max())
        raise FrameIndexError(source, f"frame index {bad} is out of range for a video of {num_frames} frames")
    return array
