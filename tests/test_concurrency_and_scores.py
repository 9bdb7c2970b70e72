"""Thread safety of the pipeline, and option values that would silently give wrong scores: all refused."""

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from tiny_models import save_tiny_model_dir, tiny_model
from transformers import pipeline
from video_factory import write_test_video

import actionclip  # noqa: F401
from actionclip.commands import main
from actionclip.errors import (
    InvalidLabelsError,
    InvalidLogitScaleError,
    NonFiniteScoresError,
    PipelineArgumentError,
)
from actionclip.processing_actionclip import ActionCLIPProcessor

WORDS = ["juggling", "rowing", "knitting", "surfing", "boxing", "dancing", "baking", "climbing", "diving", "fencing"]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """``actionclip ARGS`` in this process: (exit status, stdout, stderr)."""
    try:
        status = main([str(arg) for arg in args])
    except SystemExit as exit:  # argparse refusing an option
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model_dir(tmp_path_factory.mktemp("model"), seed=5)


@pytest.fixture(scope="module")
def classifier(model_dir):
    return pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_test_video(tmp_path_factory.mktemp("video") / "clip.mp4", num_frames=16)


def label_set(thread: int, call: int) -> list[str]:
    """A label set no other call uses (so every call encodes text), of varying size and prompt length."""
    rng = np.random.default_rng([thread, call])
    count = int(rng.integers(2, 6))
    return [f"{' '.join(rng.choice(WORDS, size=int(rng.integers(1, 8))))} {thread} {call} {k}" for k in range(count)]


def test_eight_threads_calling_one_pipeline_with_new_labels_match_sequential_calls(classifier):
    pixel_values = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # 2 frames: fast
    options = dict(hypothesis_template=["a video of {}.", "{}, an action"], preprocessed=True)
    threads, calls = 8, 60
    results, errors = {}, []
    barrier = threading.Barrier(threads)

    def work(thread):
        barrier.wait()
        for call in range(calls):
            try:
                results[thread, call] = classifier(pixel_values, candidate_labels=label_set(thread, call), **options)
            except Exception as error:  # every failure is counted, none may happen
                errors.append(f"{type(error).__name__}: {error}")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    assert errors == []
    classifier.clear_text_cache()
    for (thread, call), result in results.items():
        expected = classifier(pixel_values, candidate_labels=label_set(thread, call), **options)
        assert [r["label"] for r in result] == [r["label"] for r in expected]
        assert [r["score"] for r in result] == pytest.approx([r["score"] for r in expected], abs=1e-6)
    assert len(results) == threads * calls


@pytest.mark.parametrize("scale", [math.inf, -100.0, math.nan, 0.0, True])
def test_unusable_logit_scales_are_refused_by_the_pipeline(classifier, video, scale):
    with pytest.raises(PipelineArgumentError, match="logit_scale"):
        classifier(str(video), candidate_labels=["a", "b"], logit_scale=scale)


@pytest.mark.parametrize("scale", [math.inf, -100.0, math.nan, 0.0])
def test_unusable_logit_scales_are_refused_by_the_model(scale):
    model = tiny_model(seed=0)
    with pytest.raises(InvalidLogitScaleError, match="finite positive"):
        model.scale(scale)
    pixel_values, input_ids = torch.randn(1, 8, 3, 32, 32), torch.tensor([[49406, 320, 49407]])
    with pytest.raises(InvalidLogitScaleError):
        model(pixel_values=pixel_values, input_ids=input_ids, logit_scale=scale)


@pytest.mark.parametrize("value", ["inf", "-100", "nan", "0"])
def test_classify_refuses_a_non_finite_or_non_positive_logit_scale(model_dir, video, value, capsys):
    status, _, err = run_cli(
        capsys, "classify", video, "--labels", "a,b", "--model", model_dir, f"--logit-scale={value}"
    )
    assert status == 2 and "--logit-scale" in err and "finite positive" in err


@pytest.mark.parametrize("value", [math.nan, True, 0, -1.0, "5"])
def test_unusable_timeouts_are_refused(classifier, video, value):
    with pytest.raises(PipelineArgumentError, match="timeout"):
        classifier(str(video), candidate_labels=["a", "b"], timeout=value, on_error="skip")


@pytest.mark.parametrize(
    "labels", [["Tai Chi", "tai chi"], ["tai  chi", "tai chi"], ["Rowing", " rowing "], ["TAI\tCHI", "tai chi"]]
)
def test_labels_differing_only_in_case_or_spacing_are_refused_naming_both(classifier, video, labels):
    with pytest.raises(InvalidLabelsError) as caught:
        classifier(str(video), candidate_labels=labels)
    assert repr(labels[0]) in str(caught.value) and repr(labels[1]) in str(caught.value)


def test_labels_that_differ_only_in_case_would_score_the_same(classifier, video):
    """Why they are refused: the text encoder cannot tell them apart."""
    a = classifier(str(video), candidate_labels=["Tai Chi", "rowing"], hypothesis_template="{}")
    b = classifier(str(video), candidate_labels=["tai chi", "rowing"], hypothesis_template="{}")
    assert [r["score"] for r in a] == [r["score"] for r in b]


@pytest.fixture(scope="module")
def nan_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("nan_model")
    model = tiny_model(seed=5)
    with torch.no_grad():
        model.visual_projection.weight.fill_(float("nan"))
    model.save_pretrained(path)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(path)
    return path


def test_a_model_with_nan_weights_is_refused_naming_it(nan_model_dir, video):
    classifier = pipeline("zero-shot-video-classification", model=str(nan_model_dir), device="cpu")
    with pytest.raises(NonFiniteScoresError, match="nan_model"):
        classifier(str(video), candidate_labels=["a", "b"])


def test_classify_json_with_a_nan_model_never_prints_invalid_json(nan_model_dir, video, capsys):
    status, out, err = run_cli(capsys, "classify", video, "--labels", "a,b", "--model", nan_model_dir, "--json")
    assert "NaN" not in out
    if out.strip():
        json.loads(out)
    assert status == 2 and "nan_model" in err and "NaN or infinite scores" in err
    assert len(err.strip().splitlines()) == 1


def test_info_json_with_a_nan_logit_scale_prints_null(tmp_path, capsys):
    model = tiny_model(seed=5)
    with torch.no_grad():
        model.logit_scale.fill_(float("nan"))
    model.save_pretrained(tmp_path)
    status, out, err = run_cli(capsys, "info", tmp_path, "--json")
    assert status == 0, err
    assert json.loads(out)["logit_scale"] is None


@pytest.mark.parametrize("option", [["--logit_scale", "-100"], ["--logit_scale", "inf"], ["--num_frames", "0"]])
def test_eval_refuses_inverting_or_meaningless_options_before_reading_data(model_dir, tmp_path, capsys, option):
    args = ["eval", "--model", model_dir, "--output_dir", tmp_path / "out", "--eval_path", tmp_path / "none", *option]
    status, _, err = run_cli(capsys, *args)
    # Given in the underscore spelling, named in the one --help shows.
    assert status == 2 and option[0].replace("_", "-") in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_the_protocol_evaluator_refuses_a_negative_logit_scale(model_dir):
    from actionclip.evaluation.runner import ProtocolEvaluator
    from actionclip.model_loading import load_model_and_processor

    model, processor = load_model_and_processor(str(model_dir))
    with pytest.raises(InvalidLogitScaleError):
        ProtocolEvaluator(model, processor, logit_scale=-100.0, progress=False)
