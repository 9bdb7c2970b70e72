"""No loading path runs code from a file or directory it was given, and text inputs behave as documented."""

import json
import pathlib

import pytest
import torch
from tiny_models import save_tiny_model_dir, tiny_model
from transformers import AutoConfig, AutoModel, pipeline
from video_factory import write_test_video
from weight_factory import malicious_checkpoint

import actionclip  # noqa: F401
from actionclip import ActionCLIPModel
from actionclip.commands import main
from actionclip.errors import InvalidLabelsError, InvalidTemplateError, InvalidWeightsError, UnsafeCheckpointError
from actionclip.pipeline_zero_shot_video_classification import ZeroShotVideoClassificationPipeline
from actionclip.processing_actionclip import ActionCLIPProcessor
from actionclip.prompts import PromptTemplater
from actionclip.weight_files import load_checkpoint


def test_the_payload_really_runs_code_when_unpickled_unsafely(tmp_path):
    marker = tmp_path / "marker"
    path = malicious_checkpoint(tmp_path / "evil.pt", marker, {"weight": torch.zeros(2)})
    torch.load(path, weights_only=False)  # the control: what every safe path below must not do
    assert marker.read_text() == "code ran"


def test_load_checkpoint_refuses_a_pickle_with_a_code_payload(tmp_path):
    marker = tmp_path / "marker"
    path = malicious_checkpoint(tmp_path / "evil.pt", marker, {"model_state_dict": {"logit_scale": torch.ones(())}})
    with pytest.raises(UnsafeCheckpointError, match="evil.pt"):
        load_checkpoint(path)
    assert not marker.exists()


def test_convert_command_refuses_a_pickle_with_a_code_payload(tmp_path, capsys):
    marker = tmp_path / "marker"
    path = malicious_checkpoint(tmp_path / "evil.pt", marker, {"model_state_dict": {"logit_scale": torch.ones(())}})
    assert main(["convert", str(path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("actionclip convert: error:") and "evil.pt" in err[0]
    assert not marker.exists()


def test_from_pretrained_refuses_a_pytorch_model_bin_with_a_code_payload(tmp_path):
    marker = tmp_path / "marker"
    model = tiny_model()
    model.config.save_pretrained(tmp_path)
    malicious_checkpoint(tmp_path / "pytorch_model.bin", marker, dict(model.state_dict()))
    with pytest.raises(InvalidWeightsError, match="pytorch_model.bin.*could run code"):
        ActionCLIPModel.from_pretrained(tmp_path)
    with pytest.raises(InvalidWeightsError, match="pytorch_model.bin.*could run code"):
        AutoModel.from_pretrained(tmp_path)
    assert not marker.exists()


def remote_code_directory(path: pathlib.Path) -> pathlib.Path:
    """A model directory whose config points at code that writes a marker file when imported."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "configuration_evil.py").write_text(
        "import pathlib\n"
        "pathlib.Path(__file__).resolve().parent.joinpath('marker').write_text('code ran')\n"
        "from transformers import PretrainedConfig\n\n\n"
        "class EvilConfig(PretrainedConfig):\n"
        "    model_type = 'evil'\n"
    )
    auto_map = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "configuration_evil.EvilConfig"}
    (path / "config.json").write_text(json.dumps({"model_type": "evil", "auto_map": auto_map}))
    return path


@pytest.mark.parametrize("trust_remote_code", [None, False])
def test_no_code_from_a_model_directory_runs_without_trust_remote_code(tmp_path, trust_remote_code):
    directory = remote_code_directory(tmp_path / "model")
    for load in (AutoConfig.from_pretrained, AutoModel.from_pretrained):
        with pytest.raises(ValueError, match="trust_remote_code"):
            load(str(directory), trust_remote_code=trust_remote_code)
    assert not (directory / "marker").exists()


def test_a_saved_pipeline_runs_no_code_without_trust_remote_code(tmp_path, no_network):
    model = tiny_model()
    model.save_pretrained(tmp_path / "model")
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(tmp_path / "model")
    classifier = pipeline("zero-shot-video-classification", model=str(tmp_path / "model"), device="cpu")
    saved = tmp_path / "saved"
    classifier.save_pretrained(saved)
    code = saved / "pipeline_zero_shot_video_classification.py"
    code.write_text(
        "import pathlib\npathlib.Path(__file__).resolve().parent.joinpath('marker').write_text('ran')\n"
        + code.read_text()
    )
    # With the package imported, the named task is served by the installed pipeline class, not the folder's copy;
    # without a task transformers cannot tell the task of a local folder (it would ask the Hub) and refuses.
    loaded = pipeline("zero-shot-video-classification", model=str(saved), device="cpu")
    assert type(loaded) is ZeroShotVideoClassificationPipeline
    with pytest.raises(RuntimeError, match="without a task|infer task"):
        pipeline(model=str(saved), device="cpu")
    assert not (saved / "marker").exists()


# ---------------------------------------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    path = save_tiny_model_dir(tmp_path_factory.mktemp("text_model"), seed=5, logit_scale=80.0)
    return pipeline("zero-shot-video-classification", model=str(path), device="cpu")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return str(write_test_video(tmp_path_factory.mktemp("text_video") / "clip.mp4", num_frames=16, seed=4))


@pytest.mark.parametrize("labels", [[], ["tai chi", ""], ["tai chi", "   "], ["tai chi", 3]])
def test_empty_or_non_string_labels_are_refused(classifier, video, labels):
    with pytest.raises(InvalidLabelsError, match=r"empty|labels\[1\]"):
        classifier(video, candidate_labels=labels)


def test_duplicate_labels_are_refused_and_named(classifier, video):
    with pytest.raises(InvalidLabelsError, match=r"labels\[0\] 'surfing' and labels\[2\] 'surfing'"):
        classifier(video, candidate_labels=["surfing", "skiing", "surfing"])


def test_non_ascii_labels_are_kept_and_scored_as_distinct_texts(classifier, video):
    labels = ["café dancing", "跳舞", "танцы", "💃 dancing"]
    result = classifier(video, candidate_labels=labels, hypothesis_template="{}")
    assert sorted(item["label"] for item in result) == sorted(labels)
    embeds = classifier.text_embeddings(labels, PromptTemplater("{}"))
    assert torch.cdist(embeds, embeds).fill_diagonal_(1).min() > 1e-3  # every label its own embedding
    ids = classifier.processor.encode_labels(["跳舞"], "{}", padding=True)["input_ids"][0]
    assert classifier.processor.tokenizer.decode(ids, skip_special_tokens=True).strip() == "跳舞"


def test_very_long_labels_are_truncated_to_the_text_context_with_a_warning(classifier, video):
    words = ["somersaulting"] * 80
    first, second = " ".join(words + ["on a trampoline"]), " ".join(words + ["under water"])
    with pytest.warns(UserWarning, match="exceed 77 tokens and are truncated"):
        result = classifier(video, candidate_labels=[first, second, "tai chi"], hypothesis_template="{}")
    scores = {item["label"]: item["score"] for item in result}
    # They differ only after the 77th token, so both are cut to the same text and score the same.
    assert scores[first] == pytest.approx(scores[second], abs=1e-7)


@pytest.mark.parametrize(
    "templates, message",
    [
        ([], "empty"),
        ("a video of dancing", "'{}'"),
        (["a video of {} and {}"], "exactly one"),
        (["a video of {label}"], "'{}'|brace"),
        (["a video of {}", "a video of {}"], "duplicates"),
    ],
)
def test_unusable_templates_are_refused(classifier, video, templates, message):
    with pytest.raises(InvalidTemplateError, match=message):
        classifier(video, candidate_labels=["tai chi", "surfing"], hypothesis_template=templates)


def test_very_long_templates_are_truncated_with_a_warning(classifier, video):
    template = "a very long description of a scene " * 20 + "{}"
    with pytest.warns(UserWarning, match="truncated"):
        result = classifier(video, candidate_labels=["tai chi", "surfing"], hypothesis_template=template)
    # The label comes after the cut: both prompts become the same text.
    assert result[0]["score"] == pytest.approx(0.5, abs=1e-6)


def test_a_template_file_is_read_one_template_per_line(classifier, video, tmp_path):
    path = tmp_path / "templates.txt"
    path.write_text("a video of {}\n\n{}, an action\n", encoding="utf-8")
    from_file = classifier(video, candidate_labels=["tai chi", "surfing"], hypothesis_template=str(path))
    from_list = classifier(
        video, candidate_labels=["tai chi", "surfing"], hypothesis_template=["a video of {}", "{}, an action"]
    )
    assert from_file == from_list
