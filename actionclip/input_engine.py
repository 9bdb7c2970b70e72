"""Inputs to frames: the one place that decides how a video input becomes the uint8 frames a model needs.

Every caller (the processor, the video processor, the zero-shot pipeline, evaluation and the training datasets)
describes what it wants with a :class:`ClipSpec` (frames per clip, views, sampler, resize target and crop) and asks
this module for frames:

- a path, an http(s) URL, bytes or a binary file object is decoded (`video_io`), its frames chosen by the sampler
  named in the spec (`sampling.get_sampler`);
- a frame folder (:class:`FrameFolder`) is read image by image;
- decoded frames (a uint8 array or tensor ``(T, H, W, 3)`` / ``(T, 3, H, W)``, float ones in [0, 1], a list of PIL
  images) are sampled the same way when their length is not the clip length.

The frames are then resized (the video processor's shorter-side target, with its Pillow filter) and cropped (the
centre, or the three crops of multi-crop testing) in one step: Pillow resamples only the crop's box of the source,
which gives the pixels of resize-then-crop (the original's ``GroupScale`` + ``GroupCenterCrop``) without computing
the pixels the crop throws away. The result is uint8 ``(V, T, S, S, 3)``: V views (``num_clips * num_crops``),
ready for `ActionCLIPVideoProcessor.frames_to_pixel_values` (rescale and normalise, on the model's device).

:class:`DecodePool` runs :func:`read_clip` in worker processes (decoding holds the interpreter lock in places and the
resize does too, so threads stop scaling at a few cores). Results come back in input order; a file that cannot be
read gives its typed error and the others go on; a worker that dies (a crash in a decoder, SIGKILL) gives its item a
`DecodeWorkerDiedError` and is replaced; a worker stuck past the decode timeout is killed and its item gets a
`VideoTimeoutError`. A worker writes its frames into a slot of its own shared memory (one anonymous memory file),
and the parent lends the consumer a tensor viewing that slot (a slot is written again only once the consumer has
dropped its clip; past ``LENT_PER_WORKER`` held clips, a clip is copied out): one copy in all, no bytes through the
pipe (where the system has no memory files, or for a clip larger than a slot, the frames travel through the pipe
once, straight into the tensor). The pool ends its workers when the iteration ends, fails, is interrupted or is
closed early; the memory goes with the last clip that views it (it has no name: nothing is left in ``/dev/shm``).

This module imports torch only in the functions that return tensors, so worker processes start without it; it is
copied next to the weights with the pipeline (remote code), so it imports its package's modules relatively.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.reduction import DupFd

import numpy as np
from PIL import Image

from .errors import (
    DecodeWorkerDiedError,
    SamplingError,
    VideoDecodeError,
    VideoInputError,
    VideoTimeoutError,
    describe_source,
)
from .process_policy import available_cpus, keep_freed_memory
from .sampling import get_sampler
from .video_common import resized_shape
from .video_io import is_video_source, read_frame_folder, sample_and_read

# Start method of the worker processes. The parent has torch (and its threads) loaded, so fork is unsafe; a fork
# server that has imported this module once starts each worker in milliseconds, where spawn re-imports numpy, PyAV
# and Pillow in every worker (see benchmarks/input_engine.py for both).
START_METHOD = "forkserver"
# Items handed to one worker before it returns the first: the second waits in its pipe, so a worker never idles
# between sending a result and receiving the next item.
ITEMS_PER_WORKER = 2
# A worker's shared memory: slots of SLOT_BYTES (a 224-px clip of 8 frames takes 1.2 MB; a larger clip goes through
# the pipe), one per item in flight and LENT_PER_WORKER lent to the consumer at once (their tensors view the memory,
# and a slot is written again only once the consumer has dropped them; beyond that, clips are copied out). The file
# is sparse: memory is used by the slots' touched pages only.
SLOT_BYTES = 16 << 20
LENT_PER_WORKER = 8
SLOTS_PER_WORKER = ITEMS_PER_WORKER + LENT_PER_WORKER
# A worker holding an item longer than the decode timeout times this (plus the grace) is killed: the decoder's own
# deadline normally fires long before.
TIMEOUT_FACTOR = 2.0
TIMEOUT_GRACE_S = 5.0
# Frames per clip without a position table to limit them: refused above this, before any frame is allocated.
MAX_NUM_FRAMES = 1024
# What the classifiers' on_error="skip" skips: a video that cannot be decoded, is not a usable video, or cannot be
# sampled as asked.
SKIPPABLE_ERRORS = (VideoDecodeError, VideoInputError, SamplingError)


@dataclass(frozen=True)
class ClipSpec:
    """What frames a caller wants from each input.

    Args:
        num_frames: frames per clip (T); ``None`` keeps every frame of in-memory clips (files need a count).
        num_clips: temporal clips per video (multi-view testing).
        num_crops: 1 (centre crop) or 3 (start, centre and end of the longer side) spatial crops per clip.
        sampler: a `sampling.get_sampler` name (``"tsn"``, ``"uniform"``, ``"dense"``).
        mode: ``"eval"`` (deterministic indices) or ``"train"`` (random, from the ``rng`` of the call).
        size: the resize target, ``{"shortest_edge": s}`` or ``{"height": h, "width": w}``; ``None`` keeps the
            decoded size.
        crop: ``(height, width)`` of the crop(s); ``None`` keeps the resized frames whole.
        resample: the Pillow filter of the resize (the video processor's ``resample``, bicubic by default).
        resize_while_decoding: decoded files are resized by the decoder (libswscale, bicubic) to ``size`` and only
            cropped after (the video processor's ``resize_while_decoding``); applies to a bicubic ``resample`` and
            a video backend (not frame folders, not frames in memory), which are otherwise resized with Pillow.
        max_shorter_side: frames with a longer shorter side are scaled down to it while decoding (the video
            processor's ``decode_max_shorter_side``), so a huge frame never exists as RGB.
        timeout: seconds to open and decode one video (``None``: no limit).
        backend: the `video_io` decoding backend.
        hwaccel: ``None`` (CPU) or the FFmpeg device type to decode on (``"cuda"``: NVDEC; `video_io.open_reader`).
        frame_template, frame_start_index: how the images of a frame folder are named.
    """

    num_frames: int | None = 8
    num_clips: int = 1
    num_crops: int = 1
    sampler: str = "tsn"
    mode: str = "eval"
    size: dict | None = None
    crop: tuple[int, int] | None = None
    resample: int = int(Image.Resampling.BICUBIC)
    resize_while_decoding: bool = False
    max_shorter_side: int | None = None
    timeout: float | None = 30.0
    backend: str = "pyav"
    hwaccel: str | None = None
    frame_template: str = "img_{:05d}.jpg"
    frame_start_index: int = 1
    sampler_options: dict = field(default_factory=dict)

    @classmethod
    def for_video_processor(cls, video_processor, num_frames: int | None, **options) -> ClipSpec:
        """The evaluation spec of an `ActionCLIPVideoProcessor`: its resize target, crop, filter and decode cap.

        ``options`` set any other field (``num_clips``, ``num_crops``, ``timeout``, ...); ``crop=None`` keeps the
        resized frames whole, ``size=None`` and ``crop=None`` the decoded frames (for the training augmentation).
        """
        return cls.for_evaluation(video_processor.evaluation_settings(), num_frames, **options)

    @classmethod
    def for_evaluation(cls, settings: dict, num_frames: int | None, **options) -> ClipSpec:
        """The evaluation spec of a video processor's `ActionCLIPVideoProcessor.evaluation_settings` (plain data:
        what an ONNX export records, read without torch); ``options`` as for :meth:`for_video_processor`."""
        values = {
            "num_frames": num_frames,
            "size": None if settings["size"] is None else dict(settings["size"]),
            "crop": tuple(settings["crop_size"])
            if settings["do_center_crop"] or options.get("num_crops", 1) > 1
            else None,
            "resample": int(settings["resample"]),
            "resize_while_decoding": bool(settings["resize_while_decoding"]),
            "max_shorter_side": int(settings["decode_max_shorter_side"]),
        }
        values.update(options)
        return cls(**values)

    @classmethod
    def for_decoding(cls, video_processor, num_frames: int | None, mode: str = "eval") -> ClipSpec:
        """The frames a video processor then transforms itself (the processor's and the video processor's own
        decoding): in evaluation resized by the decoder where the processor says so (the frames the pipeline
        gets, before its crop), else as decoded (shorter side capped at ``decode_max_shorter_side``)."""
        if mode == "eval":
            resized = cls.for_video_processor(video_processor, num_frames, crop=None)
            if resized.decoder_resizes:
                return resized
        return cls(num_frames=num_frames, mode=mode, max_shorter_side=video_processor.decode_max_shorter_side)

    @property
    def decoder_resizes(self) -> bool:
        """Whether files are resized to ``size`` by the decoder (libswscale, bicubic) rather than after decoding."""
        return bool(self.resize_while_decoding and self.size and self.resample == int(Image.Resampling.BICUBIC))

    @property
    def num_views(self) -> int:
        return self.num_clips * self.num_crops

    def build_sampler(self):
        """The frame sampler: indices ``(T,)`` for one view, ``(V, T)`` for several (views repeat per crop)."""
        base = get_sampler(self.sampler, num_frames=self.num_frames, mode=self.mode, **self.sampler_options)
        if self.num_views == 1:
            return base
        return get_sampler("multiview", num_clips=self.num_clips, base=base, num_crops=self.num_crops)


@dataclass(frozen=True)
class FrameFolder:
    """A video stored as one image per frame (``img_00001.jpg``, ...): ``frame_count`` images in ``path``."""

    path: str
    frame_count: int


# ---------------------------------------------------------------------- one input, in this process


def read_clip(source, spec: ClipSpec, rng=None) -> np.ndarray:
    """Decode a video source (or read a :class:`FrameFolder`) into uint8 ``(V, T, h, w, 3)`` frames as ``spec`` asks.

    ``rng`` (a numpy Generator, a seed or ``None``) drives the sampler in training mode.

    Raises:
        VideoDecodeError (and its subclasses): the source cannot be opened or decoded.
        VideoInputError: the decoded frames cannot give what ``spec`` asks (smaller than the crop).
        SamplingError: the sampler cannot choose frames (e.g. more clips than frames).
    """
    if spec.num_frames is None:
        raise VideoInputError(source, "a file needs a frame count: num_frames=None keeps every frame of a clip")
    sampler = spec.build_sampler()
    if isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(int(rng))
    if isinstance(source, FrameFolder):
        indices = np.asarray(sampler(int(source.frame_count), rng))
        frames = read_frame_folder(
            source.path, indices.reshape(-1), template=spec.frame_template, start_index=spec.frame_start_index
        )
        frames = frames.reshape(*indices.shape, *frames.shape[1:])
    else:
        size_option = {"size": spec.size} if spec.decoder_resizes else {"max_shorter_side": spec.max_shorter_side}
        frames = sample_and_read(
            source, sampler, rng=rng, timeout=spec.timeout, backend=spec.backend, hwaccel=spec.hwaccel, **size_option
        ).frames
    if frames.ndim == 4:
        frames = frames[None]
    return fit_clip(frames, spec, source)


def fit_clip(frames: np.ndarray, spec: ClipSpec, source="video") -> np.ndarray:
    """Resize and crop uint8 ``(V, T, H, W, 3)`` frames as ``spec`` asks -> uint8 ``(V, T, h, w, 3)``.

    View ``v`` gets crop ``v % num_crops`` (for 3 crops: start, centre, end of the longer side). Each output pixel is
    Pillow's resize of the whole frame followed by the crop (Pillow resamples the crop's box only).
    """
    views, length, height, width = frames.shape[:4]
    out_height, out_width = resized_shape(height, width, spec.size)
    if spec.crop is None:
        boxes = [(0, 0, out_height, out_width)] * views
    else:
        crop_height, crop_width = spec.crop
        if out_height < crop_height or out_width < crop_width:
            raise VideoInputError(
                source,
                f"frames of {height}x{width} pixels resized to {out_height}x{out_width} are smaller than the crop "
                f"{crop_height}x{crop_width}",
            )
        boxes = [
            crop_box(out_height, out_width, crop_height, crop_width, v % spec.num_crops, spec.num_crops)
            for v in range(views)
        ]
    box_height, box_width = boxes[0][2], boxes[0][3]
    resize = (out_height, out_width) != (height, width)
    if not resize and spec.crop is None:
        return frames
    output = np.empty((views, length, box_height, box_width, 3), dtype=np.uint8)
    scale_y, scale_x = height / out_height, width / out_width
    for view, (top, left, crop_height, crop_width) in enumerate(boxes):
        if not resize:  # already at the size (resized by the decoder): the crop is a slice
            output[view] = frames[view, :, top : top + crop_height, left : left + crop_width]
            continue
        for t in range(length):
            box = (left * scale_x, top * scale_y, (left + crop_width) * scale_x, (top + crop_height) * scale_y)
            image = Image.fromarray(frames[view, t]).resize((crop_width, crop_height), spec.resample, box=box)
            output[view, t] = np.asarray(image)
    return output


def clip_from_frames(video, spec: ClipSpec, rng=None) -> np.ndarray:
    """Decoded frames in memory -> uint8 ``(V, T, h, w, 3)``, sampled (when their length is not the clip length, or
    for several views) and resized and cropped as ``spec`` asks.

    ``video``: uint8 ``(T, H, W, 3)`` / ``(T, 3, H, W)`` (or 1 channel), float ones in [0, 1] (rounded to 8 bits),
    as a numpy array or torch tensor, or a list of PIL images / ``(H, W, C)`` frames.

    Raises:
        VideoInputError: not frames, or frames of the wrong shape, type or range.
    """
    frames = frames_as_uint8(video)
    if spec.num_frames is not None and (len(frames) != spec.num_frames or spec.num_views > 1):
        indices = np.asarray(spec.build_sampler()(len(frames), rng))
        frames = frames[indices.reshape(-1)].reshape(*indices.shape, *frames.shape[1:])
    if frames.ndim == 4:
        frames = frames[None]
    return fit_clip(frames, spec)


def frames_as_uint8(video, name: str = "video") -> np.ndarray:
    """One clip of decoded frames as uint8 ``(T, H, W, 3)`` RGB (layout, grayscale and float input resolved by the
    video processor's own rules)."""
    import torch

    from .video_processing_actionclip import _to_clip

    if not isinstance(video, (np.ndarray, torch.Tensor, list, tuple)):
        shape = getattr(video, "shape", None)
        raise VideoInputError(
            f"<{type(video).__name__}{' of shape ' + str(tuple(shape)) if shape is not None else ''}>",
            "expected a path, URL, bytes, a file object, frames (T, H, W, 3), a list of PIL images, or "
            "{'pixel_values': ...}",
        )

    clip, quantized = _to_clip(video, name, None, True)  # float (T, 3, H, W), 0-255
    if not quantized:
        clip = clip.round()
    return np.ascontiguousarray(clip.to(torch.uint8).permute(0, 2, 3, 1).numpy())


def crop_box(height: int, width: int, crop_height: int, crop_width: int, position: int, num_crops: int):
    """``(top, left, crop_height, crop_width)``: the centre crop (torchvision's rounding), or crop ``position`` of three
    along the longer side (start, centre, end)."""
    if num_crops == 1:
        return (
            int(round((height - crop_height) / 2.0)),
            int(round((width - crop_width) / 2.0)),
            crop_height,
            crop_width,
        )
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    if width >= height:
        left = (0, left, width - crop_width)[position]
    else:
        top = (0, top, height - crop_height)[position]
    return top, left, crop_height, crop_width


def is_decodable(item) -> bool:
    """Whether ``read_clip`` takes ``item`` (a video source or a frame folder), rather than ``clip_from_frames``."""
    return isinstance(item, FrameFolder) or is_video_source(item)


def prepare_clip(item, spec: ClipSpec, rng=None) -> np.ndarray:
    """Any video input -> uint8 ``(V, T, h, w, 3)``: decoded (:func:`read_clip`) or in memory (:func:`clip_from_frames`)."""
    decodable = is_decodable(item)
    try:
        return read_clip(item, spec, rng) if decodable else clip_from_frames(item, spec, rng)
    except SamplingError as error:
        # The sampler knows the frame count, not the input: name the file here, where it is known.
        if not decodable or isinstance(item, FrameFolder):
            raise
        raise SamplingError(f"video {describe_source(item)}: {error}") from error


def report_errors(prepared: Iterable, on_error: str) -> Iterator:
    """Results of :meth:`DecodePool.imap` with the errors handled: raised, or (``on_error="skip"``, the typed input
    errors of `SKIPPABLE_ERRORS` only) warned about as ``"skipped: <error>"`` and given as ``None``."""
    for item_result in prepared:
        if isinstance(item_result, BaseException):
            if on_error == "raise" or not isinstance(item_result, SKIPPABLE_ERRORS):
                raise item_result
            warnings.warn(f"skipped: {item_result}", UserWarning, stacklevel=2)
            yield None
        else:
            yield item_result


# ---------------------------------------------------------------------- worker processes


def default_num_workers() -> int:
    """One decoding process per CPU this process may use, leaving one for the model loop on larger machines."""
    cpus = available_cpus()
    return cpus if cpus <= 2 else cpus - 1


def _worker_main(connection, slots: _FrameSlots | None = None) -> None:
    """A worker's loop: receive ``(key, source, spec, rng, slot)``, send the frames (a header, then the frames in
    memory file ``slot``, or their raw bytes on the pipe) or the error. Ends when the parent closes its end or sends
    ``None``."""
    # Ctrl-C goes to the whole process group: the parent decides, and ends its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_memory()
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        key, source, spec, rng, slot = message
        cpu = time.process_time()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                frames = np.ascontiguousarray(read_clip(source, spec, rng))
                error = None
                if slots is None or slot is None or not slots.write(slot, frames):
                    slot = None  # through the pipe
            except Exception as raised:  # sent back and raised (or reported) in the parent, as in-process
                frames, error = None, raised
        notes = ([(str(w.message), w.category) for w in caught], time.process_time() - cpu)
        try:
            if error is None:
                connection.send(("frames", key, (frames.shape, slot), notes))
                if slot is None:
                    _write_all(connection.fileno(), memoryview(frames).cast("B"))
            else:
                connection.send(("error", key, _picklable(error, source), notes))
        except (BrokenPipeError, EOFError, OSError):
            return


def _new_array(shape) -> np.ndarray:
    """A new uint8 array whose memory is in place before it is written: a clip's megabytes in fresh pages would
    otherwise fault in one 4 KB page at a time as the copy touches them (2 ms a clip on this project's machine, more
    than the copy), where one populated mapping costs a tenth of that. The mapping is unmapped with the array."""
    size = int(np.prod(shape))
    if size < (1 << 20) or not hasattr(mmap, "MAP_POPULATE"):
        return np.empty(shape, dtype=np.uint8)
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
    return np.frombuffer(memory, dtype=np.uint8).reshape(shape)


class _FrameSlots:
    """The shared memory a worker hands its frames over in: one anonymous memory file (``memfd_create``) of
    ``SLOTS_PER_WORKER`` slots of ``SLOT_BYTES``, mapped once by each side.

    The parent chooses the slot of each item when it sends it (:meth:`take`): one neither in flight (the worker's
    ``slot_of`` says which are) nor lent. A
    received clip (:meth:`receive`) is lent to the consumer, its array viewing the slot's memory, while fewer than
    ``LENT_PER_WORKER`` are, else copied out; a lent slot is free again once nothing but this object holds the array
    lent from it (its reference count says so), so a slot is never written while a clip in it can be read. The
    consumer keeps what it was lent for as long as it likes: the mapping outlives the pool and goes with the last
    array.

    Made by the parent for each worker (the file travels to the worker with its start-up arguments). The file has no
    name: it goes away with the last process that holds or maps it, even one killed with SIGKILL.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self.mapped: mmap.mmap | None = None
        self.lent: list[np.ndarray | None] = [None] * SLOTS_PER_WORKER  # (parent) the array lent from each slot
        self.unheld = 0  # (parent) a lent array's reference count when the consumer no longer holds it

    @classmethod
    def create(cls) -> _FrameSlots | None:
        """The memory file of one worker, or ``None`` where the system has none (the frames then use the pipe)."""
        if not hasattr(os, "memfd_create"):
            return None
        try:
            fd = os.memfd_create("actionclip-frames", os.MFD_CLOEXEC)
        except OSError:
            return None
        try:
            os.ftruncate(fd, SLOTS_PER_WORKER * SLOT_BYTES)
        except OSError:
            os.close(fd)
            return None
        return cls(fd)

    def __reduce__(self):
        # Sent to the worker when it starts: the descriptor duplicated into the new process.
        return _FrameSlots._rebuild, (DupFd(self.fd),)

    @staticmethod
    def _rebuild(duplicate) -> _FrameSlots:
        return _FrameSlots(duplicate.detach())

    def _slot(self, slot: int, size: int) -> np.ndarray:
        if self.mapped is None:
            self.mapped = mmap.mmap(self.fd, SLOTS_PER_WORKER * SLOT_BYTES)
        return np.frombuffer(self.mapped, dtype=np.uint8, count=size, offset=slot * SLOT_BYTES)

    def write(self, slot: int, frames: np.ndarray) -> bool:
        """(In the worker.) Copy ``frames`` into ``slot``; ``False`` if they do not fit (they go through the pipe)."""
        if frames.nbytes > SLOT_BYTES:
            return False
        np.copyto(self._slot(slot, frames.nbytes), frames.reshape(-1))
        return True

    def _references(self, slot: int) -> int:
        return sys.getrefcount(self.lent[slot])

    def _is_lent(self, slot: int) -> bool:
        if self.lent[slot] is None:
            return False
        if self._references(slot) > self.unheld:
            return True
        self.lent[slot] = None
        return False

    def take(self, in_flight) -> int | None:
        """(In the parent.) A slot for the next item sent, neither ``in_flight`` nor lent; ``None``: the pipe."""
        for slot in range(SLOTS_PER_WORKER):
            if slot not in in_flight and not self._is_lent(slot):
                return slot
        return None

    def receive(self, slot: int, shape) -> np.ndarray:
        """(In the parent.) The frames in ``slot``: lent (a view of the memory) or copied into a new array."""
        in_memory = self._slot(slot, int(np.prod(shape)))
        if sum(self._is_lent(k) for k in range(SLOTS_PER_WORKER)) < LENT_PER_WORKER:
            self.lent[slot] = in_memory.reshape(shape)
            # What the count is while only this object holds it, counted the way `_is_lent` counts.
            self.unheld = self._references(slot)
            return self.lent[slot]
        frames = _new_array(shape)
        np.copyto(frames.reshape(-1), in_memory)
        return frames

    def close(self) -> None:
        """Close the file; the mapping stays while the consumer holds a clip lent from it."""
        # Not ``mmap.close()``: numpy's views of a mapping do not stop it from unmapping the memory under them. The
        # mapping object goes (and unmaps) with the last reference: this one, or the last lent array's.
        if self.fd >= 0:
            os.close(self.fd)
        self.mapped, self.fd, self.lent = None, -1, [None] * SLOTS_PER_WORKER


def _write_all(fd: int, data: memoryview) -> None:
    """The frames' bytes, as they lie in memory, after their header message: no pickling, no framing copy."""
    while data:
        data = data[os.write(fd, data) :]


def _read_into(fd: int, target: memoryview) -> None:
    """Fill ``target`` from the worker's end: the bytes land in the frames' tensor (`recv_bytes_into` would read
    them into a new buffer first, then copy).

    Raises:
        EOFError: the worker's end closed before all of them came (the worker died).
    """
    while target:
        count = os.readv(fd, [target])
        if count == 0:
            raise EOFError("the decoding worker closed its end in the middle of a clip")
        target = target[count:]


def _picklable(error: Exception, source) -> Exception:
    try:
        pickle.dumps(error)
        return error
    except Exception:
        return VideoDecodeError(source, f"{type(error).__name__}: {error}")


def _source_for_worker(source):
    """What a worker can receive: paths, URLs and bytes (file objects are decoded in the parent)."""
    if isinstance(source, (bytearray, memoryview)):
        return bytes(source)
    if hasattr(source, "__fspath__"):
        return os.fspath(source)
    return source


@contextlib.contextmanager
def _main_not_inherited():
    """Start processes that do not re-import the parent's ``__main__``: spawn and the fork server run the parent's
    main file again in every child (a script that imports torch and transformers costs seconds per worker, one read
    from stdin cannot be run again at all), and a worker needs nothing from it."""
    main = sys.modules.get("__main__")
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if main and name in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if "__spec__" not in saved:
                main.__dict__.pop("__spec__", None)


class _Worker:
    def __init__(self, context):
        self.connection, child = context.Pipe(duplex=True)
        self.slots = _FrameSlots.create()
        self.process = context.Process(
            target=_worker_main, args=(child, self.slots), name="actionclip-decode", daemon=True
        )
        try:
            with _main_not_inherited():
                self.process.start()
        except BaseException:
            self.connection.close()
            if self.slots is not None:
                self.slots.close()
            raise
        finally:
            child.close()
        self.in_flight: deque = deque()  # (key, source, spec, rng), in the order the worker handles them
        self.slot_of: dict[int, int | None] = {}  # the memory slot each item in flight was sent with
        self.started = time.monotonic()  # when the item at the head of in_flight was handed over (or reached)

    def send(self, job) -> None:
        if not self.in_flight:
            self.started = time.monotonic()
        self.in_flight.append(job)
        key, source, spec, rng = job
        slot = self.slots.take(self.slot_of.values()) if self.slots is not None else None
        self.connection.send((key, _source_for_worker(source), spec, rng, slot))
        self.slot_of[key] = slot

    def ask_to_stop(self) -> None:
        try:
            self.connection.send(None)
        except OSError:
            pass

    def stop(self, kill: bool = False, deadline: float | None = None) -> None:
        """End the process: by its own exit (asked with `ask_to_stop`) until ``deadline``, else killed."""
        if not kill:
            self.process.join(max(0.0, (deadline or time.monotonic() + 1.0) - time.monotonic()))
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5.0)
        self.connection.close()
        self.process.close()
        if self.slots is not None:
            self.slots.close()


class _FeedState:
    """What the feeder thread and the consuming generator share (under ``condition``)."""

    def __init__(self):
        self.condition = threading.Condition()
        self.ready: dict[int, object] = {}
        self.consumed = 0
        self.stop = False
        self.done = False
        self.total: int | None = None
        self.fatal: BaseException | None = None

    def finished(self, next_out: int) -> bool:
        """No result ``next_out`` will come: the feeder is done and had fewer jobs, or stopped on an error."""
        return self.done and (self.total is None or next_out >= self.total)


class DecodePool:
    """Decodes video sources in worker processes; :meth:`imap` yields results in input order.

    Args:
        num_workers: worker processes (default :func:`default_num_workers`); ``0`` decodes in this process.
        start_method: ``"forkserver"`` or ``"spawn"`` (default `START_METHOD`, forkserver); fork is refused (the
            parent holds torch's threads).

    Use as a context manager, or call :meth:`close`; an :meth:`imap` iterator that ends, fails or is closed ends
    the workers it started too.
    """

    def __init__(self, num_workers: int | None = None, start_method: str | None = None):
        start_method = start_method or START_METHOD
        if num_workers is None:
            num_workers = default_num_workers()
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise VideoInputError("num_workers", f"must be an integer >= 0, got {num_workers!r}")
        if start_method not in ("forkserver", "spawn"):
            raise VideoInputError("start_method", f"must be 'forkserver' or 'spawn', got {start_method!r}")
        self.num_workers = num_workers
        self.start_method = start_method
        self._workers: list[_Worker] = []
        self.worker_cpu_seconds = 0.0  # CPU time the workers spent on items (start-up excluded)

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """End every worker (they are started again by the next :meth:`imap`)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker.process.is_alive():
                worker.ask_to_stop()
        # One second for all of them together (a worker in the middle of a video finishes it first), then killed.
        deadline = time.monotonic() + 1.0
        for worker in workers:
            worker.stop(deadline=deadline)

    def _context(self):
        context = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            # Imported once by the fork server, so each worker starts as a fork of a process that has it.
            context.set_forkserver_preload([__name__])
        return context

    def imap(self, jobs: Iterable, ahead: int | None = None, local=None, tensors: bool = True) -> Iterator:
        """``jobs``: ``(item, spec, rng)`` triples (``rng`` an int seed or ``None``); a video source or a
        `FrameFolder` is decoded by a worker, frames in memory are resized and cropped here. Yields, in order, a uint8 tensor
        ``(V, T, h, w, 3)`` per job (a numpy array with ``tensors=False``: torch is not imported), or the exception
        that job raised (typed: `VideoDecodeError`,
        `VideoInputError`, `SamplingError`, `DecodeWorkerDiedError`, ...). At most ``ahead`` jobs (default 2 per
        worker) are read from ``jobs`` before their results are taken. ``local(item, spec, rng)`` prepares the items
        that are not decoded (default :func:`clip_from_frames`); its result is yielded as it is."""
        if tensors:
            import torch
        else:
            torch = None

        def prepare_here(item, spec, rng):
            if local is not None and not is_decodable(item):
                return local(item, spec, rng)
            frames = prepare_clip(item, spec, rng)
            return frames if torch is None else torch.from_numpy(frames)

        if self.num_workers == 0:
            for source, spec, rng in jobs:
                try:
                    yield prepare_here(source, spec, rng)
                except Exception as error:  # noqa: BLE001 - handed to the caller, as the workers' errors are
                    yield error
            return
        ahead = max(ahead or 0, ITEMS_PER_WORKER * self.num_workers)
        # A feeder thread hands jobs to the workers and receives their frames while the caller is busy elsewhere
        # (running the model): a worker's result does not fit in its pipe, so without a reader it would wait.
        state = _FeedState()
        feeder = threading.Thread(
            target=self._feed,
            args=(iter(jobs), ahead, prepare_here, state, torch),
            name="actionclip-feed",
            daemon=True,
        )
        feeder.start()
        next_out = 0
        try:
            while True:
                with state.condition:
                    while next_out not in state.ready and not state.finished(next_out):
                        state.condition.wait(0.5)
                    if next_out not in state.ready:
                        if state.fatal is not None:
                            raise state.fatal
                        return
                    result = state.ready.pop(next_out)
                    next_out += 1
                    state.consumed = next_out
                    state.condition.notify_all()
                yield result
        finally:
            # An error, a KeyboardInterrupt or the caller closing the iterator early: no thread or worker outlives it.
            with state.condition:
                state.stop = True
                state.condition.notify_all()
            feeder.join()
            self.close()

    def _feed(self, jobs: Iterator, ahead: int, prepare_here, state: _FeedState, torch) -> None:
        """The feeder thread: read jobs (at most ``ahead`` beyond what the caller took), dispatch, collect. ``torch``:
        the module, or None to give numpy arrays."""
        context = self._context()
        waiting: deque = deque()  # jobs read but not yet handed to a worker (or given back by a dead one)
        results: dict[int, object] = {}
        next_key = 0
        exhausted = False
        try:
            while not state.stop:
                while not exhausted and next_key - state.consumed < ahead:
                    try:
                        source, spec, rng = next(jobs)
                    except StopIteration:
                        exhausted = True
                        break
                    if is_decodable(source) and not hasattr(source, "read"):
                        waiting.append((next_key, source, spec, rng))
                    else:  # frames in memory, or a file object (it cannot travel): prepared here, in order
                        try:
                            results[next_key] = prepare_here(source, spec, rng)
                        except Exception as error:  # noqa: BLE001 - handed to the caller like the workers' errors
                            results[next_key] = error
                    next_key += 1
                self._dispatch(waiting, context, results)
                if results:
                    with state.condition:
                        state.ready.update(results)
                        state.condition.notify_all()
                    results = {}
                busy = any(worker.in_flight for worker in self._workers)
                if exhausted and not waiting and not busy:
                    break
                if busy:
                    self._collect(results, waiting, torch)
                else:  # everything read ahead is done: wait for the caller to take some
                    with state.condition:
                        if not state.stop and next_key - state.consumed >= ahead:
                            state.condition.wait(0.5)
        except BaseException as error:  # noqa: BLE001 - the jobs iterator's own error (or interrupt), for the caller
            state.fatal = error
        finally:
            with state.condition:
                state.ready.update(results)
                state.total = next_key if state.fatal is None else None
                state.done = True
                state.condition.notify_all()

    def _dispatch(self, waiting: deque, context, results: dict) -> None:
        while waiting:
            if len(self._workers) < self.num_workers:
                self._workers.append(_Worker(context))
            worker = min(self._workers, key=lambda w: len(w.in_flight))
            if len(worker.in_flight) >= ITEMS_PER_WORKER:
                return
            job = waiting.popleft()
            try:
                worker.send(job)
            except OSError:  # the worker died before taking it: noticed by _collect, which hands it on again
                pass
            except Exception as error:  # e.g. a file object that cannot be read
                worker.in_flight.pop()
                results[job[0]] = error

    def _collect(self, results: dict, waiting: deque, torch) -> None:
        """Wait for the next message (or a worker's death, or a stuck worker) and file what arrived."""
        by_handle = {}
        for worker in self._workers:
            if worker.in_flight:
                by_handle[worker.connection] = worker
                by_handle[worker.process.sentinel] = worker
        ready = wait(list(by_handle), timeout=1.0)
        for worker in {id(by_handle[h]): by_handle[h] for h in ready}.values():
            try:
                while worker.in_flight and worker.connection.poll():
                    self._receive(worker, results, torch)
            except (EOFError, OSError):
                pass
            if not worker.process.is_alive() and worker.in_flight:
                self._replace(worker, results, waiting, died=True)
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.in_flight:
                spec = worker.in_flight[0][2]
                if spec.timeout is not None and now - worker.started > TIMEOUT_FACTOR * spec.timeout + TIMEOUT_GRACE_S:
                    self._replace(worker, results, waiting, died=False)

    def _receive(self, worker: _Worker, results: dict, torch) -> None:
        kind, key, payload, (notes, cpu) = worker.connection.recv()
        self.worker_cpu_seconds += cpu
        worker.slot_of.pop(key, None)  # the slot is free again (or, lent, once the consumer drops the clip)
        if kind == "frames":
            shape, slot = payload
            if slot is None:
                frames = np.empty(shape, dtype=np.uint8) if torch is None else torch.empty(shape, dtype=torch.uint8)
                _read_into(
                    worker.connection.fileno(), memoryview(frames if torch is None else frames.numpy()).cast("B")
                )
            else:
                frames = worker.slots.receive(slot, shape)
                if torch is not None:
                    frames = torch.from_numpy(frames)
            results[key] = frames
        else:
            results[key] = payload
        worker.in_flight.popleft()
        worker.started = time.monotonic()
        for message, category in notes:
            warnings.warn(message, category, stacklevel=4)

    def _replace(self, worker: _Worker, results: dict, waiting: deque, died: bool) -> None:
        """The worker's current item gets a typed error; the items queued behind it go to another worker."""
        key, source, spec, _ = worker.in_flight.popleft()
        code = worker.process.exitcode
        worker.stop(kill=True)
        self._workers.remove(worker)
        if died:
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            results[key] = DecodeWorkerDiedError(
                source, f"the decoding worker process {how} while decoding it (a crash in the decoder?)"
            )
        else:
            results[key] = VideoTimeoutError(source, f"decoding did not finish within {spec.timeout} s; worker killed")
        waiting.extendleft(reversed(worker.in_flight))


__all__ = [
    "MAX_NUM_FRAMES",
    "SKIPPABLE_ERRORS",
    "ClipSpec",
    "DecodePool",
    "FrameFolder",
    "clip_from_frames",
    "default_num_workers",
    "fit_clip",
    "frames_as_uint8",
    "prepare_clip",
    "read_clip",
    "report_errors",
]
