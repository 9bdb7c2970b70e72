"""The video transforms that run on the model's device, batched over clips: uint8 frames in, ``pixel_values`` out.

The host hands over uint8 frames ``(..., T, H, W, 3)`` (4x less to copy than float32, and nothing to compute on the
CPU); here they become CLIP-normalised ``(..., T, 3, H, W)`` in the model's dtype with a handful of whole-batch
tensor operations, on whatever device they are on:

- `normalize_uint8_frames`: rescale + normalise (evaluation; the frames are already resized and cropped);
- `augment_uint8_clips`: the training augmentation of `video_processing_actionclip` (multi-scale crop resized with
  Pillow's antialiased bilinear filter, horizontal flip, colour jitter in a per-clip order, grayscale) with the
  random parameters already drawn per clip on the host (`ClipAugmentation`, packed by `pack_augmentations`);
- `two_pass_resize`: Pillow's separable resize with `F.interpolate`, which the CPU transforms use too.

The results equal the per-clip CPU transforms of `ActionCLIPVideoProcessor` within one 8-bit level. Arithmetic
runs in float32 whatever the output dtype: bfloat16 keeps 8 significant bits, so resizing or jittering in it would
alone move values by one or two 8-bit levels; only the last operation writes the output dtype.

This module travels with the pipeline as remote code: it imports torch and `video_common` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F

from .video_common import normalization_constants

# Colour operations in the order of their factors in `pack_augmentations`' ``jitter_factors``.
COLOR_OPERATIONS: tuple[str, ...] = ("brightness", "contrast", "saturation", "hue")
# ITU-R 601 luma, as torchvision's and Pillow's grayscale conversion.
_LUMA = (0.2989, 0.587, 0.114)


def channels_first(frames: torch.Tensor) -> torch.Tensor:
    """``(..., T, H, W, 3)`` -> ``(..., T, 3, H, W)`` (a view: no copy)."""
    return frames.movedim(-1, -3)


def normalize_uint8_frames(
    frames: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    rescale_factor: float | None = 1 / 255,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 ``(..., T, H, W, 3)`` -> ``(..., T, 3, H, W)`` in ``dtype``: ``(x * rescale_factor - mean) / std``.

    A multiply and an add with per-channel constants (``x * scale + shift``) on the frames' device; ``mean`` /
    ``std`` None skip the normalisation and ``rescale_factor`` None the rescaling. The work stays in the frames'
    channels-last layout, where the constants repeat along each row (``W * 3`` values) and every operation runs
    over contiguous memory (a per-channel broadcast over a channels-first view cost 2.5x as much on a CPU); the
    result is a channels-first view of it (torch's ``channels_last`` memory format), which the model's patch
    embedding reads without a copy (``.contiguous()`` gives the usual layout).
    """
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    if frames.device.type == "cpu" and work == torch.float32:
        # numpy's conversion: its large arrays come in huge pages, where a new torch tensor of this size faults in
        # every 4 KB page (a batch of 8 clips of 8 frames at 224 px: 3.1 against 0.6 ms per clip on one core).
        values = torch.from_numpy(frames.numpy().astype("float32", order="C"))
    else:
        values = frames.to(work, memory_format=torch.contiguous_format, copy=True)
    rows = values.view(*frames.shape[:-2], frames.shape[-2] * frames.shape[-1])
    scale, shift = _normalization(
        None if mean is None else tuple(mean),
        None if std is None else tuple(std),
        rescale_factor,
        values.device,
        work,
    )
    width = frames.shape[-2]
    rows.mul_(scale.view(3).repeat(width)).add_(shift.view(3).repeat(width))
    return channels_first(values.to(dtype))


# ---------------------------------------------------------------------- training augmentation


def pack_augmentations(augmentations: Sequence) -> dict[str, torch.Tensor]:
    """`ClipAugmentation`s of B clips -> tensors the device transform takes (what the collator puts in a batch).

    Returns:
        ``crop_sizes`` (B, 2) int64 crop height and width; ``flip`` (B,) bool; ``jitter_order`` (B, 4) int64 index
        into `COLOR_OPERATIONS` of the operation applied at each step (-1: none); ``jitter_factors`` (B, 4) float32
        factor of each operation (in `COLOR_OPERATIONS` order); ``grayscale`` (B,) bool.
    """
    count = len(augmentations)
    order = torch.full((count, len(COLOR_OPERATIONS)), -1, dtype=torch.int64)
    # float32: the factors were drawn in float32, and some devices (MPS) have no float64.
    factors = torch.tensor([[1.0, 1.0, 1.0, 0.0]] * count, dtype=torch.float32)
    for row, augmentation in enumerate(augmentations):
        for step, (operation, factor) in enumerate(augmentation.color_jitter):
            column = COLOR_OPERATIONS.index(operation)
            order[row, step] = column
            factors[row, column] = float(factor)
    return {
        "crop_sizes": torch.tensor([[a.crop_height, a.crop_width] for a in augmentations], dtype=torch.int64),
        "flip": torch.tensor([bool(a.flip) for a in augmentations], dtype=torch.bool),
        "jitter_order": order,
        "jitter_factors": factors,
        "grayscale": torch.tensor([bool(a.grayscale) for a in augmentations], dtype=torch.bool),
    }


def two_pass_resize(frames: torch.Tensor, height: int, width: int, mode: str, quantized: bool) -> torch.Tensor:
    """Resize float ``(N, C, H, W)`` 0-255 frames as Pillow does: horizontal pass, then vertical pass, each clipped
    to [0, 255] (and rounded for 8-bit images, ``quantized``); ``mode`` an `F.interpolate` mode (antialiased
    when shrinking, as Pillow, except ``"nearest-exact"``)."""
    kwargs = {} if mode == "nearest-exact" else {"antialias": True, "align_corners": False}
    if frames.shape[-1] != width:
        frames = F.interpolate(frames, size=(frames.shape[-2], width), mode=mode, **kwargs).clamp_(0, 255)
        if quantized:
            frames = frames.round_()
    if frames.shape[-2] != height:
        frames = F.interpolate(frames, size=(height, width), mode=mode, **kwargs).clamp_(0, 255)
        if quantized:
            frames = frames.round_()
    return frames


def augment_uint8_clips(
    frames: torch.Tensor,
    augmentation: dict[str, torch.Tensor],
    crop_size: tuple[int, int],
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    rescale_factor: float | None = 1 / 255,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The training augmentation of B clips at once, on the frames' device.

    Args:
        frames: uint8 ``(B, T, H, W, 3)``: clip ``b``'s multi-scale crop in its top-left
            ``crop_sizes[b]`` pixels (the rest is padding, ignored).
        augmentation: the random parameters, as `pack_augmentations` returns them (on any device).
        crop_size: the output ``(height, width)``.
        mean, std, rescale_factor: the normalisation (None skips it).
        dtype: the output dtype (the model's).

    Returns:
        ``(B, T, 3, crop_height, crop_width)`` normalised frames in ``dtype``.
    """
    device = frames.device
    batch, num_frames = frames.shape[:2]
    target_height, target_width = crop_size
    # Every decision below is taken on the CPU, from one copy of the parameters (one wait for the device at most,
    # none when they are CPU tensors, as the collator makes them); indices go to the device without blocking.
    control = torch.cat(
        [
            augmentation["crop_sizes"].to(torch.int64),
            augmentation["flip"].to(torch.int64)[:, None],
            augmentation["jitter_order"].to(torch.int64),
            augmentation["grayscale"].to(torch.int64)[:, None],
        ],
        dim=1,
    ).cpu()
    sizes, flip, order, grayscale = control[:, :2], control[:, 2], control[:, 3:-1], control[:, -1]
    # Crops of one size resize together (TSN's multi-scale crop has at most a dozen sizes): the same antialiased
    # bilinear passes as the CPU augmentation, one call per size, whatever the batch size.
    groups: dict[tuple[int, int], list[int]] = {}
    for row, (height, width) in enumerate(sizes.tolist()):
        groups.setdefault((height, width), []).append(row)
    clips = torch.empty((batch, num_frames, 3, target_height, target_width), dtype=torch.float32, device=device)
    uint8_clips = channels_first(frames)
    for (height, width), rows in groups.items():
        index = _on_device(torch.tensor(rows), device)
        crops = uint8_clips[index, :, :, :height, :width].to(torch.float32).flatten(0, 1)
        resized = two_pass_resize(crops, target_height, target_width, "bilinear", quantized=False)
        clips[index] = resized.view(len(rows), num_frames, 3, target_height, target_width)
    if bool(flip.any()):
        flipped = _on_device(flip.nonzero().flatten(), device)
        clips[flipped] = clips[flipped].flip(-1)
    if bool((order >= 0).any()) or bool(grayscale.any()):
        factors = augmentation["jitter_factors"].cpu()
        clips = _color_jitter(clips / 255.0, order, factors, grayscale.bool()) * 255.0
    return normalize_values(clips, mean, std, rescale_factor, dtype)


def normalize_values(
    clips: torch.Tensor,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    rescale_factor: float | None,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Float ``(..., 3, H, W)`` with 0-255 values -> ``(x * rescale_factor - mean) / std`` in ``dtype``, as one
    multiply-add with per-channel constants computed in float64 (``x * scale + shift``), in the input's dtype."""
    scale, shift = _normalization(
        None if mean is None else tuple(mean),
        None if std is None else tuple(std),
        rescale_factor,
        clips.device,
        clips.dtype,
    )
    return torch.addcmul(shift, clips, scale).to(dtype)


@lru_cache(maxsize=64)
def _normalization(mean, std, rescale_factor, device: torch.device, dtype: torch.dtype):
    """``(scale, shift)`` ``(3, 1, 1)`` on ``device``: computed in float64 once per device and dtype (a copy to a GPU
    from ordinary host memory waits for the device's queue; later batches reuse them)."""
    scale, shift = normalization_constants(mean, std, rescale_factor)
    return (
        torch.from_numpy(scale).to(device=device, dtype=dtype).view(3, 1, 1),
        torch.from_numpy(shift).to(device=device, dtype=dtype).view(3, 1, 1),
    )


def _on_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small CPU tensor on ``device``, from pinned memory to a GPU so that the copy does not wait."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def _luma(clips: torch.Tensor) -> torch.Tensor:
    """``(..., 3, H, W)`` -> ``(..., 1, H, W)`` grayscale."""
    red, green, blue = clips.unbind(-3)
    return (red * _LUMA[0] + green * _LUMA[1] + blue * _LUMA[2]).unsqueeze(-3)


def _blend(clips: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (clips * factor + other * (1 - factor)).clamp_(0, 1)


def _brightness(clips: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (clips * factor).clamp_(0, 1)


def _contrast(clips: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    # The mean gray level of each frame, as torchvision's adjust_contrast on a (T, C, H, W) clip.
    return _blend(clips, _luma(clips).mean(dim=(-3, -2, -1), keepdim=True), factor)


def _saturation(clips: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(clips, _luma(clips), factor)


def _hue(clips: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``shift`` turns, keeping value (max channel) and saturation (HSV, as Pillow)."""
    value, _ = clips.max(dim=-3)
    low, _ = clips.min(dim=-3)
    chroma = value - low
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    red, green, blue = clips.unbind(-3)
    # Hue in sextants [0, 6): which channel is the largest decides the sextant pair.
    hue = torch.where(
        value == red,
        (green - blue) / safe,
        torch.where(value == green, (blue - red) / safe + 2, (red - green) / safe + 4),
    )
    hue = torch.where(chroma > 0, hue, torch.zeros_like(hue))
    hue = torch.remainder(hue / 6 + shift.squeeze(-3), 1.0) * 6
    # Back from (hue, chroma, value): channel n = value - chroma * clamp(min(k, 4 - k), 0, 1), k = (n + hue) mod 6.
    offsets = (5 - 2 * torch.arange(3, device=clips.device, dtype=clips.dtype)).view(3, 1, 1)  # 5, 3, 1
    k = torch.remainder(offsets + hue.unsqueeze(-3), 6.0)
    ramp = torch.minimum(k, 4 - k).clamp_(0, 1)
    return (value.unsqueeze(-3) - chroma.unsqueeze(-3) * ramp).clamp_(0, 1)


_OPERATIONS = (_brightness, _contrast, _saturation, _hue)


def _color_jitter(
    clips: torch.Tensor, order: torch.Tensor, factors: torch.Tensor, grayscale: torch.Tensor
) -> torch.Tensor:
    """Colour jitter on ``(B, T, 3, H, W)`` [0, 1] clips, each clip its operations in its own order, then grayscale.

    ``order`` (B, 4), ``factors`` (B, 4) and ``grayscale`` (B,) are CPU tensors. Per step and operation, the clips
    doing that operation at that step go through it together (at most 16 operations per batch, each on all its
    clips at once)."""
    device = clips.device
    for step in range(order.shape[1]):
        for operation, function in enumerate(_OPERATIONS):
            rows = (order[:, step] == operation).nonzero().flatten()
            if rows.numel():
                selected = _on_device(rows, device)
                factor = _on_device(factors[rows, operation].to(clips.dtype), device).view(-1, 1, 1, 1, 1)
                clips[selected] = function(clips[selected], factor)
    if bool(grayscale.any()):
        selected = _on_device(grayscale.nonzero().flatten(), device)
        clips[selected] = _luma(clips[selected]).expand(-1, -1, 3, -1, -1)
    return clips


__all__ = [
    "COLOR_OPERATIONS",
    "augment_uint8_clips",
    "channels_first",
    "normalize_uint8_frames",
    "normalize_values",
    "pack_augmentations",
    "two_pass_resize",
]
