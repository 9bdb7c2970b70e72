"""The PyAV backend: :class:`VideoReader`, an open video read by frame index, and its seek planner.

Reads return ``numpy.ndarray`` uint8 ``(T, H, W, 3)`` RGB frames, upright (rotation metadata applied). The public
functions around it (:func:`~.video_io.read_frames`, :func:`~.video_io.sample_and_read`, ...) are in
:mod:`.video_io`.

How frames are found:

- A frame's index is its rank in presentation time among the video packets of the first video stream (a cheap
  demux of the packets, no decoding, counts them and records their timestamps and keyframes). Variable frame
  rate needs nothing special: index ``i`` is the ``i``-th frame shown.
- Reading decodes only what the wanted frames need: frames are fetched in presentation order; for each one the
  decoder starts at the last keyframe before it, seeking there unless decoding forward from where it already is
  reaches it without crossing a keyframe. Unwanted frames that no other frame refers to (H.264 non-reference
  frames, VP9 frames that refresh no reference) are not decoded at all. The result equals a full sequential
  decode at the same indices, bit for bit.
- Each wanted frame is converted and scaled in one libswscale call, straight from the decoder's pixel format to
  RGB at the requested size (bicubic), then turned upright.
- Streams whose timestamps cannot order the frames (missing or repeated presentation times, e.g. AVI with packed
  B-frames or raw elementary streams) are decoded sequentially from the start; then the frame count is the
  packet count and ``frame_count_exact`` is ``False``.

Frames that do not decode (a corrupt or truncated stream): a wanted frame the decoder never returns is replaced
by the closest decoded frame before it (or, when none was decoded before it, the first decoded after it) and a
:class:`PartialDecodeWarning` says how many were replaced. A video with no decodable frame is a
:class:`~actionclip.errors.VideoDecodeError`.
"""

from __future__ import annotations

import bisect
import io
import math
import os
import queue
import threading
import time
import warnings
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from .errors import (
    PartialDecodeWarning,
    VideoDecodeError,
    VideoTimeoutError,
    VideoTooLargeError,
    describe_source,
)
from .video_common import (
    MAX_FRAME_PIXELS,
    MAX_OUTPUT_BYTES,
    DecodeStats,
    FrameReader,
    VideoInfo,
    fit_target,
    output_size,
)

_URL_PREFIXES = ("http://", "https://")
# Decoders whose skip_frame="NONREF" drops only frames that leave no trace in later ones, so skipping is exact.
# Not VP9: a frame that refreshes no reference can still update the entropy contexts later frames use.
_SKIP_NONREF_DECODERS = {"h264"}
_INTERPOLATION = "BICUBIC"


class _Deadline:
    """One time budget for a whole call; loops check it between packets. ``inf`` seconds is no limit (as ``None``)."""

    def __init__(self, source, timeout: float | None):
        if timeout is not None and (
            isinstance(timeout, bool) or not (isinstance(timeout, (int, float)) and timeout > 0)
        ):
            raise VideoDecodeError(source, f"timeout must be a positive number of seconds or None, got {timeout!r}")
        if timeout is not None and math.isinf(timeout):
            timeout = None
        self.source = source
        self.timeout = timeout
        self.end = None if timeout is None else time.monotonic() + float(timeout)

    def expired(self) -> bool:
        return self.end is not None and time.monotonic() > self.end

    def check(self, stage: str) -> None:
        if self.expired():
            raise VideoTimeoutError(self.source, f"gave up after {self.timeout:g} s while {stage}")

    def remaining(self) -> float | None:
        return None if self.end is None else max(self.end - time.monotonic(), 0.001)


class _ReadAhead(io.RawIOBase):
    """A non-seekable file object (a pipe, a socket, an HTTP response) read on a daemon thread, so that the decoder
    waits for its bytes no longer than the current deadline.

    A blocking ``read`` that never returns cannot be interrupted from another thread, so it is not made in the
    thread that decodes: the pump thread reads ``chunk_size`` bytes at a time into a queue of at most
    ``max_chunks`` chunks (bounded memory), and :meth:`read` takes them with the deadline's remaining time as its
    wait. When the deadline passes, the decoder gets `VideoTimeoutError` on time; a pump thread stuck in the
    source's ``read`` stays blocked there (a daemon thread: it does not keep the process alive) until the source
    gives data or ends, and then stops, since :meth:`close` was called. (Closing a buffered source, e.g. from
    ``os.fdopen``, waits for that read to return: end the writing side first.)
    """

    def __init__(self, source, deadline: _Deadline, chunk_size: int = 1 << 16, max_chunks: int = 16):
        super().__init__()
        self.source = source
        self.deadline = deadline
        self._chunk_size = chunk_size
        self._chunks: queue.Queue = queue.Queue(maxsize=max_chunks)
        self._stop = threading.Event()
        self._pending = b""
        self._ended = False
        threading.Thread(target=self._pump, name="actionclip-read-ahead", daemon=True).start()

    def _pump(self) -> None:
        try:
            while not self._stop.is_set():
                data = self.source.read(self._chunk_size)
                if data is None:  # a non-blocking source with nothing yet
                    time.sleep(0.01)
                    continue
                if not isinstance(data, (bytes, bytearray, memoryview)):
                    raise TypeError(f"its read() returned {type(data).__name__}, not bytes (open it in binary mode)")
                self._put(bytes(data))
                if not data:
                    return
        except BaseException as error:  # handed to the decoding thread, which fails with it
            self._put(error)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        if not self._pending and not self._ended:
            try:
                item = self._chunks.get(timeout=self.deadline.remaining())
            except queue.Empty:
                raise VideoTimeoutError(
                    self.source, f"gave up after {self.deadline.timeout:g} s waiting for the file object's data"
                ) from None
            if isinstance(item, BaseException):
                self._ended = True
                raise OSError(f"reading the file object failed ({type(item).__name__}: {item})")
            self._pending = item
            self._ended = not item
        if size is None or size < 0:
            size = len(self._pending)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def close(self) -> None:
        self._stop.set()
        super().close()


def _reads_ahead(source, timeout: float | None) -> bool:
    """Whether reads from ``source`` go through :class:`_ReadAhead`: a non-seekable file object, with a time limit
    (reads from files and memory, the seekable ones, return)."""
    if timeout is None or isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isinf(timeout):
        return False
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) or not hasattr(source, "read"):
        return False
    try:
        return not source.seekable()
    except (AttributeError, OSError, ValueError):
        return True


def check_hwaccel(source, hwaccel):
    """``None`` (decode on the CPU) or a hardware device type of the loaded FFmpeg (``"cuda"``, ``"vaapi"``, ...).

    Raises:
        VideoDecodeError: anything else, naming the types this FFmpeg has.
    """
    if hwaccel is None:
        return None
    from av.codec.hwaccel import hwdevices_available

    available = list(hwdevices_available())
    if not isinstance(hwaccel, str) or hwaccel not in available:
        raise VideoDecodeError(
            source, f"hwaccel must be None (CPU) or one of this FFmpeg's device types {available}, got {hwaccel!r}"
        )
    return hwaccel


def _position(source) -> int | None:
    """Where a seekable file object stands (to read it again from there); ``None`` for anything else."""
    try:
        return source.tell() if hasattr(source, "read") and source.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None


def _open_container(source, deadline: _Deadline, reader: _ReadAhead | None = None, hwaccel=None):
    """Open ``source`` for reading (through ``reader`` when it reads ahead; decoding on the ``hwaccel`` device type
    when given); returns the container. Every failure becomes a VideoDecodeError."""
    if isinstance(hwaccel, str):
        from av.codec.hwaccel import HWAccel

        start = _position(source)
        try:
            # Frames are downloaded to host memory (NV12 for H.264 on CUDA); codecs the device cannot decode fall
            # back to the CPU decoder.
            return _open_container(source, deadline, reader, hwaccel=HWAccel(hwaccel, allow_software_fallback=True))
        except VideoDecodeError as error:
            if isinstance(error, VideoTimeoutError) or error.__cause__ is None:
                raise  # a timeout, or the source's own problem found before opening (empty, missing, ...)
            if hasattr(source, "read") and (start is None or reader is not None):
                # A stream that cannot be read again: which of the two failed cannot be told here.
                raise VideoDecodeError(
                    source,
                    f"hardware decoding on {hwaccel!r} could not open it ({error.__cause__}): the device did not "
                    "start or the stream is not a readable video; hwaccel=None tells which",
                ) from None
            if hasattr(source, "read"):
                source.seek(start)
            # Whether the source itself opens: if not, its own error says why; if so, the device was the problem.
            _open_container(source, deadline, reader).close()
            if hasattr(source, "read"):
                source.seek(start)
            raise VideoDecodeError(
                source,
                f"hardware decoding on {hwaccel!r} could not start ({error.__cause__}); use hwaccel=None to decode "
                "on the CPU",
            ) from None
    options = {}
    url = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise VideoDecodeError(source, "the data is empty (0 bytes)")
        target = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(text, str) and text.lower().startswith(_URL_PREFIXES):
            url = target = text
            if deadline.timeout is not None:
                options["rw_timeout"] = str(int(deadline.timeout * 1e6))
        else:
            path = Path(text)
            if not path.exists():
                raise VideoDecodeError(source, "no such file")
            if not path.is_file():
                raise VideoDecodeError(source, "not a regular file")
            if path.stat().st_size == 0:
                raise VideoDecodeError(source, "the file is empty (0 bytes)")
            # FFmpeg reads "name:rest" as protocol "name" ("rec:2024.mp4" -> "Protocol not found"): name the file
            # protocol explicitly, with an absolute path.
            target = "file:" + os.path.abspath(path)
    elif hasattr(source, "read"):
        try:
            if source.seekable():
                here = source.tell()
                source.seek(0, io.SEEK_END)
                size = source.tell() - here
                source.seek(here)
                if size == 0:
                    raise VideoDecodeError(source, "the file object has no data left to read")
        except (AttributeError, OSError, ValueError) as error:
            if isinstance(error, VideoDecodeError):
                raise
            raise VideoDecodeError(source, f"the file object cannot be read: {error}") from None
        target = source if reader is None else reader
    else:
        raise VideoDecodeError(
            source, f"expected a path, an http(s) URL, bytes or a binary file object, got {type(source).__name__}"
        )
    timeout = deadline.remaining()
    try:
        return av.open(target, "r", options=options or None, timeout=timeout, hwaccel=hwaccel)
    except av.ExitError:
        raise VideoTimeoutError(source, f"opening took longer than {deadline.timeout:g} s") from None
    except VideoDecodeError:  # from the read-ahead (a VideoTimeoutError is an OSError too)
        raise
    except av.EOFError:
        raise VideoDecodeError(source, "it ends before any video data (no frames, or truncated)") from None
    except (av.FFmpegError, OSError, ValueError, TypeError, RuntimeError) as error:
        if hwaccel is not None:  # the caller tells a device that does not start from a source that does not open
            raise VideoDecodeError(source, "opening with hwaccel failed") from error
        if url is not None and deadline.expired():
            raise VideoTimeoutError(source, f"opening took longer than {deadline.timeout:g} s") from None
        not_video = _describe_non_video(source)
        if not_video is not None:
            raise VideoDecodeError(source, f"it is not a video ({not_video})") from None
        kind = "could not be fetched" if url is not None else "is not a readable video container"
        raise VideoDecodeError(source, f"it {kind} ({type(error).__name__}: {error})") from None


# FFmpeg's demuxers for image files (``image2`` for a named file, ``<codec>_pipe`` for data, ``gif`` / ``apng`` for
# animations, which may hold one frame): with one frame, what they opened is a picture.
_IMAGE_DEMUXERS = frozenset({"image2", "image2pipe", "gif", "apng"})
_IMAGE_CODEC_NAMES = {"mjpeg": "JPEG", "png": "PNG", "apng": "PNG", "gif": "GIF", "webp": "WebP", "tiff": "TIFF"}


def _is_image_format(format_name: str) -> bool:
    """Whether a container format name (FFmpeg's, possibly a comma-separated list) is an image demuxer's."""
    return any(name in _IMAGE_DEMUXERS or name.endswith("_pipe") for name in format_name.split(","))


_TEXT_SIGNATURES = (b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body", b"{", b"[")


def _describe_non_video(source) -> str | None:
    """Why a source that FFmpeg opened without a video stream is not a video, when that can be told: the content
    type a server sent, or text (HTML, XML, JSON) where media data should be. FFmpeg guesses some format for
    anything (an HTML page probes as MP3 audio), which would otherwise be the only clue. Called on the error path
    only; ``None`` when nothing more can be said."""
    head = b""
    if isinstance(source, str) and source.lower().startswith(_URL_PREFIXES):
        import urllib.request

        try:
            request = urllib.request.Request(source, headers={"Range": "bytes=0-511"})
            with urllib.request.urlopen(request, timeout=5) as response:
                content_type = response.headers.get_content_type()
                head = response.read(512)
        except Exception:  # the server is gone or refuses: nothing more to say
            return None
        if not content_type.startswith(("video/", "application/octet-stream", "binary/")):
            return f"the server sent {content_type!r} content"
    elif isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as handle:
                head = handle.read(512)
        except OSError:
            return None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:512])
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith(_TEXT_SIGNATURES[:5]):
        return "it holds an HTML or XML page"
    if start.startswith(_TEXT_SIGNATURES[5:]):
        return "it holds JSON text"
    return None


class VideoReader(FrameReader):
    """An open video: its packet table, its :class:`VideoInfo`, and reads of frames by index.

    Opening scans the packets of the first video stream (demux only) to count and order the frames.
    Use as a context manager, or call :meth:`close`.

    Args:
        source: a path, an http(s) URL, bytes, or a binary file object (read from its current position).
        threads: decoder threads (1: no threading; 0: FFmpeg picks).
        timeout: seconds the opening, and then each :meth:`read`, may take; ``None`` for no limit.
        hwaccel: ``None`` (decode on the CPU) or an FFmpeg hardware device type (``"cuda"``: NVDEC) to decode
            on; frames come back to host memory, codecs the device lacks decode on the CPU. Off by default:
            ``benchmarks/gpu_decode.py`` measures whether it pays (for one small stream it did not, issue 13).
    """

    _decoder_errors = (av.FFmpegError,)

    def __init__(self, source, *, threads: int = 1, timeout: float | None = 30.0, hwaccel: str | None = None):
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise VideoDecodeError(source, f"threads must be a non-negative integer, got {threads!r}")
        self.source = source
        self.threads = threads
        self.timeout = timeout
        self.hwaccel = check_hwaccel(source, hwaccel)
        self._counters = DecodeStats()
        # One scaler and one converter per reader, each on one thread: FFmpeg's default (`VideoFrame.reformat`,
        # `to_ndarray`) builds a new scaler, with its automatic thread count, for every frame, which cost more than
        # the conversion itself (see benchmarks/README.md, issue 13).
        self._scaler = VideoReformatter()
        self._to_rgb = VideoReformatter()
        self._rotation: int | None = None
        self._first_frame_size: tuple[int, int] | None = None
        self._read_ahead: _ReadAhead | None = None
        self._container = None
        deadline = self._new_deadline()
        if _reads_ahead(source, timeout):
            self._read_ahead = _ReadAhead(source, deadline)
        try:
            self._container = _open_container(source, deadline, self._read_ahead, self.hwaccel)
        except BaseException:
            self.close()
            raise
        try:
            self._setup(deadline)
        except av.FFmpegError as error:
            self.close()
            raise VideoDecodeError(source, f"reading the stream failed ({type(error).__name__}: {error})") from None
        except BaseException:
            self.close()
            raise

    def _new_deadline(self) -> _Deadline:
        """The time budget of one call (opening, one read); reads ahead wait for data within it."""
        deadline = _Deadline(self.source, self.timeout)
        if getattr(self, "_read_ahead", None) is not None:
            self._read_ahead.deadline = deadline
        return deadline

    # -- opening -----------------------------------------------------------------------------------------------

    def _setup(self, deadline: _Deadline) -> None:
        container = self._container
        streams = container.streams.video
        if not streams:
            not_video = _describe_non_video(self.source)
            if not_video is not None:
                raise VideoDecodeError(self.source, f"it is not a video ({not_video})")
            kinds = sorted({stream.type for stream in container.streams})
            what = f"only {', '.join(kinds)} streams" if kinds else "no streams"
            raise VideoDecodeError(self.source, f"it has no video stream ({what})")
        self._stream = stream = streams[0]
        context = stream.codec_context
        if context is None or getattr(context, "codec", None) is None:
            raise VideoDecodeError(self.source, "its video codec is not supported by this FFmpeg build")
        try:
            context.codec.name  # noqa: B018 - raises when there is no decoder for the stream
        except Exception:
            raise VideoDecodeError(self.source, "its video codec has no decoder in this FFmpeg build") from None
        self.codec = context.codec.name
        width, height = int(context.width or 0), int(context.height or 0)
        if width < 0 or height < 0 or width * height > MAX_FRAME_PIXELS:
            raise VideoTooLargeError(
                self.source, f"frame size {width}x{height} exceeds the limit of {MAX_FRAME_PIXELS} pixels"
            )
        self._coded_size = (width, height)
        context.thread_count = self.threads
        if self.threads != 1:
            context.thread_type = "AUTO"
        self._skip_nonref = self.codec in _SKIP_NONREF_DECODERS
        self._scan(deadline)
        if self._num_frames == 1 and _is_image_format(container.format.name):
            # FFmpeg decodes a photo as a one-frame video, whose "classification" would look like any other.
            kind = _IMAGE_CODEC_NAMES.get(self.codec, self.codec.upper())
            raise VideoDecodeError(self.source, f"it is a single {kind} image, not a video")

    def _scan(self, deadline: _Deadline) -> None:
        """Demux every packet once (no decoding): timestamps, keyframes, and the frame order they give."""
        pts_list, dts_list, keys, shown = [], [], [], []
        self._scan_complete = True
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream marker, or an empty placeholder: not a frame
                pts_list.append(packet.pts)
                dts_list.append(packet.dts)
                keys.append(bool(packet.is_keyframe))
                shown.append(not packet.is_discard)
                if len(pts_list) % 256 == 0:
                    deadline.check("counting the frames")
        except av.ExitError:
            raise VideoTimeoutError(self.source, "reading the packets timed out") from None
        except av.FFmpegError:
            self._scan_complete = False  # a damaged tail: keep what was read
        deadline.check("counting the frames")
        self._packet_pts = pts_list
        self._packet_keys = keys
        shown_pts = [pts for pts, is_shown in zip(pts_list, shown) if is_shown]
        if not shown_pts:
            raise VideoDecodeError(self.source, "the video stream has no frames (no video packets)")
        self._num_frames = len(shown_pts)
        self._timed = all(pts is not None for pts in shown_pts) and len(set(shown_pts)) == len(shown_pts)
        self._timed = self._timed and all(p is not None for p in pts_list)
        if self._timed:
            self._frame_pts = np.array(sorted(shown_pts), dtype=np.int64)
            self._position_of_pts = {pts: position for position, pts in enumerate(pts_list)}
            self._key_positions = [position for position, key in enumerate(keys) if key]
        self._dts = dts_list
        self._pts_shown = shown_pts

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def _seconds(self, ticks) -> float:
        return float(ticks * self._stream.time_base) if self._stream.time_base else float("nan")

    def _duration(self) -> float | None:
        stream = self._stream
        if self._timed and stream.time_base:
            pts = self._frame_pts
            if len(pts) > 1:
                step = np.median(np.diff(pts))
                return self._seconds(int(pts[-1] - pts[0]) + step)
        if stream.duration and stream.time_base:
            return self._seconds(stream.duration)
        if self._container.duration:
            return self._container.duration / 1_000_000
        return None

    @property
    def info(self) -> VideoInfo:
        """The video's :class:`VideoInfo`. Rotation and exact size come from the first decoded frame."""
        if self._rotation is None:
            try:
                self._decode_first_frame()
            except av.FFmpegError as error:
                raise VideoDecodeError(self.source, f"decoding failed ({type(error).__name__}: {error})") from None
        duration = self._duration()
        rate = self._stream.average_rate or self._stream.guessed_rate
        if self._timed and duration and duration > 0 and self._num_frames > 1:
            fps = self._num_frames / duration
        elif rate:
            fps = float(rate)
        elif duration:
            fps = self._num_frames / duration
        else:
            fps = float("nan")
        width, height = self._first_frame_size or self._coded_size
        if self._rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            num_frames=self._num_frames,
            fps=float(fps),
            duration=duration,
            width=int(width),
            height=int(height),
            rotation=int(self._rotation or 0),
            codec=self.codec,
            frame_count_exact=bool(self._timed and self._scan_complete),
        )

    def _decode_first_frame(self) -> None:
        deadline = self._new_deadline()
        plan = _Plan(wanted_pts=None)
        self._run_sequential(plan, want_positions={0}, deadline=deadline, convert=None, stop_after=1)
        if self._rotation is None:
            raise VideoDecodeError(self.source, "no frame of the video could be decoded")

    # -- reading -----------------------------------------------------------------------------------------------

    def _read(self, wanted: np.ndarray, target) -> np.ndarray:
        """:meth:`read` once it has checked its arguments (see :class:`FrameReader`)."""
        deadline = self._new_deadline()
        target = fit_target(target, self._first_frame_size or self._coded_size)
        self._check_output_bytes(target, wanted.size)
        flat = wanted.reshape(-1)
        unique = np.unique(flat)
        if unique.size == 0:
            width, height = output_size(target, self._coded_size, self._rotation or 0)
            return np.empty((*wanted.shape, height, width, 3), dtype=np.uint8)
        converted: dict[int, np.ndarray] = {}
        replaced: dict[int, int] = {}

        def convert(frame) -> np.ndarray:
            return self._convert(frame, target, deadline)

        if self._timed:
            self._read_timed(unique, converted, replaced, convert, deadline)
        else:
            self._read_sequential(unique, converted, replaced, convert, deadline)
        if not converted:
            raise VideoDecodeError(self.source, "no frame of the video could be decoded")
        if replaced:
            warnings.warn(
                f"{describe_source(self.source)}: {len(replaced)} of {unique.size} wanted frames could not be decoded "
                f"and were replaced by the closest decoded frame (first: index {min(replaced)})",
                PartialDecodeWarning,
                stacklevel=3,
            )
        first = next(iter(converted.values()))
        out_bytes = flat.size * first.nbytes
        if out_bytes > MAX_OUTPUT_BYTES:
            raise VideoTooLargeError(
                self.source, f"the output would take {out_bytes} bytes (limit {MAX_OUTPUT_BYTES})"
            )
        output = np.empty((flat.size, *first.shape), dtype=np.uint8)
        for slot, index in enumerate(flat.tolist()):
            output[slot] = converted[index]
        return output.reshape(*wanted.shape, *first.shape)

    def _check_output_bytes(self, target, count: int) -> None:
        """Refuse, before decoding anything, a read whose output array would pass `MAX_OUTPUT_BYTES`."""
        width, height = output_size(target, self._first_frame_size or self._coded_size, 0)
        out_bytes = count * width * height * 3
        if out_bytes > MAX_OUTPUT_BYTES:
            raise VideoTooLargeError(
                self.source,
                f"{count} frames of {width}x{height} would take {out_bytes} bytes (limit {MAX_OUTPUT_BYTES}); "
                "ask for fewer frames or a smaller size",
            )

    @property
    def stats(self) -> DecodeStats:
        """Totals since the reader was opened (see :class:`DecodeStats`)."""
        return self._counters.copy()

    def _convert(self, frame, target, deadline: _Deadline) -> np.ndarray:
        if self._rotation is None:
            self._note_first_frame(frame)
        rotation = self._rotation
        width_up, height_up = output_size(target, self._first_frame_size, rotation)
        if width_up * height_up > MAX_FRAME_PIXELS:
            raise VideoDecodeError(
                self.source, f"requested frame size {width_up}x{height_up} exceeds {MAX_FRAME_PIXELS} pixels"
            )
        width, height = (height_up, width_up) if rotation in (90, 270) else (width_up, height_up)
        if frame.width != width or frame.height != height:
            # Scale the stored planes, then convert at the output size: for YUV 4:2:0 half the bytes of RGB to
            # filter (the chroma planes a quarter each), and the conversion runs on the smaller frame.
            colorspace, color_range = frame.colorspace, frame.color_range
            frame = self._scaler.reformat(frame, width=width, height=height, interpolation=_INTERPOLATION, threads=1)
            rgb = self._to_rgb.reformat(
                frame, format="rgb24", src_colorspace=colorspace, src_color_range=color_range, threads=1
            ).to_ndarray()
        else:  # the plain conversion every other reader does (`to_ndarray(format="rgb24")`), with a kept scaler
            rgb = self._to_rgb.reformat(frame, format="rgb24", threads=1).to_ndarray()
        if rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90)))
        return rgb

    def _note_first_frame(self, frame) -> None:
        if frame.width * frame.height > MAX_FRAME_PIXELS or frame.width < 1 or frame.height < 1:
            raise VideoTooLargeError(
                self.source, f"decoded frame size {frame.width}x{frame.height} is outside 1..{MAX_FRAME_PIXELS} pixels"
            )
        self._first_frame_size = (frame.width, frame.height)
        self._rotation = int(round(-frame.rotation)) % 360 if frame.rotation else 0
        if self._rotation % 90:
            self._rotation = 0  # an arbitrary angle: frames are returned as stored

    # -- the two decoding strategies -----------------------------------------------------------------------

    def _read_timed(self, unique, converted, replaced, convert, deadline) -> None:
        """Frames ordered by pts: seek to keyframes, decode forward, skip unreferenced unwanted frames."""
        wanted_pts = [int(self._frame_pts[index]) for index in unique.tolist()]
        index_of_pts = dict(zip(wanted_pts, unique.tolist()))
        plan = _Plan(wanted_pts=set(wanted_pts))
        stretches = self._stretches(wanted_pts)
        for start, end in stretches:
            self._decode_range(start, end, plan, deadline)
        for pts in sorted(plan.wanted_pts - set(plan.found)):
            self._find_frame_before(pts, plan, deadline)
        self._collect(plan, index_of_pts, unique, converted, replaced, convert)

    def _find_frame_before(self, pts: int, plan: _Plan, deadline: _Deadline, attempts: int = 4) -> None:
        """A wanted frame did not decode: look for the last decodable frame before it, a keyframe at a time."""
        start = self._start_position(pts)
        before = plan.before.get(pts)
        if before is not None and self._position_of_pts.get(before.pts, -1) >= start:
            return  # something in its own run of frames decoded before it: that is the closest
        keys = self._key_positions
        k = bisect.bisect_left(keys, start) - 1
        end = start - 1
        for _ in range(attempts):
            if k < 0 or end < 0:
                return
            probe = _Plan(wanted_pts=None)
            self._decode_range(keys[k], end, probe, deadline)
            if probe.last is not None and probe.last.pts < pts:
                if before is None or probe.last.pts > before.pts:
                    plan.before[pts] = probe.last
                return
            end = keys[k] - 1
            k -= 1

    def _start_position(self, pts: int) -> int:
        """Decode position of the keyframe to start from to get the frame shown at ``pts``."""
        position = self._position_of_pts[pts]
        keys = self._key_positions
        k = bisect.bisect_right(keys, position) - 1
        # An open-GOP leading frame is shown before its keyframe: go back to a keyframe shown before it.
        while k >= 0 and self._packet_pts[keys[k]] > pts:
            k -= 1
        return keys[k] if k >= 0 else 0

    def _stretches(self, wanted_pts: list[int]) -> list[tuple[int, int]]:
        """Packet ranges [start, end] to decode; a new range (a seek) when the next frame needs a later keyframe."""
        stretches: list[list[int]] = []
        for pts in sorted(wanted_pts):
            start = self._start_position(pts)
            end = self._position_of_pts[pts]
            if stretches and start <= stretches[-1][1] + 1:
                stretches[-1][1] = max(stretches[-1][1], end)
            else:
                stretches.append([start, end])
        return [(start, end) for start, end in stretches]

    def _seek_to(self, position: int, deadline: _Deadline):
        """Position the demuxer so that the packets from ``position`` on come next; returns a packet iterator."""
        stream = self._stream
        candidates = []
        pts, dts = self._packet_pts[position], self._dts[position]
        for ts in (pts, dts):
            if ts is not None and ts not in candidates:
                candidates.append(ts)
        # Fall back to earlier keyframes, then to the very start.
        k = bisect.bisect_left(self._key_positions, position) - 1
        while k >= 0 and len(candidates) < 4:
            earlier = self._packet_pts[self._key_positions[k]]
            if earlier is not None:
                candidates.append(earlier)
            k -= 1
        for ts in candidates:
            deadline.check("seeking")
            try:
                self._container.seek(int(ts), stream=stream, backward=True, any_frame=False)
            except av.FFmpegError:
                continue
            self._counters.seeks += 1
            stream.codec_context.flush_buffers()
            iterator = self._packets_from(position, deadline)
            if iterator is not None:
                return iterator
        return self._reopen_from(position, deadline)

    def _packets_from(self, position: int, deadline: _Deadline):
        """After a seek: the packets from ``position`` on, or None when the seek overshot it."""
        demux = self._demux()
        unidentified = 0
        for packet in demux:
            deadline.check("seeking")
            if packet.size == 0:
                continue
            found = self._position_of_pts.get(packet.pts)
            if found is None:
                # Not identifiable (no pts in the scan's table): skipped; the next identified packet says where the
                # seek landed. Too many of them in a row: the seek is of no use.
                unidentified += 1
                if unidentified > 64:
                    return None
                continue
            if found > position:
                return None
            if found == position:
                return _chain(packet, demux, found)
            # Landed before the wanted keyframe: drop packets until it, they are not needed.
            return _skip_until(packet, demux, found, position, deadline)
        return None

    def _demux(self):
        """The video packets from here on; a demuxer error ends them (the data after it is unusable)."""
        iterator = self._container.demux(self._stream)
        while True:
            try:
                packet = next(iterator)
            except StopIteration:
                return
            except av.ExitError:
                raise VideoTimeoutError(self.source, "reading the packets timed out") from None
            except av.FFmpegError:
                self._counters.decode_errors += 1
                return
            yield packet

    def _reopen_from(self, position: int, deadline: _Deadline):
        """Last resort when seeking does not land where needed: read from the beginning again."""
        try:
            if isinstance(self.source, (str, os.PathLike)):
                self._container.close()
                self._container = _open_container(self.source, deadline, hwaccel=self.hwaccel)
                self._stream = self._container.streams.video[0]
                self._stream.codec_context.thread_count = self.threads
            else:
                self._container.seek(0, backward=True, any_frame=True)
                self._stream.codec_context.flush_buffers()
        except av.FFmpegError as error:
            raise VideoDecodeError(self.source, f"cannot go back to the start of the stream: {error}") from None
        self._counters.seeks += 1
        demux = self._demux()
        first = None
        for packet in demux:
            if packet.size:
                first = packet
                break
        if first is None:
            return iter(())
        return _skip_until(first, demux, 0, position, deadline)

    def _decode_range(self, start: int, end: int, plan: _Plan, deadline: _Deadline) -> None:
        """Feed packets at decode positions start..end (then drain) and keep the frames the plan wants."""
        context = self._stream.codec_context
        packets = self._seek_to(start, deadline)
        skipping = False
        for position, packet in packets:
            if position > end:
                break
            if position & 15 == 0:
                deadline.check("decoding")
            if self._skip_nonref and (packet.pts not in plan.wanted_pts) != skipping:
                skipping = not skipping
                context.skip_frame = "NONREF" if skipping else "DEFAULT"
            self._send(packet, plan)
        if self._skip_nonref:
            context.skip_frame = "DEFAULT"
        self._send(None, plan)
        context.flush_buffers()

    def _send(self, packet, plan: _Plan) -> None:
        context = self._stream.codec_context
        try:
            frames = context.decode(packet)
        except av.EOFError:
            return
        except av.ExitError:
            raise VideoTimeoutError(self.source, "decoding timed out") from None
        except av.FFmpegError:
            self._counters.decode_errors += 1
            return
        if packet is not None:
            self._counters.packets_decoded += 1
        for frame in frames:
            self._counters.frames_decoded += 1
            plan.observe(frame)

    def _collect(self, plan: _Plan, index_of_pts, unique, converted, replaced, convert) -> None:
        """Convert the wanted frames; fill the ones that never came with their closest decoded neighbour."""
        for pts, frame in plan.found.items():
            converted[index_of_pts[pts]] = convert(frame)
        for pts in sorted(set(index_of_pts) - set(plan.found)):
            neighbour = plan.before.get(pts)
            if neighbour is None:
                neighbour = plan.after.get(pts)
            if neighbour is None:
                continue
            converted[index_of_pts[pts]] = convert(neighbour)
            replaced[index_of_pts[pts]] = pts
        missing = [index_of_pts[pts] for pts in index_of_pts if index_of_pts[pts] not in converted]
        if missing and converted:
            # Nothing decoded near them at all: use the closest index that did decode.
            have = np.array(sorted(converted))
            for index in missing:
                nearest = int(have[np.argmin(np.abs(have - index))])
                converted[index] = converted[nearest]
                replaced[index] = nearest

    def _read_sequential(self, unique, converted, replaced, convert, deadline) -> None:
        """Streams without usable timestamps: decode from the start, a frame's index is its output order."""
        plan = _Plan(wanted_pts=None)
        want = set(unique.tolist())
        self._run_sequential(plan, want_positions=want, deadline=deadline, convert=convert, stop_after=None)
        for index, frame in plan.by_order.items():
            converted[index] = convert(frame)
        decoded = sorted(plan.by_order)
        for index in sorted(want - set(plan.by_order)):
            if not decoded:
                break
            k = bisect.bisect_right(decoded, index) - 1
            source_index = decoded[k] if k >= 0 else decoded[0]
            frame = plan.last_before.get(index)
            frame = plan.by_order[source_index] if frame is None else frame
            converted[index] = convert(frame)
            replaced[index] = source_index

    def _run_sequential(self, plan: _Plan, want_positions, deadline, convert, stop_after) -> None:
        packets = self._reopen_from(0, deadline)  # the opening scan has consumed the demuxer: start over
        order = 0
        wanted = set(want_positions)
        last_frame = None

        def take(frames) -> bool:
            nonlocal order, last_frame
            for frame in frames:
                self._counters.frames_decoded += 1
                if self._rotation is None:
                    self._note_first_frame(frame)
                if order in wanted:
                    plan.by_order[order] = frame
                last_frame = frame
                order += 1
                if stop_after is not None and order >= stop_after:
                    return True
                if len(plan.by_order) == len(wanted) and order > max(wanted):
                    return True
            return False

        context = self._stream.codec_context
        done = False
        for _, packet in packets:
            deadline.check("decoding")
            try:
                frames = context.decode(packet)
                self._counters.packets_decoded += 1
            except av.ExitError:
                raise VideoTimeoutError(self.source, "decoding timed out") from None
            except av.FFmpegError:
                self._counters.decode_errors += 1
                continue
            if take(frames):
                done = True
                break
        if not done:
            try:
                take(context.decode(None))
            except av.FFmpegError:
                self._counters.decode_errors += 1
        context.flush_buffers()
        if last_frame is not None:
            for index in wanted - set(plan.by_order):
                if index >= order:
                    plan.last_before[index] = last_frame

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            try:
                container.close()
            except Exception:  # closing a broken container must not hide the error that broke it
                pass
            self._container = None
        read_ahead = getattr(self, "_read_ahead", None)
        if read_ahead is not None:
            read_ahead.close()
            self._read_ahead = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self):
        self.close()


class _Plan:
    """The frames one read wants, and what the decoder returned around them."""

    def __init__(self, wanted_pts: set[int] | None):
        self.wanted_pts = wanted_pts or set()
        self.sorted_wanted = sorted(self.wanted_pts)
        self.found: dict[int, object] = {}
        self.before: dict[int, object] = {}  # missing pts -> last decoded frame shown before it
        self.after: dict[int, object] = {}  # missing pts -> first decoded frame shown after it
        self.last = None
        self.by_order: dict[int, object] = {}
        self.last_before: dict[int, object] = {}

    def observe(self, frame) -> None:
        pts = frame.pts
        if pts is None:
            return
        if pts in self.wanted_pts:
            self.found[pts] = frame
        # Wanted frames shown before this one that have not come: remember the neighbours on both sides.
        lo = bisect.bisect_left(self.sorted_wanted, self.last.pts if self.last is not None else -(1 << 62))
        hi = bisect.bisect_left(self.sorted_wanted, pts)
        for missing in self.sorted_wanted[lo:hi]:
            if missing not in self.found:
                if self.last is not None and self.last.pts < missing:
                    self.before.setdefault(missing, self.last)
                self.after.setdefault(missing, frame)
        self.last = frame


def _chain(first, demux, position):
    """Packets from ``first`` (at decode ``position``) on, numbered by decode position."""
    yield position, first
    for packet in demux:
        if packet.size == 0:
            continue
        position += 1
        yield position, packet


def _skip_until(first, demux, first_position, position, deadline):
    """Packets from ``first`` (at ``first_position``) on, dropping those before ``position``."""
    current = first_position
    if current >= position:
        yield current, first
    for packet in demux:
        if packet.size == 0:
            continue
        current += 1
        if current >= position:
            yield current, packet
        elif current % 256 == 0:
            deadline.check("skipping to the start frame")
