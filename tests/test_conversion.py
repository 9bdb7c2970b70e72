"""Parity with the authors' implementation: converted released checkpoints reproduce the reference outputs."""

import pickle
import subprocess
import sys

import pytest
import torch

from actionclip import ActionCLIPModel, CheckpointConversionError, UnsafeCheckpointError
from actionclip.convert_original import convert_original_checkpoint, load_checkpoint, original_to_actionclip
from actionclip.scoring import template_ensemble_probs

# (checkpoint file, expected-output file, how to read the checkpoint)
CASES = [
    ("Transf.pt", "Transf_expected.pt", "released"),
    ("LSTM.pt", "LSTM_expected.pt", "released"),
    ("Transf_cls.pt", "Transf_cls_expected.pt", "released"),
    ("tsm_meanP.pt", "tsm_meanP_expected.pt", "released"),
    ("Transf.pt", "meanP_expected.pt", "clip_only"),  # meanP: the CLIP weights of Transf.pt, no fusion
]


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


@pytest.fixture(scope="module", params=CASES, ids=[case[1].removesuffix("_expected.pt") for case in CASES])
def converted(request, reference_dir):
    checkpoint_name, expected_name, kind = request.param
    checkpoint = load_checkpoint(reference_dir / checkpoint_name)
    if kind == "clip_only":
        checkpoint = checkpoint["model_state_dict"]  # a plain OpenAI CLIP state dict
    config, state = original_to_actionclip(checkpoint)
    model = ActionCLIPModel(config)
    model.load_state_dict(state, strict=True)
    expected = torch.load(reference_dir / expected_name, weights_only=True, map_location="cpu")
    return model.eval(), expected


def test_frame_embeddings_match_reference(converted, reference_inputs):
    model, expected = converted
    with torch.no_grad():
        frames = model.get_frame_features(reference_inputs["pixel_values"])
    assert relative_error(frames.reshape(-1, frames.shape[-1]), expected["frame_embeds"]) < 1e-5


def test_video_embeddings_match_reference(converted, reference_inputs):
    model, expected = converted
    with torch.no_grad():
        videos = model.get_video_features(reference_inputs["pixel_values"]).pooler_output
    assert relative_error(videos, expected["video_embeds"]) < 1e-5


def test_text_embeddings_match_reference(converted, reference_inputs):
    model, expected = converted
    with torch.no_grad():
        texts = model.get_text_features(reference_inputs["template_major_token_ids"]).pooler_output
    assert relative_error(texts, expected["text_embeds"]) < 1e-5


def test_evaluation_logits_and_template_probabilities_match_reference(converted, reference_inputs):
    model, expected = converted
    with torch.no_grad():
        out = model(
            pixel_values=reference_inputs["pixel_values"],
            input_ids=reference_inputs["template_major_token_ids"],
            logit_scale=100.0,  # the original's evaluation scale
        )
    assert relative_error(out.logits_per_video, expected["logits"]) < 1e-5
    probs = template_ensemble_probs(out.logits_per_video, num_templates=16)
    assert (probs - expected["probs"]).abs().max().item() < 1e-5


def test_training_loss_matches_reference(converted, reference_inputs):
    model, expected = converted
    with torch.no_grad():
        out = model(
            pixel_values=reference_inputs["pixel_values"],
            input_ids=reference_inputs["train_token_ids"],
            labels=reference_inputs["train_labels"],
        )  # learned exp(logit_scale), as in training
    assert relative_error(out.logits_per_video, expected["train_logits_per_video"]) < 1e-5
    assert abs(out.loss.item() - expected["train_loss"].item()) < 1e-5


def test_converter_reads_sizes_and_prompts_from_the_tensors(reference_dir):
    config, _ = original_to_actionclip(load_checkpoint(reference_dir / "Transf_cls.pt"))
    assert (config.vision_config.hidden_size, config.vision_config.num_hidden_layers) == (128, 2)
    assert (config.vision_config.patch_size, config.vision_config.image_size) == (8, 32)
    assert (config.text_config.hidden_size, config.text_config.num_attention_heads) == (64, 1)
    assert config.projection_dim == 64 and config.num_frames == 8
    assert config.fusion == "transf_cls" and config.fusion_num_layers == 6 and not config.shift
    shift_config, _ = original_to_actionclip(load_checkpoint(reference_dir / "tsm_meanP.pt"))
    assert shift_config.shift and shift_config.fusion == "meanP"


def test_converted_directory_loads_with_from_pretrained_and_processor(tmp_path, reference_dir, reference_inputs):
    model = convert_original_checkpoint(reference_dir / "LSTM.pt", tmp_path / "lstm")
    reloaded = ActionCLIPModel.from_pretrained(tmp_path / "lstm").eval()
    with torch.no_grad():
        a = model.get_video_features(reference_inputs["pixel_values"]).pooler_output
        b = reloaded.get_video_features(reference_inputs["pixel_values"]).pooler_output
    assert torch.equal(a, b)
    from actionclip.processing_actionclip import ActionCLIPProcessor

    processor = ActionCLIPProcessor.from_pretrained(tmp_path / "lstm")
    assert processor.num_frames == 8


def test_unknown_fusion_keys_are_refused_with_their_names(reference_dir):
    checkpoint = load_checkpoint(reference_dir / "LSTM.pt")
    checkpoint["fusion_model_state_dict"]["module.mystery.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointConversionError, match="mystery"):
        original_to_actionclip(checkpoint)


def test_forcing_a_fusion_that_leaves_weights_unused_is_refused(reference_dir):
    with pytest.raises(CheckpointConversionError, match="cannot map"):
        original_to_actionclip(load_checkpoint(reference_dir / "Transf.pt"), fusion="meanP")


def test_non_clip_state_dict_is_refused():
    with pytest.raises(CheckpointConversionError, match="visual.conv1.weight"):
        original_to_actionclip({"encoder.weight": torch.zeros(2, 2)})


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickle_with_a_code_payload_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model_state_dict": {"x": _Payload()}}, path)
    with pytest.raises(UnsafeCheckpointError, match="evil.pt"):
        load_checkpoint(path)


def test_raw_pickle_file_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(CheckpointConversionError):
        load_checkpoint(path)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointConversionError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_convert_command_line_writes_a_loadable_directory(tmp_path, reference_dir):
    out = tmp_path / "converted"
    result = subprocess.run(
        [sys.executable, "-m", "actionclip.cli", "convert", str(reference_dir / "Transf.pt"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    model = ActionCLIPModel.from_pretrained(out)
    assert model.config.fusion == "transf"
    assert (out / "processor_config.json").exists() or (out / "preprocessor_config.json").exists()
