"""Specification of the video processor: decoded frames -> CLIP-normalised ``pixel_values`` (B, T, C, H, W)."""

import numpy as np
import pytest
import torch
from PIL import Image

from actionclip.errors import VideoInputError
from actionclip.video_processing_actionclip import (
    MULTI_SCALE_CROP_SCALES,
    ActionCLIPVideoProcessor,
    ClipAugmentation,
    VideoProcessingError,
    fixed_crop_positions,
)

MEAN = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(3, 1, 1)
STD = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(3, 1, 1)
# One 8-bit level after normalisation, in the channel with the smallest std (the largest step).
ONE_LEVEL = 1 / (255 * 0.26130258)
NO_COLOUR = {"color_jitter_prob": 0.0, "grayscale_prob": 0.0}


def to_unit(pixel_values):
    """Undo the CLIP normalisation: back to [0, 1] values."""
    return pixel_values * STD + MEAN


@pytest.fixture(scope="module")
def raw(reference_inputs):
    return reference_inputs["raw_frames_uint8"]


@pytest.fixture(scope="module")
def processor():
    return ActionCLIPVideoProcessor(crop_size=32)


def test_torch_resize_matches_the_original_within_one_8bit_level(raw, reference_inputs, processor):
    """The original resized PIL images (8-bit, bicubic, a = -0.5, antialiased, horizontal pass then vertical pass,
    rounding to 8 bits in between). The torch path runs the same kernel and passes with ``interpolate`` in float32,
    rounding between and after the passes; float32 against Pillow's fixed-point arithmetic flips the rounding of a
    few values by one level. So the tolerance is one 8-bit level after normalisation, 1 / (255 * min(std)) = 0.01501,
    and such flips must stay rare (measured: max 0.01501, 0.01 % of the values differ)."""
    pixel_values = processor(raw)["pixel_values"]
    error = (pixel_values - reference_inputs["pixel_values"]).abs()
    assert pixel_values.shape == (4, 8, 3, 32, 32) and pixel_values.dtype == torch.float32
    assert error.max() <= ONE_LEVEL + 1e-5
    assert (error > 1e-5).float().mean() < 1e-3


def test_pil_backend_reproduces_the_original_exactly(raw, reference_inputs, processor):
    """Pillow itself on the same 8-bit frames, then the same float32 arithmetic: bit for bit."""
    pixel_values = processor(raw, resample_backend="pil")["pixel_values"]
    assert torch.equal(pixel_values, reference_inputs["pixel_values"])


def test_crop_size_alone_implies_the_original_resize():
    assert ActionCLIPVideoProcessor().size.shortest_edge == 256
    assert ActionCLIPVideoProcessor(crop_size=224).size.shortest_edge == 256
    assert ActionCLIPVideoProcessor(crop_size=32).size.shortest_edge == 36
    assert ActionCLIPVideoProcessor(crop_size=336, size=400).size.shortest_edge == 400


def test_every_input_layout_gives_the_same_pixel_values(raw, processor):
    clip = raw[1]  # (T, H, W, 3) uint8
    expected = processor(clip.numpy())["pixel_values"]
    assert expected.shape == (1, 8, 3, 32, 32)
    same = [
        processor(clip)["pixel_values"],  # tensor (T, H, W, C)
        processor(clip.permute(0, 3, 1, 2))["pixel_values"],  # tensor (T, C, H, W)
        processor([Image.fromarray(frame) for frame in clip.numpy()])["pixel_values"],
        processor(list(clip.numpy()))["pixel_values"],
        processor([clip.numpy()])["pixel_values"],
    ]
    for pixel_values in same:
        assert torch.equal(pixel_values, expected)
    # Float frames in [0, 1] skip the 8-bit rounding between passes: within a level.
    as_float = processor(clip.float() / 255)["pixel_values"]
    assert (as_float - expected).abs().max() <= ONE_LEVEL + 1e-5


def test_batch_of_clips_of_different_sizes(raw, processor):
    small = raw[0, :, :40, :50]
    pixel_values = processor([raw[0], small, raw[2].numpy()])["pixel_values"]
    assert pixel_values.shape == (3, 8, 3, 32, 32)
    assert torch.equal(pixel_values[1], processor(small)["pixel_values"][0])


def test_grayscale_frames_become_rgb(raw, processor):
    gray = raw[0, ..., :1]  # (T, H, W, 1)
    unit = to_unit(processor(gray.numpy())["pixel_values"])
    assert unit.shape == (1, 8, 3, 32, 32)
    assert torch.allclose(unit[:, :, 0], unit[:, :, 1], atol=1e-5) and torch.allclose(
        unit[:, :, 1], unit[:, :, 2], atol=1e-5
    )


def test_return_numpy(raw, processor):
    pixel_values = processor(raw[:2], return_tensors="np")["pixel_values"]
    assert isinstance(pixel_values, np.ndarray) and pixel_values.shape == (2, 8, 3, 32, 32)


@pytest.mark.parametrize(
    "bad, match",
    [
        ("/videos/a.mp4", "decoded frames"),
        (b"\x00\x00\x00\x18ftypmp42", "decoded frames"),
        (np.zeros((45, 61, 3), np.uint8), "4-D"),
        (np.zeros((8, 45, 61, 5), np.uint8), "channel"),
        (np.zeros((8, 45, 61, 3), np.int16), "uint8 or float"),
        (np.full((8, 45, 61, 3), 2.0, np.float32), r"\[0, 1\]"),
        (np.full((8, 45, 61, 3), np.nan, np.float32), r"\[0, 1\]"),
        (np.zeros((0, 45, 61, 3), np.uint8), "empty"),
        ([], "empty"),
        (Image.new("RGB", (8, 8)), "single PIL image"),
        ([np.zeros((8, 9, 9, 3), np.uint8), np.zeros((6, 9, 9, 3), np.uint8)], "different numbers of frames"),
        ([np.zeros((9, 9, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)], "different shapes"),
        ({"frames": 1}, "unsupported type"),
    ],
)
def test_bad_videos_raise_video_input_error(processor, bad, match):
    with pytest.raises(VideoInputError, match=match):
        processor(bad)


@pytest.mark.parametrize(
    "options",
    [
        {"resample_backend": "cv2"},
        {"grayscale_prob": 1.5},
        {"color_jitter_prob": -0.1},
        {"hue": 0.7},
        {"brightness": -1},
        {"multi_scale_crop_scales": []},
        {"multi_scale_crop_scales": [1.0, 1.5]},
        {"max_distort": -1},
        {"do_sample_frames": True},
        {"resample": 99},
        {"crop_size": 0},
        {"size": {"longest": 3}},
    ],
)
def test_bad_options_raise_video_processing_error(options):
    with pytest.raises(VideoProcessingError):
        ActionCLIPVideoProcessor(**{"crop_size": 32, **options})


def test_unknown_call_option_is_rejected(raw, processor):
    with pytest.raises(VideoProcessingError, match="do_flipp"):
        processor(raw[0], do_flipp=False)


def test_training_output_shape_and_dtype(raw, processor):
    pixel_values = processor(raw, training=True, seed=0)["pixel_values"]
    assert pixel_values.shape == (4, 8, 3, 32, 32) and pixel_values.dtype == torch.float32
    assert torch.isfinite(pixel_values).all()


def test_training_is_deterministic_with_a_seed_or_a_generator(raw, processor):
    first = processor(raw, training=True, seed=3)["pixel_values"]
    assert torch.equal(first, processor(raw, training=True, seed=3)["pixel_values"])
    generated = processor(raw, training=True, generator=torch.Generator().manual_seed(3))["pixel_values"]
    assert torch.equal(first, generated)
    assert not torch.equal(first, processor(raw, training=True, seed=4)["pixel_values"])


def test_one_set_of_random_parameters_per_clip_keeps_identical_frames_identical(raw, processor):
    clip = raw[0, :1].expand(8, -1, -1, -1)  # one frame repeated 8 times
    for seed in range(10):
        pixel_values = processor(clip, training=True, seed=seed)["pixel_values"][0]
        assert torch.equal(pixel_values, pixel_values[:1].expand_as(pixel_values))


def left_to_right_ramp(frames=4, height=48, width=64):
    ramp = torch.linspace(10, 245, width).round().to(torch.uint8)
    return ramp.view(1, 1, width, 1).expand(frames, height, width, 3).contiguous()


def is_increasing_left_to_right(pixel_values):
    columns = to_unit(pixel_values).mean(dim=(0, 1, 2, 3))  # mean over B, T, C, H -> (W,)
    return bool((columns[1:] >= columns[:-1] - 1e-6).all())


def test_flip_off_keeps_left_and_right(processor):
    clip = left_to_right_ramp()
    for seed in range(12):
        pixel_values = processor(clip, training=True, seed=seed, do_flip=False, **NO_COLOUR)["pixel_values"]
        assert is_increasing_left_to_right(pixel_values)


def test_flip_on_mirrors_some_clips(processor):
    clip = left_to_right_ramp()
    flipped = [
        not is_increasing_left_to_right(processor(clip, training=True, seed=seed, **NO_COLOUR)["pixel_values"])
        for seed in range(24)
    ]
    assert 3 <= sum(flipped) <= 21


def test_augmentation_crops_at_the_fixed_positions_and_scales(processor):
    generator = torch.Generator().manual_seed(0)
    height, width = 120, 160
    sides = {int(height * s) for s in MULTI_SCALE_CROP_SCALES}
    draws = [processor.sample_augmentation(height, width, generator) for _ in range(400)]
    for draw in draws:
        assert draw.crop_height in sides and draw.crop_width in sides
        assert (draw.crop_top, draw.crop_left) in fixed_crop_positions(
            height, width, draw.crop_height, draw.crop_width
        )
    ranks = {side: rank for rank, side in enumerate(sorted(sides, reverse=True))}
    assert all(abs(ranks[d.crop_height] - ranks[d.crop_width]) <= 1 for d in draws)  # max distort 1
    assert len({(d.crop_top, d.crop_left, d.crop_height, d.crop_width) for d in draws}) > 40
    assert 150 < sum(d.flip for d in draws) < 250
    assert 280 < sum(bool(d.color_jitter) for d in draws) < 360
    assert 50 < sum(d.grayscale for d in draws) < 115


def test_fixed_crop_positions_are_the_13_of_tsn():
    positions = fixed_crop_positions(100, 140, 60, 60)  # steps: 10 down, 20 across
    assert positions[:5] == [(0, 0), (0, 80), (40, 0), (40, 80), (20, 40)]
    assert len(positions) == 13 and len(set(positions)) == 13
    assert (10, 20) in positions and (30, 60) in positions


def test_colour_jitter_parameters_apply_to_every_frame(raw, processor):
    clip = raw[0].permute(0, 3, 1, 2).float()
    whole = ClipAugmentation(0, 0, 45, 45, False, (), False)
    plain = to_unit(processor.apply_augmentation(clip, whole, crop_size=45))
    darker = to_unit(
        processor.apply_augmentation(
            clip, ClipAugmentation(0, 0, 45, 45, False, (("brightness", 0.5),), False), crop_size=45
        )
    )
    assert torch.allclose(darker, plain * 0.5, atol=1e-5)
    gray = to_unit(processor.apply_augmentation(clip, ClipAugmentation(0, 0, 45, 45, False, (), True), crop_size=45))
    assert torch.allclose(gray[:, 0], gray[:, 1], atol=1e-5) and not torch.allclose(
        plain[:, 0], plain[:, 1], atol=1e-2
    )


def test_save_and_load_keeps_every_option(tmp_path, raw):
    processor = ActionCLIPVideoProcessor(crop_size=32, do_flip=False, resample_backend="pil", grayscale_prob=0.1)
    processor.save_pretrained(tmp_path)
    loaded = ActionCLIPVideoProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    assert loaded.do_flip is False and loaded.resample_backend == "pil" and loaded.size.shortest_edge == 36
    assert torch.equal(loaded(raw[0])["pixel_values"], processor(raw[0])["pixel_values"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_matches_cpu(raw, processor):
    cpu = processor(raw)["pixel_values"]
    gpu = processor(raw, device="cuda")["pixel_values"]
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max() <= ONE_LEVEL + 1e-5
    trained = processor(raw, device="cuda", training=True, seed=0)["pixel_values"]
    assert trained.shape == (4, 8, 3, 32, 32) and trained.device.type == "cuda"
