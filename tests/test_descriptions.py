"""Label descriptions (`actionclip.descriptions`): extra prompts per class in the pipeline, `actionclip classify`,
the evaluation code and `actionclip describe`, with tiny real models (a tiny GPT-2 and tokenizer built offline)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_models import tiny_model
from video_factory import write_test_video

from actionclip.errors import InvalidDescriptionsError

LABELS = ["juggling balls", "playing guitar", "tai chi"]
TEMPLATES = ["a video of {}", "{}", "a person doing {}"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from actionclip.processing_actionclip import ActionCLIPProcessor

    model = tiny_model(seed=0, templates=TEMPLATES)
    directory = tmp_path_factory.mktemp("model")
    model.save_pretrained(directory)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def classifier(model_dir):
    from transformers import pipeline

    import actionclip  # noqa: F401

    return pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")


def frames(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)


def scores(results) -> dict:
    return {item["label"]: item["score"] for item in results}


@pytest.mark.parametrize("ensemble", ["probs", "embedding"])
def test_one_description_equal_to_the_label_scores_as_the_plain_label(classifier, ensemble):
    videos = [frames(0), frames(1)]
    plain = classifier(videos, candidate_labels=LABELS, ensemble=ensemble)
    described = classifier(videos, candidate_labels={label: [label] for label in LABELS}, ensemble=ensemble)
    for a, b in zip(plain, described):
        assert scores(a) == pytest.approx(scores(b), abs=1e-6)


def test_descriptions_are_extra_prompts_averaged_per_template_with_the_label(classifier):
    from actionclip.prompts import PromptTemplater

    descriptions = {"juggling balls": ["throwing three balls up and catching them"], "tai chi": []}
    got = classifier(frames(0), candidate_labels={**descriptions, "playing guitar": ["strumming"]}, top_k=None)
    # By hand: each text in each template, unit-normalised, averaged per (template, class), re-normalised.
    model = classifier.model
    texts = [["juggling balls", "throwing three balls up and catching them"], ["tai chi"],
             ["playing guitar", "strumming"]]  # fmt: skip
    with torch.no_grad():
        rows = []
        for template in TEMPLATES:
            for group in texts:
                prompts = classifier.processor(text=[template.replace("{}", t) for t in group], padding=True)
                embeds = torch.nn.functional.normalize(model.get_text_features(**prompts).pooler_output, dim=-1)
                rows.append(torch.nn.functional.normalize(embeds.mean(0), dim=-1))
        text = torch.stack(rows)
        pixel_values = classifier.processor(videos=[frames(0)])["pixel_values"]
        video = torch.nn.functional.normalize(model.get_video_features(pixel_values).pooler_output, dim=-1)
        logits = (model.scale() * video @ text.t()).reshape(len(TEMPLATES), 3)
        expected = logits.softmax(-1).mean(0)
    order = ["juggling balls", "tai chi", "playing guitar"]
    assert [scores(got)[label] for label in order] == pytest.approx(expected.tolist(), abs=1e-5)
    assert PromptTemplater(TEMPLATES).num_templates == 3


def test_bad_descriptions_are_refused_with_a_typed_error(classifier, tmp_path):
    for bad in ({"run": 3}, {"run": [""]}, {"": ["x"]}, {}):
        with pytest.raises(InvalidDescriptionsError):
            classifier(frames(0), candidate_labels=bad)
    from actionclip.descriptions import load_descriptions

    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(InvalidDescriptionsError, match="bad.json"):
        load_descriptions(tmp_path / "bad.json")
    with pytest.raises(InvalidDescriptionsError, match="no such file"):
        load_descriptions(tmp_path / "missing.json")


def test_descriptions_longer_than_77_tokens_are_counted_and_warned_about():
    from actionclip.descriptions import warn_long_descriptions
    from actionclip.tokenizer import load_clip_tokenizer

    descriptions = {"run": ["a person runs " * 30, "fast"], "swim": ["a person swims " * 30]}
    with pytest.warns(UserWarning, match="2 of 3 description prompts exceed 77 tokens"):
        assert warn_long_descriptions(descriptions, load_clip_tokenizer()) == 2
    with pytest.warns(UserWarning, match="4 of 6"):
        assert warn_long_descriptions(descriptions, load_clip_tokenizer(), ["{}", "a video of {}"]) == 4


def test_evaluation_text_embeddings_with_label_descriptions_match_the_plain_labels(model_dir):
    from actionclip.evaluation.runner import ProtocolEvaluator
    from actionclip.model_loading import load_model_and_processor

    model, processor = load_model_and_processor(model_dir)
    plain = ProtocolEvaluator(model, processor).text_embeddings(LABELS)
    described = ProtocolEvaluator(model, processor, descriptions={label: [label] for label in LABELS})
    torch.testing.assert_close(described.text_embeddings(LABELS), plain, rtol=1e-5, atol=1e-6)
    other = ProtocolEvaluator(model, processor, descriptions={"tai chi": ["slow martial art"]})
    assert not torch.allclose(other.text_embeddings(LABELS), plain)
    assert other.metadata("p", "s", "d", "zero-shot")["descriptions"] == 1


def test_classify_reads_a_descriptions_file(model_dir, tmp_path, capsys):
    from actionclip.commands import main

    video = write_test_video(tmp_path / "clip.mp4", num_frames=8, height=32, width=32)
    path = tmp_path / "descriptions.json"
    path.write_text(json.dumps({label: [label] for label in LABELS}))
    common = [str(video), "--model", str(model_dir), "--json", "--no-progress"]
    assert main(["classify", *common, "--labels", ",".join(LABELS)]) == 0
    plain = json.loads(capsys.readouterr().out)[0]["predictions"]
    assert main(["classify", *common, "--descriptions", str(path)]) == 0
    described = json.loads(capsys.readouterr().out)[0]["predictions"]
    assert scores(described) == pytest.approx(scores(plain), abs=1e-6)
    path.write_text("{not json")
    assert main(["classify", *common, "--descriptions", str(path)]) == 2
    assert capsys.readouterr().err.startswith("actionclip classify: error: descriptions file")


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    """A GPT-2 of one tiny layer with a word-level tokenizer, built and saved offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = "<eos> <unk> a the person video of action in one sentence describe what does , : ' . moves hands arms " \
        "balls guitar slowly quickly up down juggling playing tai chi throws catches".split()  # fmt: skip
    backend = Tokenizer(models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(words), n_positions=64, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=0, eos_token_id=0)  # fmt: skip
    directory = tmp_path_factory.mktemp("gpt2")
    GPT2LMHeadModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_describe_writes_a_descriptions_file_with_a_text_generation_model(tiny_gpt2, tmp_path, capsys):
    from actionclip.commands import main
    from actionclip.descriptions import load_descriptions

    out = tmp_path / "descriptions.json"
    labels = "juggling balls,playing guitar"
    assert main(["describe", labels, "--model", str(tiny_gpt2), "--output", str(out), "--num", "2",
                 "--max-new-tokens", "6", "--device", "cpu"]) == 0  # fmt: skip
    descriptions = load_descriptions(out)
    assert list(descriptions) == ["juggling balls", "playing guitar"]
    assert all(1 <= len(texts) <= 2 for texts in descriptions.values())
    assert "wrote" in capsys.readouterr().out
    again = tmp_path / "again.json"
    main(["describe", labels, "--model", str(tiny_gpt2), "--output", str(again), "--num", "2",
          "--max-new-tokens", "6", "--device", "cpu"])  # fmt: skip
    assert load_descriptions(again) == descriptions  # seeded sampling
    assert main(["describe", labels, "--model", str(tiny_gpt2), "--output", str(out)]) == 2  # exists
    assert main(["describe", "nosuchlist", "--model", str(tiny_gpt2), "--output", str(tmp_path / "x.json")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "exists" in errors[0] and "neither a label file" in errors[1]
