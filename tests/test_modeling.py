"""ActionCLIPModel: the visual prompts, training end to end, loading from CLIP, saving and sharing (the loss itself:
test_loss.py)."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from tiny_models import TEXT, VISION, random_videos, tiny_config, tiny_model, token_ids
from transformers import AutoConfig, AutoModel, CLIPConfig, CLIPModel

from actionclip import ActionCLIPConfig, ActionCLIPModel
from actionclip.errors import HubUnreachableError

PROMPT_SETTINGS = {
    "meanP": dict(fusion="meanP"),
    "conv1d": dict(fusion="conv1d"),
    "lstm": dict(fusion="lstm"),
    "transf": dict(fusion="transf"),
    "transf_cls": dict(fusion="transf_cls"),
    "shift": dict(fusion="meanP", shift=True),
    "joint": dict(fusion="meanP", joint=True),
    "joint+shift+transf": dict(fusion="transf", joint=True, shift=True),
}


@pytest.mark.parametrize("name", list(PROMPT_SETTINGS))
def test_video_embedding_depends_on_frame_order_except_for_mean_pooling(name):
    model = tiny_model(**PROMPT_SETTINGS[name]).eval()
    with torch.no_grad():  # position tables start near zero (std 0.02): give them a trained model's scale
        for key, parameter in model.named_parameters():
            if "position_embeddings" in key or "pos_embed" in key or key == "temporal_embedding":
                parameter.normal_(std=1.0)
    videos = random_videos()
    reversed_videos = videos.flip(1)
    with torch.no_grad():
        forward = model.get_video_features(videos).pooler_output
        backward = model.get_video_features(reversed_videos).pooler_output
    if name == "meanP":
        torch.testing.assert_close(forward, backward, rtol=1e-5, atol=1e-5)
    else:
        assert (forward - backward).abs().max() > 1e-4, f"{name} ignores frame order"


@pytest.mark.parametrize("name", list(PROMPT_SETTINGS))
def test_tiny_model_loss_decreases_with_training(name):
    model = tiny_model(seed=1, **PROMPT_SETTINGS[name]).train()
    videos, labels = random_videos(batch=4, seed=1), torch.tensor([0, 1, 0, 2])
    ids = token_ids(3, seed=1)[labels]
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    losses = []
    for _ in range(8):
        loss = model(pixel_values=videos, input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert max(losses[-2:]) < losses[0] * 0.8, losses


def test_joint_prompt_trains_its_temporal_embeddings():
    model = tiny_model(fusion="meanP", joint=True).train()
    before = model.temporal_embedding.detach().clone()
    loss = model(pixel_values=random_videos(4), input_ids=token_ids(4), labels=torch.tensor([0, 1, 2, 3])).loss
    loss.backward()
    assert model.temporal_embedding.grad[:8].abs().sum() > 0
    assert model.temporal_embedding.grad[8:].abs().sum() == 0  # rows past T are unused
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    assert not torch.equal(before, model.temporal_embedding)


def test_joint_attention_mixes_frames():
    """With joint attention a change to one frame changes the other frames' embeddings; per-frame CLIP does not."""
    videos = random_videos(1)
    changed = videos.clone()
    changed[:, 3] = torch.randn_like(changed[:, 3])
    for joint, expect_mixing in ((True, True), (False, False)):
        model = tiny_model(fusion="meanP", joint=joint).eval()
        with torch.no_grad():
            a = model.get_frame_features(videos)[:, 0]
            b = model.get_frame_features(changed)[:, 0]
        assert ((a - b).abs().max() > 1e-5) == expect_mixing


def test_shift_moves_channels_between_neighbouring_frames_only():
    from actionclip.visual_prompts import temporal_shift

    tokens = torch.arange(2 * 4 * 3 * 16, dtype=torch.float32).reshape(2 * 4, 3, 16)  # B=2, T=4, L=3, C=16
    shifted = temporal_shift(tokens, num_frames=4, fold_div=8, tokens_per_frame=3).reshape(2, 4, 3, 16)
    original = tokens.reshape(2, 4, 3, 16)
    assert torch.equal(shifted[:, :, 0], original[:, :, 0])  # class tokens untouched
    assert torch.equal(shifted[:, :3, 1:, :2], original[:, 1:, 1:, :2])  # from the next frame
    assert torch.equal(shifted[:, 3, 1:, :2], torch.zeros(2, 2, 2))
    assert torch.equal(shifted[:, 1:, 1:, 2:4], original[:, :3, 1:, 2:4])  # from the previous frame
    assert torch.equal(shifted[:, 0, 1:, 2:4], torch.zeros(2, 2, 2))
    assert torch.equal(shifted[:, :, 1:, 4:], original[:, :, 1:, 4:])


def test_conv1d_starts_as_a_temporal_channel_shift():
    model = tiny_model(fusion="conv1d")
    frames = torch.randn(1, 8, 64)
    mixed = model.fusion.conv(frames.transpose(1, 2)).transpose(1, 2)
    assert torch.equal(mixed[:, 1:, :16], frames[:, :-1, :16])  # previous frame
    assert torch.equal(mixed[:, :, 16:48], frames[:, :, 16:48])  # identity
    assert torch.equal(mixed[:, :-1, 48:], frames[:, 1:, 48:])  # next frame


def test_output_shapes_and_normalised_embeddings():
    model = tiny_model().eval()
    with torch.no_grad():
        out = model(pixel_values=random_videos(3), input_ids=token_ids(5))
    assert out.logits_per_video.shape == (3, 5) and out.logits_per_text.shape == (5, 3)
    assert out.frame_embeds.shape == (3, 8, 64)
    torch.testing.assert_close(out.video_embeds.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(out.text_embeds.norm(dim=-1), torch.ones(5))
    assert out.loss is None


def test_fixed_logit_scale_reproduces_the_original_evaluation():
    model = tiny_model().eval()
    with torch.no_grad():
        learned = model(pixel_values=random_videos(2), input_ids=token_ids(3))
        fixed = model(pixel_values=random_videos(2), input_ids=token_ids(3), logit_scale=100.0)
    cosine = learned.video_embeds @ learned.text_embeds.t()
    torch.testing.assert_close(fixed.logits_per_video, 100.0 * cosine)
    torch.testing.assert_close(learned.logits_per_video, model.logit_scale.exp() * cosine)


def test_bad_pixel_values_are_a_clear_error():
    model = tiny_model()
    with pytest.raises(ValueError, match="pixel_values must have shape"):
        model.get_video_features(torch.randn(8, 3, 32, 32))


def test_save_and_load_round_trip_gives_identical_outputs(tmp_path):
    model = tiny_model(fusion="transf_cls", shift=True).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is ActionCLIPModel
    videos, ids = random_videos(), token_ids(3)
    with torch.no_grad():
        assert torch.equal(
            model(pixel_values=videos, input_ids=ids).logits_per_video,
            loaded(pixel_values=videos, input_ids=ids).logits_per_video,
        )


def test_saved_directory_loads_with_remote_code_where_the_package_is_absent(tmp_path):
    model = tiny_model(fusion="transf", joint=True).eval()
    model.save_pretrained(tmp_path)
    videos = random_videos(1)
    torch.save(videos, tmp_path / "videos.pt")
    with torch.no_grad():
        torch.save(model.get_video_features(videos).pooler_output, tmp_path / "expected.pt")
    script = f"""
import sys
sys.modules["actionclip"] = None  # the package cannot be imported in this process
import torch
from transformers import AutoModel
model = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()
assert "actionclip" not in type(model).__module__.split(".")[0], type(model).__module__
with torch.no_grad():
    out = model.get_video_features(torch.load({str(tmp_path / "videos.pt")!r})).pooler_output
assert torch.equal(out, torch.load({str(tmp_path / "expected.pt")!r}))
print("remote code ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "remote code ok" in result.stdout


@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=64)).save_pretrained(path)
    return path


@pytest.mark.parametrize("fusion", ["transf", "transf_cls", "lstm", "conv1d"])
def test_from_backbone_loads_every_clip_weight_and_initialises_the_prompts(clip_checkpoint, fusion):
    clip_state = CLIPModel.from_pretrained(clip_checkpoint).state_dict()
    model = ActionCLIPModel.from_backbone(str(clip_checkpoint), fusion=fusion, joint=True)
    state = model.state_dict()
    for key, value in clip_state.items():
        assert torch.equal(state[key], value), key
    fresh = {k: v for k, v in state.items() if k.startswith(("fusion.", "temporal_embedding"))}
    assert fresh
    for key, value in fresh.items():
        assert torch.isfinite(value).all(), key
        assert value.abs().max() < 10, f"{key} looks uninitialised: max {value.abs().max()}"
    std = state["temporal_embedding"].std().item()
    assert 0.015 < std < 0.025
    if fusion == "transf":
        assert 0.015 < state["fusion.frame_position_embeddings.weight"].std().item() < 0.025
        assert torch.equal(state["fusion.layers.0.layer_norm1.weight"], torch.ones(64))
        assert 0.015 < state["fusion.layers.0.mlp.linear1.weight"].std().item() < 0.025
        assert torch.equal(state["fusion.layers.0.mlp.linear1.bias"], torch.zeros(256))
    if fusion == "transf_cls":
        assert 0.01 < state["fusion.pos_embed"].std().item() < 0.025
        assert torch.equal(state["fusion.norm.weight"], torch.ones(64))
    if fusion == "conv1d":
        from actionclip.visual_prompts import TemporalConv1d

        assert torch.equal(state["fusion.conv.weight"], TemporalConv1d.initial_weight(64))
    if fusion == "lstm":
        bound = 64**-0.5
        weights = state["fusion.lstm.weight_ih_l0"]
        assert weights.abs().max() <= bound and weights.std() > bound / 3


def test_from_backbone_refuses_a_model_of_no_supported_family(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not the configuration of a supported image-text model"):
        ActionCLIPModel.from_backbone(str(tmp_path))


HUB_ID = "openai/clip-vit-base-patch16"


def test_from_backbone_of_a_hub_id_offline_asks_no_server_and_says_how_to_pass_a_folder(tmp_path):
    # HF_HUB_OFFLINE=1 in a process of its own (huggingface_hub reads it on import); Python's audit events record
    # every name look-up and connection the call attempts.
    script = f"""
import json, sys
from actionclip import ActionCLIPModel
from actionclip.errors import HubUnreachableError
attempts = []
sys.addaudithook(lambda event, args: attempts.append(event) if event.startswith("socket.") else None)
try:
    ActionCLIPModel.from_backbone({HUB_ID!r}, fusion="meanP")
except HubUnreachableError as error:
    print(json.dumps({{"error": str(error), "attempts": attempts}}))
"""
    env = {key: value for key, value in os.environ.items() if key != "TRANSFORMERS_OFFLINE"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))  # an empty cache
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["attempts"] == []
    assert (
        f"{HUB_ID!r} is not a local folder, the Hugging Face Hub is out of reach (HF_HUB_OFFLINE is set)"
        in report["error"]
    )
    assert f"(`hf download {HUB_ID} --local-dir DIR`) and pass that folder" in report["error"]


def test_from_backbone_of_a_hub_id_without_network_fails_at_once(no_network, tmp_path):
    # today's transformers retries an unreachable Hub for about half a minute
    start = time.monotonic()
    with pytest.raises(HubUnreachableError, match="Hugging Face Hub is out of reach"):
        ActionCLIPModel.from_backbone(HUB_ID, cache_dir=tmp_path)
    assert time.monotonic() - start < 10


def test_fresh_model_initialisation_statistics():
    model = tiny_model(fusion="transf", joint=True)
    assert torch.allclose(model.logit_scale, torch.tensor(2.6592))
    assert 0.015 < model.fusion.frame_position_embeddings.weight.std().item() < 0.025
    assert 0.015 < model.temporal_embedding.std().item() < 0.025


def test_sdpa_and_eager_attention_agree():
    videos, ids = random_videos(), token_ids(3)
    outputs = {}
    for implementation in ("eager", "sdpa"):
        torch.manual_seed(0)
        model = ActionCLIPModel._from_config(
            tiny_config(fusion="transf_cls", joint=True), attn_implementation=implementation
        )
        assert model.config._attn_implementation == implementation
        with torch.no_grad():
            outputs[implementation] = model.eval()(pixel_values=videos, input_ids=ids).logits_per_video
    torch.testing.assert_close(outputs["eager"], outputs["sdpa"], rtol=1e-4, atol=1e-4)


def test_gradient_checkpointing_gives_the_same_gradients():
    videos, ids, labels = random_videos(2), token_ids(2), torch.tensor([0, 1])
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(fusion="transf").train()
        if checkpointing:  # transformers 5.25 renamed it (the old name warns); before, only the old name
            (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
        model(pixel_values=videos, input_ids=ids, labels=labels).loss.backward()
        grads.append(model.fusion.layers[0].mlp.linear1.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("fusion", "attention", "fusion must be one of"),
        ("num_frames", 0, "num_frames"),
        ("shift_fold_div", 1, "shift_fold_div"),
        ("templates", ["no placeholder"], "exactly one"),
        ("contrastive_loss", "mse", "contrastive_loss"),
        ("fusion_num_heads", 5, "divide"),
    ],
)
def test_config_rejects_bad_values_with_clear_messages(field, value, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**{field: value})


def test_config_accepts_the_original_fusion_spellings_and_round_trips(tmp_path):
    config = tiny_config(fusion="Transf_cls", shift=True)
    assert config.fusion == "transf_cls"
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, ActionCLIPConfig)
    assert loaded.fusion == "transf_cls" and loaded.shift and loaded.text_config.hidden_size == 64
    assert len(loaded.templates) == 16


# ---------------------------------------------------------------------------------------------------------------
# transformers conformance (the full common tests run with `make test-transformers`)


def test_return_loss_without_labels_pairs_text_i_with_video_i():
    model = tiny_model(seed=1, fusion="meanP").eval()
    videos, texts = random_videos(batch=3), token_ids(3)
    with torch.no_grad():
        implicit = model(pixel_values=videos, input_ids=texts, return_loss=True).loss
        explicit = model(pixel_values=videos, input_ids=texts, labels=torch.arange(3)).loss
    assert implicit is not None and torch.equal(implicit, explicit)


def test_return_dict_false_gives_tuples_and_the_frame_path_returns_hidden_states_and_attentions():
    model = tiny_model(seed=2, fusion="transf", shift=True, attn_implementation="eager").eval()
    videos, texts = random_videos(batch=2), token_ids(2)
    with torch.no_grad():
        as_tuple = model(pixel_values=videos, input_ids=texts, return_dict=False)
        out = model(pixel_values=videos, input_ids=texts, output_hidden_states=True, output_attentions=True)
        features = model.get_video_features(videos, return_dict=False)
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], out.logits_per_video)
    assert isinstance(features, tuple) and torch.equal(features[1], out.vision_model_output.pooler_output)
    vision = out.vision_model_output
    layers = model.config.vision_config.num_hidden_layers
    assert len(vision.hidden_states) == layers + 1 and len(vision.attentions) == layers
    assert vision.hidden_states[0].shape == (2 * 8, 17, VISION["hidden_size"])  # (B*T, tokens, width)
    assert vision.attentions[0].shape == (2 * 8, VISION["num_attention_heads"], 17, 17)
    # The last layer's tokens, per video (as CLIP's `last_hidden_state` is its `hidden_states[-1]`).
    assert torch.equal(vision.hidden_states[-1].reshape(2, 8 * 17, -1), vision.last_hidden_state)
    assert len(out.text_model_output.hidden_states) == model.config.text_config.num_hidden_layers + 1


@pytest.mark.parametrize("name", ["transf", "joint+shift+transf"])
def test_video_features_follow_clips_image_features_and_keep_the_frame_embeddings(name):
    """As `CLIPModel.get_image_features`: `last_hidden_state` is the vision tower's (its width, not D), the projected
    embedding is `pooler_output`; the frame embeddings have a field of their own (issue 28)."""
    model = tiny_model(seed=3, **PROMPT_SETTINGS[name]).eval()
    videos = random_videos(batch=2, frames=5)
    assert VISION["hidden_size"] != model.config.projection_dim
    with torch.no_grad():
        features = model.get_video_features(videos, output_hidden_states=True)
        frame_embeds = model.get_frame_features(videos)
        video_embeds = model.fusion(frame_embeds)
    tokens_per_frame = (VISION["image_size"] // VISION["patch_size"]) ** 2 + 1
    assert features.last_hidden_state.shape == (2, 5 * tokens_per_frame, VISION["hidden_size"])
    assert torch.equal(features.last_hidden_state.flatten(), features.hidden_states[-1].flatten())
    assert features.frame_embeds.shape == (2, 5, model.config.projection_dim)
    torch.testing.assert_close(features.frame_embeds, frame_embeds)
    torch.testing.assert_close(features.pooler_output, video_embeds)


def test_closed_set_head_in_fp16_with_zero_class_embeddings_gives_finite_logits():
    from actionclip import ActionCLIPForVideoClassification

    torch.manual_seed(0)
    classifier = ActionCLIPForVideoClassification(tiny_config(fusion="meanP", num_labels=3)).half().eval()
    assert torch.count_nonzero(classifier.class_embeddings) == 0  # a fresh head
    with torch.no_grad():
        logits = classifier(pixel_values=random_videos(batch=2).half()).logits
    assert torch.isfinite(logits).all()


def test_weights_missing_from_a_checkpoint_get_clips_initialisation_in_the_towers(tmp_path):
    torch.manual_seed(0)
    saved = ActionCLIPModel(tiny_config(fusion="meanP"))
    without_text_tower = {k: v for k, v in saved.state_dict().items() if not k.startswith("text_model.")}
    saved.save_pretrained(tmp_path, state_dict=without_text_tower)
    model = ActionCLIPModel.from_pretrained(tmp_path)  # the text tower starts fresh
    # CLIP's scheme for the attention input projections: width**-0.5 * (2 * layers)**-0.5 (0.0625 here, not 0.02).
    expected = TEXT["hidden_size"] ** -0.5 * (2 * TEXT["num_hidden_layers"]) ** -0.5
    std = model.text_model.encoder.layers[0].self_attn.q_proj.weight.std().item()
    assert abs(std - expected) < 0.2 * expected
