"""Inputs to frames: what a consumer asks for (a :class:`ClipSpec`) and the uint8 frames it gets, in this process.

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

This module also owns the one reading of what a video input is: one frame or a clip (:func:`is_frame`), one clip or
a batch (:func:`split_clips`), and decoded frames in any layout as float ``(T, 3, H, W)`` (:func:`to_clip`, which the
video processor transforms). `video_decode_pool` runs :func:`read_clip` in worker processes.

This module imports torch only in the functions that take or return tensors, so decoding workers and the ONNX
classifier start without it; it is copied next to the weights with the pipeline (remote code), so it imports its
package's modules relatively.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .errors import SamplingError, VideoInputError, describe_source
from .sampling import get_sampler
from .video_common import resized_shape
from .video_io import is_video_source, read_frame_folder, sample_and_read

if TYPE_CHECKING:
    import torch

# Frames per clip without a position table to limit them: refused above this, before any frame is allocated.
MAX_NUM_FRAMES = 1024
# Decoding options a processor call may give (``decode_kwargs``): see :func:`decode_for_processor`. ``threads`` is
# accepted for compatibility (a video is decoded in one thread).
DECODE_OPTIONS = frozenset({"timeout", "backend", "shorter_side", "size", "max_shorter_side", "threads"})


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

    if not isinstance(video, (np.ndarray, torch.Tensor, list, tuple)):
        shape = getattr(video, "shape", None)
        raise VideoInputError(
            f"<{type(video).__name__}{' of shape ' + str(tuple(shape)) if shape is not None else ''}>",
            "expected a path, URL, bytes, a file object, frames (T, H, W, 3), a list of PIL images, or "
            "{'pixel_values': ...}",
        )

    clip, quantized = to_clip(video, name, None, True)  # float (T, 3, H, W), 0-255
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


# ---------------------------------------------------------------------- decoding for the processors


def decode_for_processor(source, spec: ClipSpec, rng=None, decode_kwargs: dict | None = None) -> np.ndarray:
    """The decoded uint8 frames ``(T, H, W, 3)`` of one video source that a processor then transforms itself
    (``spec`` from `ClipSpec.for_decoding`): the one decoding of `ActionCLIPProcessor` and `ActionCLIPVideoProcessor`.

    ``decode_kwargs`` (`DECODE_OPTIONS`) change ``spec`` for this source: ``timeout``, ``backend``,
    ``max_shorter_side``, and a resize target, ``shorter_side`` (pixels) or ``size`` (``(height, width)``).

    Raises:
        VideoInputError: an unknown decode option; and the errors of :func:`read_clip`.
    """
    decode_kwargs = decode_kwargs or {}
    unknown = set(decode_kwargs) - DECODE_OPTIONS
    if unknown:
        raise VideoInputError(source, f"unknown decode options {sorted(unknown)}")
    changes = {
        name: decode_kwargs[name] for name in ("timeout", "backend", "max_shorter_side") if name in decode_kwargs
    }
    if decode_kwargs.get("shorter_side") is not None:
        changes["size"] = {"shortest_edge": int(decode_kwargs["shorter_side"])}
    elif decode_kwargs.get("size") is not None:
        height, width = decode_kwargs["size"]
        changes["size"] = {"height": int(height), "width": int(width)}
    return read_clip(source, replace(spec, **changes), rng)[0]


def decode_sources(videos, num_frames: int, video_processor):
    """A video source (path, URL, bytes, file object), or a non-empty list of them, as ``num_frames`` TSN frames each
    for evaluation by ``video_processor`` (`ClipSpec.for_decoding`): uint8 ``(T, H, W, 3)``, or a list of them. Any
    other input (frames already decoded) is returned as it is."""
    if is_video_source(videos):
        items, single = [videos], True
    elif isinstance(videos, (list, tuple)) and videos and all(is_video_source(item) for item in videos):
        items, single = list(videos), False
    else:
        return videos
    spec = ClipSpec.for_decoding(video_processor, int(num_frames))
    clips = [decode_for_processor(item, spec) for item in items]
    return clips[0] if single else clips


# ---------------------------------------------------------------------- decoded frames in memory


def is_frame(item) -> bool:
    """Whether ``item`` is one frame (a PIL image, or an array or tensor of three dimensions ``(H, W, C)``) rather
    than a clip: how the processors and the pipeline tell a list of frames (one clip) from a list of videos."""
    return isinstance(item, Image.Image) or (isinstance(item, _array_types()) and item.ndim == 3)


def split_clips(videos) -> list:
    """The clips in ``videos``: the items of a 5-D array or tensor ``(B, T, ...)`` or of a list of clips, else
    ``[videos]`` (one clip: a 4-D array or tensor, a list of frames, a video source)."""
    if isinstance(videos, _array_types()) and videos.ndim == 5:
        return list(videos)
    if isinstance(videos, (list, tuple)) and not all(is_frame(item) for item in videos):
        return list(videos)
    return [videos]


def _array_types() -> tuple[type, ...]:
    """numpy arrays, and torch tensors where torch is loaded (no input can be a tensor before it is)."""
    torch = sys.modules.get("torch")
    return (np.ndarray,) if torch is None else (np.ndarray, torch.Tensor)


def to_clips(videos, input_data_format, convert_rgb) -> list[tuple[torch.Tensor, bool]]:
    """Every clip of ``videos`` (:func:`split_clips`) as :func:`to_clip` gives it.

    Raises:
        VideoInputError: an empty batch, or a clip :func:`to_clip` refuses.
    """
    if isinstance(videos, (list, tuple)) and not videos:
        raise VideoInputError("videos", "the batch is empty: give at least one clip")
    return [
        to_clip(item, f"videos[{index}]", input_data_format, convert_rgb)
        for index, item in enumerate(split_clips(videos))
    ]


def to_clip(clip, name: str, input_data_format, convert_rgb) -> tuple[torch.Tensor, bool]:
    """One clip of decoded frames -> float ``(T, 3, H, W)`` with 0-255 values (contiguous), and whether it came from
    8-bit frames.

    ``clip``: a uint8 or float (values in [0, 1]) numpy array or torch tensor ``(T, H, W, C)`` / ``(T, C, H, W)``
    (``input_data_format`` ``"channels_last"`` / ``"channels_first"``, or ``None``: numpy frames are channels last, a
    tensor is channels first unless only its last axis can be channels), or a list of PIL images or ``(H, W, C)``
    frames; ``C`` is 3, or 1 (grayscale, repeated to RGB when ``convert_rgb``). ``name`` names the input in errors.

    Raises:
        VideoInputError: a file, URL or bytes (not decoded frames), or frames of the wrong type, shape or range.
    """
    import torch

    if isinstance(clip, (str, bytes, bytearray, memoryview)) or hasattr(clip, "read") or hasattr(clip, "__fspath__"):
        raise VideoInputError(
            name,
            "the video processor takes decoded frames, not a file, URL or bytes: decode with "
            "actionclip.video_io.read_frames / sample_and_read, or pass the source to ActionCLIPProcessor",
        )
    if isinstance(clip, (list, tuple)):
        if not clip:
            raise VideoInputError(name, "the clip has no frames")
        if not all(is_frame(frame) for frame in clip):
            kinds = sorted({type(frame).__name__ for frame in clip})
            raise VideoInputError(
                name, f"a clip given as a list must hold PIL images or (H, W, C) frames, got {kinds}"
            )
        if any(isinstance(frame, Image.Image) for frame in clip):
            frames = [_pil_to_array(frame, f"{name}[{i}]") for i, frame in enumerate(clip)]
            input_data_format = "channels_last"
        else:
            frames = [torch.as_tensor(frame) if isinstance(frame, np.ndarray) else frame for frame in clip]
            if input_data_format is None and isinstance(clip[0], np.ndarray) and clip[0].shape[-1] in (1, 3):
                input_data_format = "channels_last"
        sizes = sorted({tuple(frame.shape) for frame in frames})
        if len(sizes) > 1:
            raise VideoInputError(name, f"its frames have different shapes {sizes}")
        clip = torch.stack([torch.as_tensor(frame) for frame in frames])
    elif isinstance(clip, Image.Image):
        raise VideoInputError(name, "a single PIL image is not a clip: pass a list of frames")
    elif isinstance(clip, np.ndarray):
        if input_data_format is None and clip.ndim == 4 and clip.shape[-1] in (1, 3):
            input_data_format = "channels_last"  # numpy frames are (T, H, W, C), as decoders give them
        clip = torch.from_numpy(np.ascontiguousarray(clip))
    elif not isinstance(clip, torch.Tensor):
        raise VideoInputError(
            name, f"unsupported type {type(clip).__name__}: give a numpy array, a torch tensor or a list of PIL images"
        )
    if clip.ndim != 4:
        raise VideoInputError(name, f"a clip must be 4-D (T, H, W, C) or (T, C, H, W), got shape {tuple(clip.shape)}")
    if input_data_format is None:
        first, last = clip.shape[1] in (1, 3), clip.shape[-1] in (1, 3)
        if not (first or last):
            raise VideoInputError(
                name, f"shape {tuple(clip.shape)} has no channel axis of size 1 or 3 (RGB) at position 1 or 3"
            )
        # A tensor is (T, C, H, W) unless only its last axis can be channels.
        input_data_format = "channels_first" if first else "channels_last"
    if input_data_format == "channels_last":
        clip = clip.permute(0, 3, 1, 2)
    if clip.shape[1] not in (1, 3):
        raise VideoInputError(
            name, f"expected 1 or 3 channels in {input_data_format} layout, got shape {tuple(clip.shape)}"
        )
    if clip.shape[0] == 0 or clip.shape[-1] == 0 or clip.shape[-2] == 0:
        raise VideoInputError(name, f"the clip is empty (shape {tuple(clip.shape)})")
    quantized = clip.dtype == torch.uint8
    if quantized:
        clip = clip.to(torch.float32)
    elif clip.dtype.is_floating_point:
        clip = clip.to(torch.float32)
        low, high = float(clip.min()), float(clip.max())
        if not (np.isfinite(low) and np.isfinite(high)) or low < -1e-3 or high > 1 + 1e-3:
            raise VideoInputError(
                name,
                f"float frames must hold values in [0, 1], got [{low:.4g}, {high:.4g}]; pass uint8 frames for 0-255",
            )
        clip = clip.clamp(0, 1) * 255.0
    else:
        raise VideoInputError(name, f"frames must be uint8 or float, got {clip.dtype}")
    if clip.shape[1] == 1:
        if not convert_rgb:
            raise VideoInputError(name, "grayscale frames need do_convert_rgb=True (ActionCLIP expects RGB)")
        clip = clip.expand(-1, 3, -1, -1)
    return clip.contiguous(), quantized


def _pil_to_array(image: Image.Image, name: str) -> torch.Tensor:
    import torch

    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array.copy())


__all__ = [
    "DECODE_OPTIONS",
    "MAX_NUM_FRAMES",
    "ClipSpec",
    "FrameFolder",
    "clip_from_frames",
    "crop_box",
    "decode_for_processor",
    "decode_sources",
    "fit_clip",
    "frames_as_uint8",
    "is_decodable",
    "is_frame",
    "prepare_clip",
    "read_clip",
    "split_clips",
    "to_clip",
    "to_clips",
]
