"""Frames to bytes: encode RGB frames into a real video file, for tests, benchmarks and the synthetic dataset.

Decoding is :mod:`actionclip.video_io`'s; this writer is what makes the videos it is tested on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import nullcontext, suppress
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import VideoWriteError
from ..files import replaced_when_done

_CONTAINER_BY_SUFFIX = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".ts": "mpegts",
    ".nut": "nut",
}

# Encoders that refuse odd widths/heights when chroma is subsampled (x264/x265 need whole chroma samples).
_EVEN_SIZE_ENCODERS = {"libx264", "libx265", "h264", "hevc", "libopenh264"}
_SUBSAMPLED_FORMATS = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "nv12", "nv21", "yuv420p10le", "yuv422p10le"}

# libx265 (the build in PyAV's wheels) corrupts the heap and aborts the process on narrower frames.
_X265_MIN_WIDTH = 64

# Keep the encoder libraries quiet: their banners go straight to stderr otherwise.
_QUIET_OPTIONS = {"libx265": {"x265-params": "log-level=error:scenecut=0:open-gop=0"}}


def _encoder_name(codec: str) -> str:
    try:
        return av.Codec(codec, "w").name
    except Exception as error:  # av raises UnknownCodecError, a plain ValueError subclass
        raise VideoWriteError(f"codec {codec!r} has no encoder in this PyAV build ({error})") from None


def _check_frame(frame, index: int) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise VideoWriteError(f"frame {index} must be uint8 (H, W, 3) RGB, got {frame.dtype} {frame.shape}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise VideoWriteError(f"frame {index} is empty: {frame.shape}")
    return frame


def _pad_to_even(frame: np.ndarray) -> np.ndarray:
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frame


def write_video(
    destination,
    frames,
    *,
    fps: float = 25.0,
    codec: str = "libx264",
    gop_size: int = 12,
    pix_fmt: str = "yuv420p",
    container: str | None = None,
    rotation: int = 0,
    timestamps: Sequence[float] | None = None,
    bit_rate: int | None = None,
    options: dict | None = None,
) -> None:
    """Encode RGB frames into a video file.

    Args:
        destination: a path (the container is taken from its suffix: ``.mp4``, ``.mkv``, ``.webm``, ``.avi``,
            ``.mov``, ``.ts``, ``.nut``) or a writable binary file object (then ``container`` is required, an
            FFmpeg format name such as ``"mp4"``, ``"matroska"``, ``"webm"``).
        frames: uint8 ``(T, H, W, 3)`` RGB array, or an iterable of uint8 ``(H, W, 3)`` frames of one size.
        fps: frame rate in frames per second (used for the time base when ``timestamps`` is ``None``).
        codec: encoder name (``libx264``, ``libx265``/``hevc``, ``libvpx-vp9``, ``libsvtav1``, ``mpeg4``,
            ``mjpeg``, ``ffv1``, ...).
        gop_size: frames between keyframes (a keyframe every ``gop_size`` frames; scene-cut keyframes off for
            x264/x265 so the spacing is exact).
        pix_fmt: the encoded pixel format.
        container: FFmpeg format name; overrides the suffix.
        rotation: clockwise degrees (0, 90, 180, 270) a player must rotate the stored frames by to show them
            upright, the convention of the ``rotate`` tag phones write. Stored as a display matrix. The frames
            are stored as given; :func:`actionclip.video_io.read_frames` returns them rotated by this angle.
        timestamps: presentation time of each frame in seconds, strictly increasing (variable frame rate).
            Times are rounded to 1/90000 s.
        bit_rate: target bit rate in bits per second (encoder default when ``None``).
        options: extra encoder options (FFmpeg ``AVOptions``), e.g. ``{"crf": "18"}``.

    Odd sizes: x264 and x265 cannot encode an odd width or height with chroma subsampling (``yuv420p``,
    ``yuv422p``, ...); for them each frame is padded to the next even size by repeating its last column and/or
    row, so the decoded video is ``(H + H % 2, W + W % 2)``. Every other encoder keeps the exact size.

    libx265 aborts the whole process on frames narrower than 64 pixels, so those are refused.

    What repeats: every write of the same frames with the same settings gives all the frames, at their size and
    times, each within the codec's loss of its source. What need not: the bytes of a lossy codec's file. Within
    one FFmpeg build and machine they are usually the same from write to write, but three libx264 writes of the
    same small frames in one long-lived process gave files of different lengths on one machine, so nothing should
    compare the encoded bytes.

    Raises:
        VideoWriteError: bad frames (dtype, shape, sizes differ, none), bad timestamps, unknown codec or
            container, bad rotation, frames too narrow for libx265, or the encoder refused the settings.
    """
    encoder = _encoder_name(codec)
    if rotation % 90 != 0:
        raise VideoWriteError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    if not fps or fps <= 0 or not np.isfinite(fps):
        raise VideoWriteError(f"fps must be a positive number, got {fps}")
    if gop_size < 1:
        raise VideoWriteError(f"gop_size must be >= 1, got {gop_size}")

    if isinstance(destination, (str, os.PathLike)):
        path = Path(destination)
        if container is None:
            container = _CONTAINER_BY_SUFFIX.get(path.suffix.lower())
            if container is None:
                raise VideoWriteError(
                    f"cannot tell the container from the suffix of {str(path)!r}; pass container= "
                    f"(known suffixes: {', '.join(sorted(_CONTAINER_BY_SUFFIX))})"
                )
        if path.is_dir():
            raise VideoWriteError(f"cannot write {str(path)!r}: it is a folder")
        target = path
    elif hasattr(destination, "write"):
        if container is None:
            raise VideoWriteError("container= is required when the destination is a file object")
        target = destination
    else:
        raise VideoWriteError(f"destination must be a path or a writable binary file object, got {type(destination)}")

    # Into a file: whole or not at all (a bad frame, an encoder error or an interrupt mid-way leaves no half-written
    # file, and a file already at the destination as it was).
    writing = replaced_when_done(target, make_parents=False) if isinstance(target, Path) else nullcontext(target)
    with writing as where:
        _encode(
            str(where) if isinstance(where, Path) else where,
            destination,
            frames,
            encoder,
            container,
            fps=fps,
            gop_size=gop_size,
            pix_fmt=pix_fmt,
            rotation=rotation,
            timestamps=timestamps,
            bit_rate=bit_rate,
            options=options,
        )


def _encode(
    target,
    destination,
    frames,
    encoder: str,
    container: str,
    *,
    fps,
    gop_size,
    pix_fmt,
    rotation,
    timestamps,
    bit_rate,
    options,
) -> None:
    """`write_video`'s work once the destination is settled: ``target`` is a path or a file object."""
    iterator = iter(frames if not isinstance(frames, np.ndarray) or frames.ndim != 4 else list(frames))
    if isinstance(frames, np.ndarray) and frames.ndim != 4:
        raise VideoWriteError(f"frames must be uint8 (T, H, W, 3), got an array of shape {frames.shape}")
    try:
        first = _check_frame(next(iterator), 0)
    except StopIteration:
        raise VideoWriteError("no frames to write") from None
    height, width = first.shape[:2]
    pad = encoder in _EVEN_SIZE_ENCODERS and pix_fmt in _SUBSAMPLED_FORMATS
    if encoder == "libx265" and width < _X265_MIN_WIDTH:
        raise VideoWriteError(
            f"libx265 corrupts memory on frames narrower than {_X265_MIN_WIDTH} pixels (got {width}); "
            "pad the frames or use another codec"
        )

    if timestamps is not None:
        times = np.asarray(timestamps, dtype=np.float64)
        if times.ndim != 1 or not np.all(np.isfinite(times)) or (times.size and times[0] < 0):
            raise VideoWriteError("timestamps must be a 1-D sequence of finite, non-negative seconds")
        pts = np.round(times * 90000).astype(np.int64)
        if np.any(np.diff(pts) <= 0):
            raise VideoWriteError("timestamps must be strictly increasing (at 1/90000 s resolution)")
        time_base = Fraction(1, 90000)
    else:
        pts = None
        time_base = 1 / Fraction(fps).limit_denominator(1001)

    codec_options = dict(_QUIET_OPTIONS.get(encoder, {}))
    if encoder in ("libx264", "libx265"):
        codec_options.setdefault("sc_threshold", "0")  # keyframes exactly every gop_size frames
    codec_options.update({str(k): str(v) for k, v in (options or {}).items()})

    try:
        output = av.open(target, "w", format=container)
    except Exception as error:
        raise VideoWriteError(f"cannot open {destination!r} for writing as {container!r}: {error}") from None
    try:
        stream = output.add_stream(encoder, rate=Fraction(fps).limit_denominator(1001), options=codec_options)
        stream.width = width + (width % 2 if pad else 0)
        stream.height = height + (height % 2 if pad else 0)
        stream.pix_fmt = pix_fmt
        stream.codec_context.gop_size = gop_size
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        if bit_rate is not None:
            stream.bit_rate = int(bit_rate)
        if rotation % 360:
            stream.set_display_rotation(-(rotation % 360))  # PyAV takes counter-clockwise degrees

        index = 0
        frame = first
        while True:
            if frame.shape[:2] != (height, width):
                raise VideoWriteError(f"frame {index} is {frame.shape[:2]}, frame 0 was {(height, width)}")
            if pad:
                frame = _pad_to_even(frame)
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if pix_fmt != "rgb24":
                # Converted here on one thread: the encoder converts with FFmpeg's automatic thread count, whose
                # slices gave different bytes from run to run for some small sizes on one machine (Intel Xeon).
                video_frame = video_frame.reformat(format=pix_fmt, threads=1)
            if pts is not None:
                if index >= len(pts):
                    raise VideoWriteError(f"more frames than timestamps ({len(pts)})")
                video_frame.pts = int(pts[index])
            else:
                video_frame.pts = index
            video_frame.time_base = time_base
            for packet in stream.encode(video_frame):
                output.mux(packet)
            index += 1
            try:
                frame = _check_frame(next(iterator), index)
            except StopIteration:
                break
        if pts is not None and index != len(pts):
            raise VideoWriteError(f"{len(pts)} timestamps for {index} frames")
        for packet in stream.encode():
            output.mux(packet)
    except BaseException as error:  # a bad frame, the encoder, an interrupt: the output is closed either way
        with suppress(Exception):
            output.close()
        if isinstance(error, av.FFmpegError):
            if isinstance(error, OSError):
                # The output opens its file at the first packet: a missing folder or a full disk shows up here
                # (PyAV raises an invalid argument as a ValueError, not an OSError).
                raise VideoWriteError(f"cannot write {destination!r}: {error}") from None
            raise VideoWriteError(f"the {encoder} encoder refused the settings: {error}") from None
        raise
    output.close()


__all__ = ["write_video"]
