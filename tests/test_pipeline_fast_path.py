"""The pipeline's inference fast path: uint8 frames normalised on the model's device, weights in the asked dtype,
opt-in torch.compile with static shapes for the last, partial batch."""

import pytest
import torch
from tiny_models import save_tiny_model_dir
from transformers import pipeline
from video_factory import make_frames

import actionclip  # noqa: F401  (registers the task)
from actionclip.errors import ModelCompileError, PipelineArgumentError
from actionclip.processing_actionclip import ActionCLIPProcessor

LABELS = ["juggling balls", "playing guitar", "tai chi", "abseiling"]
TEMPLATES = ["a video of {}", "{}, an action"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model_dir(tmp_path_factory.mktemp("tiny_actionclip_fast"), seed=5, logit_scale=60.0)


@pytest.fixture(scope="module")
def classifier(model_dir):
    return pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def clips():
    """Decoded-like uint8 clips (T, H, W, 3) of the model's frame count, of two sizes."""
    return [make_frames(8, 48 + 8 * (i % 2), 64, seed=i) for i in range(5)]


def scores_of(results):
    return torch.tensor([[item["score"] for item in sorted(result, key=lambda x: x["label"])] for result in results])


def test_uint8_frames_on_the_device_score_as_the_cpu_transform(classifier, clips):
    """The host hands over uint8 frames (resized, cropped); the pipeline normalises them where the model is. The
    scores equal those of today's float32 CPU transform of the same clips."""
    templater_labels, templater, _ = classifier.prepare_labels(LABELS, TEMPLATES)
    text_embeds = classifier.text_embeddings(templater_labels, templater)
    video_processor = classifier.processor.video_processor
    cpu = classifier._collate(
        [
            {"pixel_values": video_processor([clip], return_tensors="pt")["pixel_values"], "num_views": 1}
            for clip in clips
        ],
        len(clips),
    )
    assert cpu["pixel_values"].dtype == torch.float32
    handed_over = classifier._collate(
        [{"frames": video_processor.evaluation_frames(clip)[None], "num_views": 1} for clip in clips], len(clips)
    )
    assert handed_over["frames"].dtype == torch.uint8
    expected = torch.stack(classifier._forward(cpu, text_embeds, templater.num_templates)["scores"])
    got = torch.stack(classifier._forward(handed_over, text_embeds, templater.num_templates)["scores"])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, "float16"])
def test_dtype_puts_the_weights_in_that_dtype(model_dir, classifier, clips, dtype):
    reduced = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu", dtype=dtype)
    wanted = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    assert reduced.model.dtype == wanted
    assert all(p.dtype == wanted for p in reduced.model.parameters())
    expected = scores_of(classifier(clips[:2], candidate_labels=LABELS, hypothesis_template=TEMPLATES))
    got = scores_of(reduced(clips[:2], candidate_labels=LABELS, hypothesis_template=TEMPLATES))
    assert (got - expected).abs().max() < 0.05


def test_dtype_casts_a_model_passed_as_an_object(model_dir):
    model = actionclip.ActionCLIPModel.from_pretrained(model_dir)
    processor = ActionCLIPProcessor.from_pretrained(model_dir)
    reduced = pipeline(
        "zero-shot-video-classification", model=model, processor=processor, device="cpu", dtype=torch.bfloat16
    )
    assert reduced.model.dtype == torch.bfloat16


def test_unusable_dtype_or_compile_option_is_a_typed_error(model_dir):
    with pytest.raises(PipelineArgumentError, match="dtype"):
        pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu", dtype="int8")
    with pytest.raises(PipelineArgumentError, match="compile"):
        pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu", compile="yes")
    with pytest.raises(ModelCompileError, match="compile=False"):
        pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu", compile={"backend": "no_such"})


def test_compiled_pipeline_pads_the_last_batch_to_a_static_shape(model_dir, classifier, clips):
    """5 videos in batches of 2: the last batch is padded to 2 videos, nothing is compiled again for it, and the
    padding's outputs are dropped: the scores equal the uncompiled pipeline's."""
    import torch._dynamo

    compiled = pipeline(
        "zero-shot-video-classification", model=str(model_dir), device="cpu", compile={"backend": "eager"}
    )
    last = compiled._collate([compiled.preprocess(clips[-1])], batch_size=2)
    assert last["frames"].shape[0] == 2 and last["num_rows"] == 1
    # The uncompiled pipeline does not pad (no point in computing the padding eagerly).
    assert classifier._collate([classifier.preprocess(clips[-1])], batch_size=2)["frames"].shape[0] == 1

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled(clips[:2], candidate_labels=LABELS, hypothesis_template=TEMPLATES, batch_size=2)  # compiles
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert graphs >= 1
    results = compiled(clips, candidate_labels=LABELS, hypothesis_template=TEMPLATES, batch_size=2)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs  # the padded batch: no recompile
    assert len(results) == 5
    expected = classifier(clips, candidate_labels=LABELS, hypothesis_template=TEMPLATES, batch_size=2)
    torch.testing.assert_close(scores_of(results), scores_of(expected), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_compile_true_works_or_fails_typed_on_this_machine(model_dir, classifier, clips):
    """The default backend (inductor) needs a C++ compiler on a CPU: it either runs and gives the eager scores, or
    raises ModelCompileError naming the cause."""
    compiled = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu", compile=True)
    try:
        results = compiled(clips[:2], candidate_labels=LABELS, hypothesis_template=TEMPLATES, batch_size=2)
    except ModelCompileError as error:
        assert "compile=False" in str(error)
        return
    expected = classifier(clips[:2], candidate_labels=LABELS, hypothesis_template=TEMPLATES, batch_size=2)
    torch.testing.assert_close(scores_of(results), scores_of(expected), rtol=0, atol=1e-4)
