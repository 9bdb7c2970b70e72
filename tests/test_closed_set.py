"""The closed-set classifier: saved with its processor, loaded by the Auto classes, agreeing with the zero-shot
pipeline on the same labels."""

import numpy as np
import pytest
import torch
from tiny_models import tiny_model
from transformers import AutoModelForVideoClassification, pipeline
from video_factory import write_test_video

import actionclip  # noqa: F401  (registers the Auto classes and the task)
from actionclip import ActionCLIPForVideoClassification
from actionclip.processing_actionclip import ActionCLIPProcessor

LABELS = ["juggling balls", "playing guitar", "tai chi", "abseiling", "brush hair"]


@pytest.fixture(scope="module")
def directories(tmp_path_factory):
    """A zero-shot model directory and the closed-set classifier frozen from it, each with its processor."""
    zero_shot_dir = tmp_path_factory.mktemp("zero_shot")
    closed_dir = tmp_path_factory.mktemp("closed_set")
    model = tiny_model(seed=7)
    with torch.no_grad():
        model.logit_scale.fill_(np.log(50.0))
    processor = ActionCLIPProcessor.from_model_config(model.config)
    model.save_pretrained(zero_shot_dir)
    processor.save_pretrained(zero_shot_dir)
    classifier = ActionCLIPForVideoClassification.from_actionclip(model, LABELS, processor.tokenizer)
    classifier.save_pretrained(closed_dir)
    processor.save_pretrained(closed_dir)
    return zero_shot_dir, closed_dir


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return [
        str(write_test_video(folder / f"clip_{seed}.mp4", num_frames=20 + 4 * seed, seed=seed)) for seed in range(3)
    ]


def closed_set_probs(model, processor, video) -> torch.Tensor:
    with torch.no_grad():
        logits = model(pixel_values=processor(videos=video)["pixel_values"]).logits
    return logits.softmax(-1)[0]


def test_auto_class_loads_the_saved_classifier_with_its_labels(directories, videos):
    _, closed_dir = directories
    model = AutoModelForVideoClassification.from_pretrained(closed_dir).eval()
    assert isinstance(model, ActionCLIPForVideoClassification)
    assert [model.config.id2label[i] for i in range(len(LABELS))] == LABELS
    assert not any(name.startswith("text_model") for name, _ in model.named_parameters())
    processor = ActionCLIPProcessor.from_pretrained(closed_dir)
    probs = closed_set_probs(model, processor, videos[0])
    assert probs.shape == (len(LABELS),)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_closed_set_scores_equal_the_zero_shot_embedding_ensemble(directories, videos):
    zero_shot_dir, closed_dir = directories
    model = AutoModelForVideoClassification.from_pretrained(closed_dir).eval()
    processor = ActionCLIPProcessor.from_pretrained(closed_dir)
    zero_shot = pipeline("zero-shot-video-classification", model=str(zero_shot_dir), device="cpu")
    results = zero_shot(videos, candidate_labels=LABELS, ensemble="embedding")
    default_results = zero_shot(videos, candidate_labels=LABELS)
    for video, result, default in zip(videos, results, default_results):
        probs = closed_set_probs(model, processor, video)
        by_label = {item["label"]: item["score"] for item in result}
        # Equal up to float rounding, amplified by the scale of 100: the pipeline normalises uint8 frames with one
        # multiply-add on the model's device, the processor on the host.
        assert [by_label[label] for label in LABELS] == pytest.approx(probs.tolist(), abs=1e-4)
        assert default[0]["label"] == LABELS[int(probs.argmax())]  # the paper's ensemble agrees on the top-1
        assert default[0]["score"] != pytest.approx(result[0]["score"], abs=1e-6)  # ... with other scores


def test_transformers_video_classification_pipeline_classifies_a_file(directories, videos):
    _, closed_dir = directories
    classifier = pipeline("video-classification", model=str(closed_dir), device="cpu")
    assert type(classifier.video_processor).__name__ == "ActionCLIPVideoProcessor"
    result = classifier(videos[0], top_k=len(LABELS))
    model = AutoModelForVideoClassification.from_pretrained(closed_dir).eval()
    probs = closed_set_probs(model, ActionCLIPProcessor.from_pretrained(closed_dir), videos[0])
    by_label = {item["label"]: item["score"] for item in result}
    assert [by_label[label] for label in LABELS] == pytest.approx(probs.tolist(), abs=1e-6)
