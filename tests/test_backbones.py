"""ActionCLIP on every image-text family in transformers: CLIP, MetaCLIP 2, Chinese-CLIP, AltCLIP, SigLIP, SigLIP 2.

Every test runs on a tiny saved model of the family (tests/backbone_families.py: transformers' own classes, saved in
their own format, with the family's tokenizer built offline), so that what is compared is the family's own
`get_text_features` / `get_image_features` on the same inputs.
"""

from __future__ import annotations

import math

import pytest
import torch
from backbone_families import FAMILIES, family_texts, make_family_dir
from torch.nn import functional as F

from actionclip import ActionCLIPConfig, ActionCLIPModel, ActionCLIPProcessor
from actionclip.backbones import BACKBONE_FAMILIES, backbone_family, frames_to_patches
from actionclip.errors import InvalidConfigError
from actionclip.scoring import template_ensemble_probs
from actionclip.visual_prompts import temporal_shift

NUM_FRAMES = 3
SIGMOID_FAMILIES = ("siglip", "siglip2")


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {family: make_family_dir(family, root / family) for family in FAMILIES}


def _backbone(family_dirs, family):
    from transformers import AutoModel

    return AutoModel.from_pretrained(family_dirs[family]).eval()


def _backbone_image_features(backbone, frames: torch.Tensor) -> torch.Tensor:
    """The family's own image embeddings of ``(N, C, H, W)`` frames, in the family's own input format."""
    if backbone.config.model_type == "siglip2":
        patches, shapes = frames_to_patches(frames, backbone.config.vision_config.patch_size)
        mask = torch.ones(patches.shape[:2], dtype=torch.long)
        return backbone.get_image_features(
            pixel_values=patches, pixel_attention_mask=mask, spatial_shapes=shapes
        ).pooler_output
    return backbone.get_image_features(pixel_values=frames).pooler_output


def _texts(family_dirs, family):
    processor = ActionCLIPProcessor.from_backbone(family_dirs[family], num_frames=NUM_FRAMES)
    return processor(text=family_texts(family), padding=True, return_tensors="pt")


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).abs().max() / expected.abs().max())


def test_every_family_of_the_issue_has_an_adapter():
    assert set(BACKBONE_FAMILIES) == set(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_from_backbone_keeps_the_family_s_text_and_image_features(family_dirs, family, tmp_path):
    backbone = _backbone(family_dirs, family)
    model = ActionCLIPModel.from_backbone(str(family_dirs[family]), fusion="meanP", num_frames=NUM_FRAMES).eval()
    assert model.config.backbone == family
    texts = _texts(family_dirs, family)
    frames = torch.randn(2, NUM_FRAMES, 3, 32, 32, generator=torch.Generator().manual_seed(1))

    def features(candidate):
        with torch.no_grad():
            text = candidate.get_text_features(texts["input_ids"], texts["attention_mask"]).pooler_output
            video = F.normalize(candidate.get_video_features(frames).pooler_output, dim=-1)
        return text, video

    with torch.no_grad():
        expected_text = backbone.get_text_features(
            input_ids=texts["input_ids"], attention_mask=texts["attention_mask"]
        ).pooler_output
        per_frame = _backbone_image_features(backbone, frames.flatten(0, 1))
        expected_video = F.normalize(per_frame.view(2, NUM_FRAMES, -1).mean(1), dim=-1)
    text, video = features(model)
    assert text.shape == expected_text.shape and video.shape == expected_video.shape
    assert _relative_error(text, expected_text) < 1e-5
    assert _relative_error(video, expected_video) < 1e-5

    model.save_pretrained(tmp_path)
    reloaded = ActionCLIPModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.backbone == family
    assert type(reloaded.text_model) is type(backbone.text_model)
    assert type(reloaded.vision_model) is type(backbone.vision_model)
    reloaded_text, reloaded_video = features(reloaded)
    assert _relative_error(reloaded_text, expected_text) < 1e-5
    assert _relative_error(reloaded_video, expected_video) < 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_a_loaded_backbone_gives_the_same_model_as_its_folder(family_dirs, family):
    backbone = _backbone(family_dirs, family)
    from_object = ActionCLIPModel.from_backbone(backbone, fusion="meanP", num_frames=NUM_FRAMES)
    from_folder = ActionCLIPModel.from_backbone(str(family_dirs[family]), fusion="meanP", num_frames=NUM_FRAMES)
    backbone_state = backbone.state_dict()
    for name, tensor in from_object.state_dict().items():
        assert torch.equal(tensor, from_folder.state_dict()[name]), name
        if name in backbone_state:
            assert torch.equal(tensor, backbone_state[name]), name


PROMPTS = {
    "meanP": dict(fusion="meanP"),
    "conv1d": dict(fusion="conv1d"),
    "lstm": dict(fusion="lstm"),
    "transf": dict(fusion="transf", fusion_num_heads=2, fusion_num_layers=1),
    "transf_cls": dict(fusion="transf_cls", fusion_num_heads=4, fusion_num_layers=1, fusion_intermediate_size=20),
    "shift": dict(fusion="meanP", shift=True, shift_fold_div=4),
    "joint": dict(fusion="meanP", joint=True),
}


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_visual_prompt_trains_on_every_family(family_dirs, family, prompt):
    torch.manual_seed(0)
    model = ActionCLIPModel.from_backbone(
        str(family_dirs[family]), num_frames=NUM_FRAMES, fusion_max_frames=8, **PROMPTS[prompt]
    ).train()
    texts = _texts(family_dirs, family)
    batch = texts["input_ids"].shape[0]
    labels = torch.tensor([0, 1, 0, 2, 1][:batch])
    output = model(
        pixel_values=torch.randn(batch, NUM_FRAMES, 3, 32, 32),
        input_ids=texts["input_ids"],
        attention_mask=texts["attention_mask"],
        labels=labels,
    )
    assert output.video_embeds.shape == (batch, model.config.projection_dim)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    for part in (model.vision_model, model.text_model):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    for name, parameter in model.named_parameters():
        if name.startswith(("fusion.", "temporal_embedding")):
            assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize("family", FAMILIES)
def test_shift_and_joint_carry_information_between_frames(family_dirs, family):
    """A frame's embedding depends on its neighbours with the shift or joint prompt, on none without: on a family
    without a class token (SigLIP) too, where joint attends over every frame's patches and the attention-pooling head
    then pools each frame's own tokens."""
    frames = torch.randn(1, NUM_FRAMES, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    changed = frames.clone()
    changed[:, 1] = torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(3))
    for options, couples in ((dict(), False), (dict(shift=True, shift_fold_div=4), True), (dict(joint=True), True)):
        torch.manual_seed(0)
        model = ActionCLIPModel.from_backbone(
            str(family_dirs[family]), fusion="meanP", num_frames=NUM_FRAMES, **options
        ).eval()
        if options.get("joint"):
            with torch.no_grad():
                model.temporal_embedding.normal_(std=0.5)
        with torch.no_grad():
            first = model.get_frame_features(frames)[:, 0]
            first_after_change = model.get_frame_features(changed)[:, 0]
        assert torch.allclose(first, first_after_change, atol=1e-6) != couples, options


def test_the_shift_moves_every_token_of_a_family_without_a_class_token():
    tokens = torch.arange(2 * 3 * 4 * 8, dtype=torch.float32).reshape(2 * 3, 4, 8)  # (B*T, L, C), T = 3
    with_class = temporal_shift(tokens, 3, 4, 4, class_tokens=1).reshape(2, 3, 4, 8)
    without = temporal_shift(tokens, 3, 4, 4, class_tokens=0).reshape(2, 3, 4, 8)
    original = tokens.reshape(2, 3, 4, 8)
    assert torch.equal(with_class[:, :, 0], original[:, :, 0])  # CLIP's class token stays
    assert torch.equal(without[:, 0, 0, :2], original[:, 1, 0, :2])  # SigLIP's first patch comes from frame t + 1
    assert torch.equal(without[:, 1, 0, 2:4], original[:, 0, 0, 2:4])  # and from frame t - 1
    assert torch.equal(without[:, :, :, 4:], original[:, :, :, 4:])


@pytest.mark.parametrize("family", FAMILIES)
def test_the_saved_folder_serves_the_pipeline_with_the_family_s_scores(family_dirs, family, tmp_path, video_data):
    from transformers import pipeline

    model = ActionCLIPModel.from_backbone(str(family_dirs[family]), fusion="meanP", num_frames=NUM_FRAMES).eval()
    processor = ActionCLIPProcessor.from_backbone(family_dirs[family], num_frames=NUM_FRAMES)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert type(ActionCLIPProcessor.from_pretrained(tmp_path).tokenizer) is type(processor.tokenizer)
    labels = family_texts(family)[:3]
    video = str(video_data.videos("val")[0][0])
    classifier = pipeline("zero-shot-video-classification", model=str(tmp_path), device="cpu")
    result = classifier(video, candidate_labels=labels, hypothesis_template="{}")
    scores = {item["label"]: item["score"] for item in result}

    # The same scores by hand: the family's text padding, the scale, and a sigmoid where the family was trained so.
    pixel_values = processor(videos=[video])["pixel_values"]
    texts = processor(text=labels, padding=True, return_tensors="pt")
    with torch.no_grad():
        video_embeds = F.normalize(model.get_video_features(pixel_values).pooler_output, dim=-1)
        text_embeds = F.normalize(model.get_text_features(texts["input_ids"], texts["attention_mask"]).pooler_output)
        logits = model.evaluation_scale() * video_embeds @ text_embeds.t()
    if family in SIGMOID_FAMILIES:
        expected = torch.sigmoid(logits + model.logit_bias)[0]
        assert texts["input_ids"].shape[1] == processor.context_length  # SigLIP pools its last token: padded
    else:
        expected = logits.softmax(-1)[0]
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert [scores[label] for label in labels] == pytest.approx(expected.tolist(), abs=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_plain_family_folder_is_converted_by_the_pipeline_with_its_own_tokenizer(family_dirs, family, video_data):
    from transformers import pipeline

    with pytest.warns(UserWarning, match="plain image-text model: converted on the fly"):
        classifier = pipeline("zero-shot-video-classification", model=str(family_dirs[family]), device="cpu")
    assert classifier.model.config.backbone == family
    expected_tokenizer = "CLIPTokenizer" if family == "clip" else type(_texts_tokenizer(family_dirs, family)).__name__
    assert type(classifier.processor.tokenizer).__name__ == expected_tokenizer
    result = classifier(str(video_data.videos("val")[0][0]), candidate_labels=family_texts(family)[:2])
    assert len(result) == 2 and all(0.0 <= item["score"] <= 1.0 for item in result)


def _texts_tokenizer(family_dirs, family):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(family_dirs[family])


@pytest.mark.parametrize("family", SIGMOID_FAMILIES)
def test_sigmoid_scores_are_each_label_s_own_probability(family_dirs, family):
    model = ActionCLIPModel.from_backbone(str(family_dirs[family]), fusion="meanP", num_frames=NUM_FRAMES)
    bias = model.score_bias()
    assert bias is not None and bias.shape == (1,)
    logits = torch.tensor([[2.0, -1.0, 30.0, 0.5, 1.0, -3.0]])  # 2 templates x 3 labels, template-major
    probs = template_ensemble_probs(logits, 2, bias)
    by_hand = torch.sigmoid(logits.view(1, 2, 3) + bias).mean(1)
    assert torch.allclose(probs, by_hand)
    assert not math.isclose(float(probs.sum()), 1.0, abs_tol=1e-3)


def test_softmax_families_have_no_bias_unless_trained_with_the_sigmoid_objective(family_dirs):
    assert ActionCLIPModel.from_backbone(str(family_dirs["clip"]), fusion="meanP").score_bias() is None
    model = ActionCLIPModel.from_backbone(str(family_dirs["clip"]), fusion="meanP", contrastive_loss="sigmoid")
    assert float(model.score_bias()) == -10.0  # SigLIP's initial bias, fresh on a softmax family


def test_a_tower_config_of_another_family_is_refused():
    from transformers import SiglipTextConfig

    with pytest.raises(InvalidConfigError, match="'siglip_text_model' configuration, but backbone 'clip'"):
        ActionCLIPConfig(backbone="clip", text_config=SiglipTextConfig().to_dict())
    with pytest.raises(InvalidConfigError, match="not a supported image-text family"):
        ActionCLIPConfig(backbone="blip")


def test_a_sigmoid_family_needs_one_embedding_width():
    with pytest.raises(InvalidConfigError, match="widths must be equal"):
        ActionCLIPConfig(
            backbone="siglip",
            text_config=dict(hidden_size=48, projection_size=24, num_attention_heads=3),
            vision_config=dict(hidden_size=40, num_attention_heads=2),
        )


@pytest.mark.parametrize("family", FAMILIES)
def test_the_family_s_defaults_travel_in_the_config(family_dirs, family):
    model = ActionCLIPModel.from_backbone(str(family_dirs[family]))
    config = ActionCLIPConfig.from_dict(model.config.to_dict())
    assert config.backbone == family
    assert type(config.text_config) is type(model.text_model.config)
    assert type(config.vision_config) is type(model.vision_model.config)
    expected_templates = backbone_family(family).templates
    if expected_templates is not None:
        assert config.templates == list(expected_templates)
    processor = ActionCLIPProcessor.from_backbone(family_dirs[family])
    assert processor.pad_to_context == (family in SIGMOID_FAMILIES)


@pytest.mark.parametrize("family", ["siglip2"])  # a fresh process each: one family (SigLIP 2: no image_size field)
def test_info_names_the_backbone_and_how_it_scores(family_dirs, family, tmp_path):
    import json
    import subprocess
    import sys

    model = ActionCLIPModel.from_backbone(str(family_dirs[family]), fusion="meanP", num_frames=NUM_FRAMES)
    model.save_pretrained(tmp_path)
    ActionCLIPProcessor.from_backbone(family_dirs[family], num_frames=NUM_FRAMES).save_pretrained(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "actionclip", "info", str(tmp_path), "--json"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["backbone"] == family
    assert info["scores"] == ("sigmoid" if family in SIGMOID_FAMILIES else "softmax")
    assert info["image_size"] == 32 and info["vision_width"] == 40 and info["text_width"] == 48


def test_the_model_card_names_the_backbone_family(family_dirs, tmp_path):
    from actionclip.hub.model_card import check_model_card, generate_model_card

    ActionCLIPModel.from_backbone(str(family_dirs["siglip2"]), fusion="meanP").save_pretrained(tmp_path)
    card = generate_model_card(tmp_path)
    check_model_card(card)
    assert "SigLIP 2 vision tower per frame + visual prompts, SigLIP 2 text tower" in str(card)
    assert "siglip2" in card.data.tags and "clip" not in card.data.tags


@pytest.mark.parametrize("family", ("siglip2", "altclip"))
def test_a_saved_folder_of_the_family_runs_as_remote_code_where_the_package_is_absent(
    family_dirs, family, tmp_path, video_data
):
    import json
    import subprocess
    import sys

    from transformers import pipeline

    model = ActionCLIPModel.from_backbone(str(family_dirs[family]), fusion="transf", num_frames=NUM_FRAMES)
    model.save_pretrained(tmp_path / "model")
    ActionCLIPProcessor.from_backbone(family_dirs[family], num_frames=NUM_FRAMES).save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "backbones.py").is_file()  # the family table travels with the model's files
    labels, video = family_texts(family)[:3], str(video_data.videos("val")[0][0])
    classifier = pipeline("zero-shot-video-classification", model=str(tmp_path / "model"))
    expected = classifier(video, candidate_labels=labels)
    classifier.save_pretrained(tmp_path / "pipe")  # names the task's code in config.json
    script = f"""
import json, sys
sys.modules["actionclip"] = None  # the package cannot be imported in this process
from transformers import pipeline
classifier = pipeline("zero-shot-video-classification", model={str(tmp_path / "pipe")!r}, trust_remote_code=True)
assert not type(classifier.model).__module__.startswith("actionclip"), type(classifier.model).__module__
assert classifier.model.config.backbone == {family!r}
print(json.dumps(classifier({video!r}, candidate_labels={labels!r})))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert [item["label"] for item in remote] == [item["label"] for item in expected]
    assert [item["score"] for item in remote] == pytest.approx([item["score"] for item in expected], abs=1e-6)
