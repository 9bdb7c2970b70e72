"""ActionCLIP follows transformers' ways where transformers has one: CLIP's output conventions, its error messages'
vocabulary, its attention outputs."""

import dataclasses

import pytest
import torch
from tiny_models import TEXT, VISION, random_videos, tiny_config, tiny_model, token_ids
from transformers.models.clip.modeling_clip import CLIPOutput

from actionclip import ActionCLIPForVideoClassification
from actionclip.modeling_actionclip import ActionCLIPOutput

# -- output conventions (issue 29, item 6)


def test_output_fields_come_in_clip_outputs_order_with_videos_for_images():
    clip_fields = [field.name.replace("image", "video") for field in dataclasses.fields(CLIPOutput)]
    ours = [field.name for field in dataclasses.fields(ActionCLIPOutput)]
    assert ours[: len(clip_fields)] == clip_fields
    assert ours[len(clip_fields) :] == ["frame_embeds", "class_scores"]  # what ActionCLIP adds comes after CLIP's


def test_return_dict_false_gives_clips_tuple_order():
    model = tiny_model(seed=4, fusion="transf", contrastive_loss="cross_entropy").eval()
    # 2 videos, 3 texts: every tensor of the tuple has its own shape.
    videos, texts = random_videos(batch=2, frames=5), token_ids(3)
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        out = model(pixel_values=videos, input_ids=texts, labels=labels)
        as_tuple = model(pixel_values=videos, input_ids=texts, labels=labels, return_dict=False)
    loss, logits_per_video, logits_per_text, text_embeds, video_embeds, text_output, vision_output, frame_embeds = (
        as_tuple
    )
    assert torch.equal(loss, out.loss)
    assert logits_per_video.shape == (2, 3) and torch.equal(logits_per_video, out.logits_per_video)
    assert logits_per_text.shape == (3, 2) and torch.equal(logits_per_text, out.logits_per_text)
    assert text_embeds.shape[0] == 3 and torch.equal(text_embeds, out.text_embeds)
    assert video_embeds.shape[0] == 2 and torch.equal(video_embeds, out.video_embeds)
    assert isinstance(text_output, tuple) and torch.equal(text_output[1], out.text_model_output.pooler_output)
    assert isinstance(vision_output, tuple) and torch.equal(vision_output[1], out.vision_model_output.pooler_output)
    assert frame_embeds.shape == (2, 5, model.config.projection_dim) and torch.equal(frame_embeds, out.frame_embeds)


def test_without_loss_the_tuple_starts_with_logits_per_video():
    model = tiny_model(seed=4, fusion="meanP").eval()
    with torch.no_grad():
        out = model(pixel_values=random_videos(batch=2), input_ids=token_ids(3))
        as_tuple = model(pixel_values=random_videos(batch=2), input_ids=token_ids(3), return_dict=False)
    assert torch.equal(as_tuple[0], out.logits_per_video)
    assert torch.equal(as_tuple[2], out.text_embeds) and torch.equal(as_tuple[3], out.video_embeds)


def test_kl_loss_error_names_the_configuration_field():
    model = tiny_model(seed=4, fusion="meanP")
    with pytest.raises(ValueError, match=r"contrastive_loss='cross_entropy'") as raised:
        model(pixel_values=random_videos(batch=2), input_ids=token_ids(3), labels=torch.tensor([0, 1]))
    assert "loss_type" not in str(raised.value)
    # The field it names is the configuration's: following the advice works.
    cross_entropy = tiny_model(seed=4, fusion="meanP", contrastive_loss="cross_entropy")
    loss = cross_entropy(pixel_values=random_videos(batch=2), input_ids=token_ids(3), labels=torch.tensor([0, 1])).loss
    assert torch.isfinite(loss)


@pytest.mark.parametrize("settings", [{}, {"fusion": "transf_cls", "joint": True, "shift": True}])
def test_output_attentions_with_sdpa_runs_the_call_eager_and_gives_real_weights(settings):
    settings = {"fusion": "transf", **settings}
    sdpa = tiny_model(seed=4, attn_implementation="sdpa", **settings).eval()
    eager = tiny_model(seed=4, attn_implementation="eager", **settings).eval()
    videos, texts = random_videos(batch=2, frames=5), token_ids(3, length=9)
    with torch.no_grad():
        got = sdpa(pixel_values=videos, input_ids=texts, output_attentions=True)
        expected = eager(pixel_values=videos, input_ids=texts, output_attentions=True)
    for name in ("attentions", "fusion_attentions"):
        ours, reference = getattr(got.vision_model_output, name), getattr(expected.vision_model_output, name)
        assert len(ours) == len(reference) > 0 and all(weights is not None for weights in ours), name
        for weights, reference_weights in zip(ours, reference, strict=True):
            torch.testing.assert_close(weights, reference_weights)
    assert len(got.text_model_output.attentions) == TEXT["num_hidden_layers"]
    for weights, reference_weights in zip(got.text_model_output.attentions, expected.text_model_output.attentions):
        torch.testing.assert_close(weights, reference_weights)
    # Only that call ran eager: the model keeps its implementation everywhere.
    config = sdpa.config
    assert [config._attn_implementation, config.vision_config._attn_implementation] == ["sdpa", "sdpa"]
    assert config.text_config._attn_implementation == "sdpa"


def test_text_and_video_features_alone_give_attentions_with_sdpa():
    model = tiny_model(seed=4, fusion="transf", attn_implementation="sdpa").eval()
    with torch.no_grad():
        text = model.get_text_features(token_ids(3, length=9), output_attentions=True)
        video = model.get_video_features(random_videos(batch=2, frames=5), output_attentions=True)
    assert [tuple(weights.shape) for weights in text.attentions] == [(3, TEXT["num_attention_heads"], 9, 9)] * 2
    assert len(video.attentions) == VISION["num_hidden_layers"] and len(video.fusion_attentions) == 2
    assert model.config.text_config._attn_implementation == "sdpa"


def test_closed_set_classifier_gives_attentions_with_sdpa():
    classifier = ActionCLIPForVideoClassification(tiny_config(fusion="transf_cls", num_labels=3)).eval()
    classifier.set_attn_implementation("sdpa")
    with torch.no_grad():
        out = classifier(pixel_values=random_videos(batch=2), output_attentions=True)
    assert len(out.attentions) == VISION["num_hidden_layers"] and all(
        weights is not None for weights in out.attentions
    )
    assert len(out.fusion_attentions) == 2
    assert classifier.config.vision_config._attn_implementation == "sdpa"


def _is_attention_distribution(weights: torch.Tensor) -> bool:
    return bool(torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-5) and (weights >= 0).all())


@pytest.mark.parametrize("fusion, fusion_tokens, fusion_heads", [("transf", 5, 1), ("transf_cls", 6, 8)])
def test_output_attentions_with_eager_gives_every_parts_weights(fusion, fusion_tokens, fusion_heads):
    model = tiny_model(seed=5, fusion=fusion, fusion_num_layers=3, attn_implementation="eager").eval()
    videos, texts = random_videos(batch=2, frames=5), token_ids(3, length=9)
    with torch.no_grad():
        out = model(pixel_values=videos, input_ids=texts, output_attentions=True)
        # Our frame path runs CLIP's layers one by one; CLIP's own forward of the same tower gives the reference.
        expected_vision = model.vision_model(videos.flatten(0, 1), output_attentions=True).attentions
    vision = out.vision_model_output.attentions
    assert len(vision) == VISION["num_hidden_layers"]
    assert vision[0].shape == (2 * 5, VISION["num_attention_heads"], 17, 17)
    for ours, clips in zip(vision, expected_vision, strict=True):
        torch.testing.assert_close(ours, clips)
    text = out.text_model_output.attentions
    assert len(text) == TEXT["num_hidden_layers"] and text[0].shape == (3, TEXT["num_attention_heads"], 9, 9)
    assert all(_is_attention_distribution(weights) for weights in text)
    fusion_attentions = out.vision_model_output.fusion_attentions
    assert len(fusion_attentions) == 3
    for weights in fusion_attentions:
        assert weights.shape == (2, fusion_heads, fusion_tokens, fusion_tokens)
        assert _is_attention_distribution(weights)


def test_closed_set_classifier_returns_the_fusion_attentions():
    classifier = ActionCLIPForVideoClassification(
        tiny_config(fusion="transf", fusion_num_layers=2, num_labels=3, attn_implementation="eager")
    ).eval()
    with torch.no_grad():
        out = classifier(pixel_values=random_videos(batch=2, frames=4), output_attentions=True)
    assert len(out.attentions) == VISION["num_hidden_layers"]
    assert [tuple(weights.shape) for weights in out.fusion_attentions] == [(2, 1, 4, 4)] * 2
    assert all(_is_attention_distribution(weights) for weights in out.fusion_attentions)


def test_fusions_without_attention_return_no_fusion_attentions():
    model = tiny_model(seed=5, fusion="lstm", attn_implementation="eager").eval()
    with torch.no_grad():
        features = model.get_video_features(random_videos(batch=2), output_attentions=True)
    assert features.fusion_attentions is None and len(features.attentions) == VISION["num_hidden_layers"]


def test_without_output_attentions_nothing_is_recorded():
    model = tiny_model(seed=5, fusion="transf", attn_implementation="eager").eval()
    with torch.no_grad():
        features = model.get_video_features(random_videos(batch=2))
    assert features.attentions is None and features.fusion_attentions is None
