"""Specification of the device-side transforms: uint8 frames handed over by the host become the same
``pixel_values`` as today's CPU transforms (evaluation and training augmentation), batched, in the model's dtype."""

import pytest
import torch
from tiny_models import random_videos, tiny_model
from video_factory import make_frames

from actionclip.device_transforms import pack_augmentations
from actionclip.errors import VideoProcessingError
from actionclip.modeling_actionclip import PatchEmbedding
from actionclip.video_processing_actionclip import ActionCLIPVideoProcessor

# One 8-bit level after normalisation, in the channel with the smallest std (the largest step).
ONE_LEVEL = 1 / (255 * 0.26130258)


@pytest.fixture(scope="module")
def processor():
    return ActionCLIPVideoProcessor(crop_size=32)


def clips_of_sizes(sizes, num_frames=4):
    """Real decoded-like frames (moving textures) of several sizes, uint8 (T, H, W, 3)."""
    return [torch.from_numpy(make_frames(num_frames, h, w, seed=i)) for i, (h, w) in enumerate(sizes)]


def padded_batch(crops):
    height = max(crop.shape[1] for crop in crops)
    width = max(crop.shape[2] for crop in crops)
    batch = torch.zeros(len(crops), crops[0].shape[0], height, width, 3, dtype=torch.uint8)
    for row, crop in enumerate(crops):
        batch[row, :, : crop.shape[1], : crop.shape[2]] = crop
    return batch


def test_frames_to_pixel_values_equals_the_cpu_evaluation_transform(processor):
    clips = clips_of_sizes([(48, 64), (40, 40), (64, 48)])
    for clip in clips:
        expected = processor(clip)["pixel_values"][0]
        handed_over = processor.evaluation_frames(clip)
        assert handed_over.dtype == torch.uint8 and handed_over.shape == (4, 32, 32, 3)
        got = processor.frames_to_pixel_values(handed_over)
        assert got.shape == expected.shape and got.dtype == torch.float32
        assert (got - expected).abs().max() < ONE_LEVEL / 100


def test_frames_to_pixel_values_is_batched_over_leading_axes_and_takes_the_dtype(processor):
    frames = torch.stack([processor.evaluation_frames(clip) for clip in clips_of_sizes([(48, 64)] * 6)])
    frames = frames.view(2, 3, 4, 32, 32, 3)  # (B, V, T, S, S, 3)
    full = processor.frames_to_pixel_values(frames)
    assert full.shape == (2, 3, 4, 3, 32, 32)
    half = processor.frames_to_pixel_values(frames, dtype=torch.bfloat16, device="cpu")
    assert half.dtype == torch.bfloat16
    # bfloat16 keeps 8 significant bits: within one 8-bit level of the float32 values.
    assert (half.float() - full).abs().max() <= ONE_LEVEL * 1.01


def test_frames_to_pixel_values_refuses_float_or_channels_first_frames(processor):
    with pytest.raises(VideoProcessingError, match="uint8"):
        processor.frames_to_pixel_values(torch.rand(4, 32, 32, 3))
    with pytest.raises(VideoProcessingError, match="uint8"):
        processor.frames_to_pixel_values(torch.zeros(4, 3, 32, 32, dtype=torch.uint8))


def test_device_augmentation_equals_the_cpu_augmentation_with_the_same_draws(processor):
    """Different frame sizes, crops, flips, jitter orders and grayscale in one batch: each clip within one 8-bit
    level of today's per-clip CPU augmentation drawn from the same seed."""
    clips = clips_of_sizes([(48, 64), (64, 48), (56, 80), (48, 48), (72, 64), (40, 52), (64, 64), (50, 70)])
    # grayscale_prob=0.5 so that both kinds of clip are in the batch.
    options = {"grayscale_prob": 0.5}
    expected, crops, draws = [], [], []
    for seed, clip in enumerate(clips):
        expected.append(processor(clip, training=True, seed=seed, **options)["pixel_values"][0])
        local = ActionCLIPVideoProcessor(crop_size=32, **options)
        crop, augmentation = local.crop_for_augmentation(clip, torch.Generator().manual_seed(seed))
        crops.append(crop)
        draws.append(augmentation)
    assert {a.flip for a in draws} == {True, False} and {a.grayscale for a in draws} == {True, False}
    assert len({tuple(op for op, _ in a.color_jitter) for a in draws}) > 2
    got = ActionCLIPVideoProcessor(crop_size=32, **options).augment_frames(
        padded_batch(crops), pack_augmentations(draws)
    )
    assert got.shape == (8, 4, 3, 32, 32)
    for row, reference in enumerate(expected):
        assert (got[row] - reference).abs().max() < ONE_LEVEL, f"clip {row}: {draws[row]}"


def test_crop_for_augmentation_draws_what_training_true_draws(processor):
    clip = clips_of_sizes([(48, 64)])[0]
    drawn = processor.sample_augmentation(48, 64, torch.Generator().manual_seed(7))
    crop, augmentation = processor.crop_for_augmentation(clip, torch.Generator().manual_seed(7))
    assert augmentation == drawn
    assert torch.equal(
        crop,
        clip[
            :,
            drawn.crop_top : drawn.crop_top + drawn.crop_height,
            drawn.crop_left : drawn.crop_left + drawn.crop_width,
        ],
    )


def test_device_augmentation_output_dtype(processor):
    clip = clips_of_sizes([(48, 64)])[0]
    crop, augmentation = processor.crop_for_augmentation(clip, torch.Generator().manual_seed(1))
    packed = pack_augmentations([augmentation])
    full = processor.augment_frames(crop[None], packed)
    half = processor.augment_frames(crop[None], packed, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    assert (half.float() - full).abs().max() <= ONE_LEVEL * 1.01


def test_patch_embedding_matmul_equals_the_strided_convolution():
    model = tiny_model()
    layer = model.vision_model.embeddings.patch_embedding
    assert isinstance(layer, PatchEmbedding)
    assert "vision_model.embeddings.patch_embedding.weight" in model.state_dict()
    pixels = random_videos(batch=3).flatten(0, 1)
    torch.testing.assert_close(layer(pixels), torch.nn.Conv2d.forward(layer, pixels), rtol=1e-5, atol=1e-5)
    # A frame whose sides are not multiples of the patch: the convolution drops the remainder, so does the matmul.
    odd = torch.randn(2, 3, 35, 37)
    torch.testing.assert_close(layer(odd), torch.nn.Conv2d.forward(layer, odd), rtol=1e-5, atol=1e-5)


def test_patch_embedding_reads_channels_last_pixel_values_as_the_convolution():
    """`frames_to_pixel_values` returns a channels-first view of channels-last memory: the patch embedding reads it
    (per pixel row of the patches on CPUs; gathered, for sides that are not multiples of the patch) with the
    convolution's values and gradients."""
    layer = tiny_model().vision_model.embeddings.patch_embedding
    for height, width in [(32, 32), (35, 37)]:
        frames = torch.randint(0, 256, (2, 3, height, width, 3), dtype=torch.uint8)
        pixels = ActionCLIPVideoProcessor(crop_size=32).frames_to_pixel_values(frames).flatten(0, 1)
        assert not pixels.is_contiguous() and pixels.is_contiguous(memory_format=torch.channels_last)
        reference = pixels.contiguous().requires_grad_()
        pixels = pixels.clone(memory_format=torch.channels_last).requires_grad_()
        out = layer(pixels)
        torch.testing.assert_close(out, torch.nn.Conv2d.forward(layer, reference), rtol=1e-5, atol=1e-5)
        out.square().sum().backward()
        weight_grad, layer.weight.grad = layer.weight.grad, None
        torch.nn.Conv2d.forward(layer, reference).square().sum().backward()
        torch.testing.assert_close(weight_grad, layer.weight.grad, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(pixels.grad, reference.grad, rtol=1e-4, atol=1e-4)
        layer.weight.grad = None


def test_checkpoints_load_into_the_matmul_patch_embedding(tmp_path):
    from actionclip import ActionCLIPModel

    model = tiny_model(seed=3).eval()
    model.save_pretrained(tmp_path)
    loaded = ActionCLIPModel.from_pretrained(tmp_path).eval()
    assert torch.equal(
        loaded.vision_model.embeddings.patch_embedding.weight, model.vision_model.embeddings.patch_embedding.weight
    )
    videos = random_videos()
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.get_video_features(videos).pooler_output, model.get_video_features(videos).pooler_output
        )
