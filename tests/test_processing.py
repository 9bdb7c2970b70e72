"""Specification of ActionCLIPProcessor: raw videos and texts -> pixel_values, input_ids, attention_mask."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from actionclip.data.video_writer import write_video
from actionclip.errors import InvalidLabelsError, InvalidTemplateError, MissingProcessorError, VideoDecodeError
from actionclip.processing_actionclip import ActionCLIPProcessor
from actionclip.prompts import PromptTemplater
from actionclip.video_io import read_frames
from actionclip.video_processing_actionclip import ActionCLIPVideoProcessor, VideoProcessingError

STD = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(3, 1, 1)
MEAN = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(3, 1, 1)
NUM_VIDEO_FRAMES = 24


def frame_brightness(pixel_values):
    """Mean 0-255 value of each frame of ``(B, T, C, H, W)`` pixel values -> ``(B, T)``."""
    return ((pixel_values * STD + MEAN) * 255).mean(dim=(-3, -2, -1))


def brightness_of_frame(index):
    return 30 + 8 * index


@pytest.fixture(scope="module")
def processor():
    return ActionCLIPProcessor.from_settings(image_size=32, num_frames=8)


@pytest.fixture(scope="module")
def flat_video(tmp_path_factory):
    """24 flat grey frames, frame i at level 30 + 8 i, so a decoded frame tells which frame it was."""
    frames = np.stack([np.full((48, 64, 3), brightness_of_frame(i), np.uint8) for i in range(NUM_VIDEO_FRAMES)])
    path = tmp_path_factory.mktemp("videos") / "flat.mp4"
    write_video(path, frames, fps=24.0)
    return path


@pytest.fixture(scope="module")
def textured_video(tmp_path_factory):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(20, 40, 56, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("videos") / "textured.mp4"
    write_video(path, frames, fps=20.0)
    return path


def test_label_prompts_tokenize_like_the_original(processor, reference_inputs):
    """Template-major prompts give the original's token ids; only the padding id differs (ours pads with the
    end-of-text id, the original with 0), and the attention mask marks the padding."""
    encoded = processor.encode_labels(reference_inputs["classes"])
    expected = reference_inputs["template_major_token_ids"]
    mask = encoded["attention_mask"].bool()
    assert encoded["input_ids"].shape == expected.shape == (96, 77)
    assert torch.equal(encoded["input_ids"][mask], expected[mask])
    assert (expected[~mask] == 0).all()


def test_training_texts_tokenize_like_the_original(processor, reference_inputs):
    classes = reference_inputs["classes"]
    labels = [classes[i] for i in reference_inputs["train_labels"].tolist()]
    texts = processor.templater.format_prompts(labels, reference_inputs["train_template_ids"].tolist())
    encoded = processor(text=texts, padding="max_length")
    mask = encoded["attention_mask"].bool()
    assert torch.equal(encoded["input_ids"][mask], reference_inputs["train_token_ids"][mask])


def test_encode_labels_with_other_templates(processor):
    encoded = processor.encode_labels(["surfing", "juggling"], templates="single")
    assert encoded["input_ids"].shape == (2, 77)
    single = processor(text=["a video of a person surfing.", "a video of a person juggling."], padding="max_length")
    assert torch.equal(encoded["input_ids"], single["input_ids"])
    with pytest.raises(InvalidLabelsError):
        processor.encode_labels([])
    with pytest.raises(InvalidTemplateError):
        processor.encode_labels(["surfing"], templates=["no placeholder"])


def test_long_text_is_truncated_with_a_warning_keeping_end_of_text(processor):
    with pytest.warns(UserWarning, match=r"text\[1\].*truncated"):
        encoded = processor(text=["short", "word " * 100], padding="max_length")
    assert encoded["input_ids"].shape == (2, 77)
    assert encoded["input_ids"][1, -1] == processor.tokenizer.eos_token_id
    assert encoded["attention_mask"][1].all()


def test_padding_to_the_longest(processor):
    encoded = processor(text=["a", "a video of a person"], padding=True)
    assert encoded["input_ids"].shape == (2, 7)


@pytest.mark.parametrize("text", [[], [3], ["ok", None], 12])
def test_bad_text_raises(processor, text):
    with pytest.raises(InvalidLabelsError):
        processor(text=text)


def test_no_input_raises(processor):
    with pytest.raises(VideoProcessingError):
        processor()


def test_video_file_is_decoded_and_tsn_sampled(processor, flat_video):
    """Evaluation takes the centre frame of each of 8 segments of 24 frames: frames 1, 4, ..., 22."""
    pixel_values = processor(videos=str(flat_video))["pixel_values"]
    assert pixel_values.shape == (1, 8, 3, 32, 32) and pixel_values.dtype == torch.float32
    expected = torch.tensor([brightness_of_frame(i) for i in range(1, 24, 3)], dtype=torch.float32)
    assert torch.allclose(frame_brightness(pixel_values)[0], expected, atol=2.0)


def test_path_bytes_and_file_object_give_the_same_result(processor, textured_video):
    from_path = processor(videos=textured_video)["pixel_values"]
    data = textured_video.read_bytes()
    assert torch.equal(processor(videos=data)["pixel_values"], from_path)
    assert torch.equal(processor(videos=io.BytesIO(data))["pixel_values"], from_path)


@pytest.mark.parametrize("resize_while_decoding", [True, False])
def test_a_file_equals_its_decoded_frames(processor, textured_video, resize_while_decoding):
    """A file gives the video processor's transform of its frames as the decoder gives them: resized to the
    processor's size by the decoder (the default), or at full size."""
    indices = np.array([(2 * i * 20 + 20 - 8) // 16 for i in range(8)])  # TSN evaluation, 20 frames
    video_processor = processor.video_processor
    size = {"shortest_edge": video_processor.size["shortest_edge"]} if resize_while_decoding else None
    frames = read_frames(textured_video, indices, size=size)
    try:
        video_processor.resize_while_decoding = resize_while_decoding
        from_file = processor(videos=textured_video)["pixel_values"]
    finally:
        video_processor.resize_while_decoding = True
    assert torch.equal(from_file, processor(videos=frames)["pixel_values"])
    assert torch.equal(from_file, video_processor(frames)["pixel_values"])


def sampled_frames(processor, video, seed):
    """Which frames of the flat video a training call took (colour augmentation off, so brightness tells)."""
    pixel_values = processor(videos=video, training=True, seed=seed, color_jitter_prob=0.0, grayscale_prob=0.0)
    return ((frame_brightness(pixel_values["pixel_values"])[0] - 30) / 8).round().long().tolist()


def test_training_sampling_is_random_within_segments_and_seedable(processor, flat_video):
    chosen = sampled_frames(processor, flat_video, seed=0)
    assert all(3 * i <= index < 3 * i + 3 for i, index in enumerate(chosen))
    assert sampled_frames(processor, flat_video, seed=0) == chosen
    assert len({tuple(sampled_frames(processor, flat_video, seed=s)) for s in range(1, 5)}) > 1


def test_arrays_tensors_and_pil_lists(processor, reference_inputs):
    raw = reference_inputs["raw_frames_uint8"]  # (4, 8, 45, 61, 3)
    expected = processor.video_processor(raw)["pixel_values"]
    assert torch.equal(processor(videos=raw)["pixel_values"], expected)
    assert torch.equal(processor(videos=list(raw.numpy()))["pixel_values"], expected)
    assert torch.equal(processor(videos=[clip.permute(0, 3, 1, 2) for clip in raw])["pixel_values"], expected)
    pil_clip = [Image.fromarray(frame) for frame in raw[2].numpy()]
    assert torch.equal(processor(videos=pil_clip)["pixel_values"][0], expected[2])
    as_float = processor(videos=raw[1].float() / 255)["pixel_values"][0]
    assert (as_float - expected[1]).abs().max() <= 1 / (255 * 0.26130258) + 1e-5


def test_longer_clips_are_tsn_sampled_to_num_frames(processor, reference_inputs):
    raw = reference_inputs["raw_frames_uint8"][0]  # 8 frames
    doubled = raw.repeat_interleave(2, dim=0)  # 16 frames, frame i at 2i and 2i + 1
    assert torch.equal(processor(videos=doubled)["pixel_values"], processor(videos=raw)["pixel_values"])
    assert processor(videos=doubled, num_frames=16)["pixel_values"].shape[1] == 16


def test_mixed_batch_of_a_file_and_an_array(processor, textured_video):
    frames = np.random.default_rng(1).integers(0, 256, size=(30, 50, 70, 3), dtype=np.uint8)
    out = processor(videos=[textured_video, frames], text=["surfing", "tai chi"], padding="max_length")
    assert out["pixel_values"].shape == (2, 8, 3, 32, 32)
    assert out["input_ids"].shape == (2, 77) and out["attention_mask"].shape == (2, 77)


def test_unreadable_video_raises_video_decode_error(processor, tmp_path):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(VideoDecodeError):
        processor(videos=bad)
    with pytest.raises(VideoDecodeError):
        processor(videos=tmp_path / "missing.mp4")


def test_bad_num_frames_raises():
    with pytest.raises(VideoProcessingError):
        ActionCLIPProcessor(num_frames=0)


def test_save_and_load_round_trip(tmp_path, reference_inputs):
    processor = ActionCLIPProcessor.from_settings(
        image_size=32, num_frames=4, templates=["a clip of {}", "{} on video"], do_flip=False
    )
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["num_frames"] == 4 and saved["templates"] == ["a clip of {}", "{} on video"]
    assert saved["video_processor"]["video_processor_type"] == "ActionCLIPVideoProcessor"
    assert (tmp_path / "tokenizer_config.json").is_file()

    loaded = ActionCLIPProcessor.from_pretrained(tmp_path)
    assert loaded.num_frames == 4 and loaded.templates == processor.templates
    assert loaded.video_processor.to_dict() == processor.video_processor.to_dict()
    raw = reference_inputs["raw_frames_uint8"]
    assert torch.equal(loaded(videos=raw)["pixel_values"], processor(videos=raw)["pixel_values"])
    labels = ["surfing", "tai chi"]
    assert torch.equal(loaded.encode_labels(labels)["input_ids"], processor.encode_labels(labels)["input_ids"])


def test_a_video_processor_given_to_from_pretrained_replaces_the_saved_one(tmp_path):
    ActionCLIPProcessor.from_settings(image_size=64, num_frames=4).save_pretrained(tmp_path)
    given = ActionCLIPVideoProcessor(crop_size=32)
    loaded = ActionCLIPProcessor.from_pretrained(tmp_path, video_processor=given, num_frames=6)
    assert loaded.video_processor is given and loaded.num_frames == 6
    assert ActionCLIPProcessor.from_pretrained(tmp_path).video_processor.crop_size.height == 64


def test_a_tokenizer_given_to_from_pretrained_is_not_looked_for_in_the_folder(tmp_path):
    processor = ActionCLIPProcessor.from_settings(image_size=64, num_frames=4)
    processor.save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json"):
        (tmp_path / name).unlink(missing_ok=True)
    loaded = ActionCLIPProcessor.from_pretrained(tmp_path, tokenizer=processor.tokenizer)
    assert loaded.tokenizer is processor.tokenizer and loaded.num_frames == 4
    assert loaded.video_processor.to_dict() == processor.video_processor.to_dict()
    # Without one, the missing files are an error (transformers would build a tokenizer of special tokens alone).
    with pytest.raises(MissingProcessorError, match="no tokenizer files"):
        ActionCLIPProcessor.from_pretrained(tmp_path)


def test_auto_classes_load_the_saved_processor(tmp_path):
    from transformers import AutoProcessor, AutoVideoProcessor

    from actionclip.configuration_actionclip import ActionCLIPConfig

    # Idempotent with the package's own registration.
    AutoVideoProcessor.register(ActionCLIPConfig, ActionCLIPVideoProcessor, exist_ok=True)
    AutoProcessor.register(ActionCLIPConfig, ActionCLIPProcessor, exist_ok=True)
    ActionCLIPProcessor.from_settings(image_size=32, num_frames=8).save_pretrained(tmp_path)
    assert isinstance(AutoProcessor.from_pretrained(tmp_path), ActionCLIPProcessor)
    assert isinstance(AutoVideoProcessor.from_pretrained(tmp_path), ActionCLIPVideoProcessor)


def test_from_model_config_follows_the_config():
    from actionclip.configuration_actionclip import ActionCLIPConfig

    config = ActionCLIPConfig(num_frames=16)
    processor = ActionCLIPProcessor.from_model_config(config)
    assert processor.num_frames == 16
    assert processor.video_processor.crop_size.height == config.vision_config.image_size
    assert processor.templates == list(config.templates)
    assert processor.templater.templates == PromptTemplater().templates


def test_the_model_config_owns_num_frames_and_templates(tmp_path):
    import json
    import warnings

    from tiny_models import tiny_model

    model = tiny_model(num_frames=6)
    model.save_pretrained(tmp_path)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert "num_frames" not in saved and "templates" not in saved
    loaded = ActionCLIPProcessor.from_pretrained(tmp_path)
    assert loaded.num_frames == 6 and loaded.templates == list(model.config.templates)
    # An older processor_config.json with its own, different copy still loads; the model's value wins, with a warning.
    saved["num_frames"] = 4
    (tmp_path / "processor_config.json").write_text(json.dumps(saved))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ActionCLIPProcessor.from_pretrained(tmp_path).num_frames == 6
    assert sum("num_frames=4" in str(w.message) for w in caught) == 1
