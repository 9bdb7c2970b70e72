"""The zero-shot video classification pipeline, on real encoded videos and a tiny saved model."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import save_tiny_model_dir, tiny_model
from transformers import pipeline
from video_factory import make_frames, write_test_video

import actionclip  # noqa: F401  (registers the task)
from actionclip.errors import InvalidLabelsError, InvalidTemplateError, VideoDecodeError, VideoInputError
from actionclip.pipeline_zero_shot_video_classification import (
    MissingProcessorError,
    PipelineArgumentError,
    ZeroShotVideoClassificationPipeline,
)
from actionclip.sampling import MultiViewSampler, TSNSampler
from actionclip.scoring import template_ensemble_probs
from actionclip.video_io import probe_video, read_frames

LABELS = ["juggling balls", "playing guitar", "tai chi", "abseiling"]
TEMPLATES = ["a video of {}", "{}, an action", "a person is {}"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model_dir(tmp_path_factory.mktemp("tiny_actionclip"), seed=3, logit_scale=60.0)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return [write_test_video(folder / f"video_{seed}.mp4", num_frames=24 + 3 * seed, seed=seed) for seed in range(4)]


@pytest.fixture(scope="module")
def classifier(model_dir):
    return pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")


def as_vector(result, labels=LABELS) -> torch.Tensor:
    by_label = {item["label"]: item["score"] for item in result}
    return torch.tensor([by_label[label] for label in labels])


def reference_probs(classifier, video, labels=LABELS, templates=None) -> torch.Tensor:
    """The paper's scores computed by hand from the processor and the model's forward pass."""
    processor, model = classifier.processor, classifier.model
    templates = list(model.config.templates) if templates is None else templates
    pixel_values = processor(videos=str(video))["pixel_values"]
    text = processor.encode_labels(labels, templates)
    with torch.no_grad():
        logits = model(pixel_values=pixel_values, **text).logits_per_video
    return template_ensemble_probs(logits, len(templates))[0]


def test_the_task_is_registered_and_builds_from_a_model_directory(classifier):
    assert isinstance(classifier, ZeroShotVideoClassificationPipeline)
    assert classifier.task == "zero-shot-video-classification"
    assert type(classifier.model).__name__ == "ActionCLIPModel"


def test_single_video_gives_the_template_ensembled_probabilities_sorted(classifier, videos):
    result = classifier(str(videos[0]), candidate_labels=LABELS)
    assert [sorted(item) for item in result] == [["label", "score"]] * len(LABELS)
    scores = [item["score"] for item in result]
    assert scores == sorted(scores, reverse=True)
    assert sorted(item["label"] for item in result) == sorted(LABELS)
    assert sum(scores) == pytest.approx(1.0, abs=1e-5)
    expected = reference_probs(classifier, videos[0])
    # The pipeline resizes with Pillow in the input engine, the processor with its torch emulation of Pillow:
    # pixels within one 8-bit level.
    torch.testing.assert_close(as_vector(result), expected, atol=1e-4, rtol=0)
    assert max(scores) > 0.3  # not a uniform distribution: the comparison above means something


def test_every_video_kind_gives_the_same_scores_as_its_file(classifier, videos):
    """Every form of a file gives the path's scores; decoded frames in memory give them too where files are not
    resized while decoding (the decoder's libswscale resize, the default, is close but not the same)."""
    path = videos[1]
    from_path = as_vector(classifier(str(path), candidate_labels=LABELS))
    with open(path, "rb") as handle:
        for kind, video in {"bytes": path.read_bytes(), "pathlib": path, "file object": handle}.items():
            torch.testing.assert_close(
                as_vector(classifier(video, candidate_labels=LABELS)), from_path, atol=1e-4, rtol=0, msg=kind
            )
    frames = read_frames(path, np.arange(probe_video(path).num_frames))  # every frame: 27
    assert frames.shape[0] == 27
    in_memory = {
        "uint8 array": frames,
        "uint8 tensor (T, H, W, 3)": torch.from_numpy(frames),
        "list of PIL images": [Image.fromarray(frame) for frame in frames],
    }
    for kind, video in in_memory.items():
        torch.testing.assert_close(
            as_vector(classifier(video, candidate_labels=LABELS)), from_path, atol=0.02, rtol=0, msg=kind
        )
    video_processor = classifier.processor.video_processor
    try:
        video_processor.resize_while_decoding = False
        from_path = as_vector(classifier(str(path), candidate_labels=LABELS))
        for kind, video in in_memory.items():
            torch.testing.assert_close(
                as_vector(classifier(video, candidate_labels=LABELS)), from_path, atol=1e-4, rtol=0, msg=kind
            )
    finally:
        video_processor.resize_while_decoding = True


def test_list_of_videos_gives_one_result_per_video_in_order(classifier, videos):
    results = classifier([str(v) for v in videos], candidate_labels=LABELS)
    assert len(results) == len(videos)
    for video, result in zip(videos, results):
        torch.testing.assert_close(as_vector(result), reference_probs(classifier, video), atol=1e-4, rtol=0)
    assert not torch.allclose(as_vector(results[0]), as_vector(results[1]))


def test_batching_and_decoding_threads_give_the_same_scores_as_one_by_one(classifier, videos):
    one_by_one = [as_vector(classifier(str(v), candidate_labels=LABELS)) for v in videos]
    for batch_size, num_workers in [(3, 2), (4, 0), (2, 4)]:
        batched = classifier(
            [str(v) for v in videos], candidate_labels=LABELS, batch_size=batch_size, num_workers=num_workers
        )
        for single, result in zip(one_by_one, batched):
            torch.testing.assert_close(as_vector(result), single, atol=1e-6, rtol=0)


def test_custom_templates_are_used_one_or_many(classifier, videos):
    video = str(videos[2])
    for templates in (TEMPLATES[:1], TEMPLATES):
        hypothesis = templates[0] if len(templates) == 1 else templates
        result = classifier(video, candidate_labels=LABELS, hypothesis_template=hypothesis)
        expected = reference_probs(classifier, video, templates=templates)
        torch.testing.assert_close(as_vector(result), expected, atol=1e-6, rtol=0)
    default = as_vector(classifier(video, candidate_labels=LABELS))
    assert not torch.allclose(as_vector(result), default, atol=1e-4)


def test_top_k_keeps_the_best_labels(classifier, videos):
    full = classifier(str(videos[0]), candidate_labels=LABELS)
    assert classifier(str(videos[0]), candidate_labels=LABELS, top_k=2) == full[:2]
    assert classifier(str(videos[0]), candidate_labels=LABELS, top_k=10) == full
    with pytest.raises(PipelineArgumentError, match="top_k"):
        classifier(str(videos[0]), candidate_labels=LABELS, top_k=0)


def test_multi_view_averages_the_scores_of_temporal_clips(classifier):
    frames = make_frames(40, 64, 80, seed=5)
    views = MultiViewSampler(2, TSNSampler(8))(len(frames))
    per_clip = [as_vector(classifier(frames[indices], candidate_labels=LABELS)) for indices in views]
    result = classifier(frames, candidate_labels=LABELS, num_clips=2)
    torch.testing.assert_close(as_vector(result), torch.stack(per_clip).mean(0), atol=1e-6, rtol=0)
    assert not torch.allclose(per_clip[0], per_clip[1], atol=1e-4)


def test_three_crops_take_the_start_centre_and_end_of_the_longer_side(classifier):
    frames = make_frames(8, 64, 80, seed=6)  # resized to 36 x 45: crops at columns 0, 6 and 13
    resized = classifier.processor.video_processor([frames], do_center_crop=False)["pixel_values"][0]
    assert resized.shape[-2:] == (36, 45)
    crops = torch.stack([resized[..., 2:34, left : left + 32] for left in (0, 6, 13)])
    expected = classifier({"pixel_values": crops}, candidate_labels=LABELS)
    result = classifier(frames, candidate_labels=LABELS, num_crops=3)
    # Pillow in the input engine against its torch emulation in the video processor.
    torch.testing.assert_close(as_vector(result), as_vector(expected), atol=1e-4, rtol=0)
    centre_only = classifier(frames, candidate_labels=LABELS)
    assert not torch.allclose(as_vector(result), as_vector(centre_only), atol=1e-5)


def test_text_encoder_runs_once_per_label_set(model_dir, videos):
    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    calls = []
    handle = classifier.model.text_model.register_forward_hook(lambda module, args, output: calls.append(1))
    try:
        paths = [str(v) for v in videos]
        first = classifier(paths, candidate_labels=LABELS, batch_size=2)
        assert len(calls) == 1
        again = classifier(paths[0], candidate_labels=LABELS)
        assert len(calls) == 1  # cached
        torch.testing.assert_close(as_vector(again), as_vector(first[0]), atol=1e-6, rtol=0)
        classifier(paths[0], candidate_labels=LABELS[:3])
        assert len(calls) == 2
        classifier(paths[0], candidate_labels=LABELS, hypothesis_template=TEMPLATES)
        assert len(calls) == 3
        classifier(paths[0], candidate_labels=LABELS, hypothesis_template=TEMPLATES)
        assert len(calls) == 3
    finally:
        handle.remove()


def test_preprocessed_reference_frames_reproduce_the_original_probabilities(reference_dir, tmp_path):
    from actionclip.hub.convert_original import convert_original_checkpoint

    convert_original_checkpoint(reference_dir / "Transf.pt", tmp_path)
    inputs = torch.load(reference_dir / "inputs.pt", weights_only=True, map_location="cpu")
    expected = torch.load(reference_dir / "Transf_expected.pt", weights_only=True, map_location="cpu")["probs"]
    classifier = pipeline("zero-shot-video-classification", model=str(tmp_path), device="cpu")
    options = dict(candidate_labels=inputs["classes"], hypothesis_template=inputs["templates"], logit_scale=100)
    as_tensor = classifier(inputs["pixel_values"], preprocessed=True, batch_size=4, **options)
    as_dicts = classifier([{"pixel_values": video} for video in inputs["pixel_values"]], **options)
    for results in (as_tensor, as_dicts):
        got = torch.stack([as_vector(result, inputs["classes"]) for result in results])
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_converted_checkpoint_reproduces_the_original_probabilities_from_raw_frames_by_default(
    reference_dir, tmp_path
):
    """No `logit_scale` and no templates given: the converted config's evaluation scale (the authors' 100) and
    templates apply. Raw frames go through our own resize, hence the 2e-2 tolerance."""
    from actionclip.hub.convert_original import convert_original_checkpoint

    convert_original_checkpoint(reference_dir / "Transf.pt", tmp_path)
    inputs = torch.load(reference_dir / "inputs.pt", weights_only=True, map_location="cpu")
    expected = torch.load(reference_dir / "Transf_expected.pt", weights_only=True, map_location="cpu")["probs"]
    classifier = pipeline("zero-shot-video-classification", model=str(tmp_path), device="cpu")
    results = classifier(inputs["raw_frames_uint8"].numpy(), candidate_labels=inputs["classes"])
    got = torch.stack([as_vector(result, inputs["classes"]) for result in results])
    assert (got - expected).abs().max().item() < 2e-2
    # The learned scale would not do: the default is what makes the scores match.
    learned = float(classifier.model.logit_scale.detach().exp())
    assert abs(learned - 100.0) > 1.0
    with_learned = classifier(
        inputs["raw_frames_uint8"].numpy(), candidate_labels=inputs["classes"], logit_scale=learned
    )
    assert (torch.stack([as_vector(r, inputs["classes"]) for r in with_learned]) - expected).abs().max().item() > 2e-2


def test_embedding_ensemble_scores_one_averaged_embedding_per_label(classifier, videos):
    from actionclip.scoring import template_averaged_embeddings

    video = str(videos[3])
    result = classifier(video, candidate_labels=LABELS, ensemble="embedding", logit_scale=100)
    processor, model = classifier.processor, classifier.model
    with torch.no_grad():
        video_embeds = torch.nn.functional.normalize(
            model.get_video_features(processor(videos=video)["pixel_values"]).pooler_output, dim=-1
        )
        text = processor.encode_labels(LABELS, list(model.config.templates))
        text_embeds = model.get_text_features(text["input_ids"], text["attention_mask"]).pooler_output
    class_embeds = template_averaged_embeddings(text_embeds, len(model.config.templates))
    expected = (100 * video_embeds @ class_embeds.t()).softmax(-1)[0]
    torch.testing.assert_close(as_vector(result), expected, atol=1e-5, rtol=0)


def test_dtype_option_runs_the_model_in_that_precision(model_dir, videos, classifier):
    doubled = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu", dtype=torch.float64)
    assert doubled.model.dtype == torch.float64
    result = doubled(str(videos[0]), candidate_labels=LABELS)
    torch.testing.assert_close(
        as_vector(result), as_vector(classifier(str(videos[0]), candidate_labels=LABELS)), atol=1e-5, rtol=0
    )


# ---------------------------------------------------------------------------------------------------------- errors


def test_missing_file_is_a_video_decode_error(classifier, tmp_path):
    with pytest.raises(VideoDecodeError, match="no such file") as caught:
        classifier(str(tmp_path / "absent.mp4"), candidate_labels=LABELS)
    assert "absent.mp4" in str(caught.value)


def test_a_file_that_is_not_a_video_is_a_video_decode_error(classifier, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoDecodeError, match="notes.mp4"):
        classifier(str(fake), candidate_labels=LABELS)
    with pytest.raises(VideoDecodeError, match="bytes"):
        classifier(b"\x00\x01" * 500, candidate_labels=LABELS)


def test_unsupported_input_type_is_a_video_input_error(classifier):
    with pytest.raises(VideoInputError, match="expected a path"):
        classifier(12345, candidate_labels=LABELS)
    with pytest.raises(VideoInputError, match="pixel_values"):
        classifier({"pixels": torch.zeros(8, 3, 32, 32)}, candidate_labels=LABELS)
    with pytest.raises(VideoInputError, match="float tensor"):
        classifier(torch.zeros(8, 3, 32, 32, dtype=torch.uint8), candidate_labels=LABELS, preprocessed=True)


def test_skip_gives_none_for_an_unreadable_video_in_a_list(classifier, videos, tmp_path):
    fake = tmp_path / "broken.mp4"
    fake.write_bytes(b"\x00" * 1000)
    with pytest.warns(UserWarning, match="broken.mp4"):
        results = classifier([str(videos[0]), str(fake), str(videos[1])], candidate_labels=LABELS, on_error="skip")
    assert results[1] is None
    assert results[0] == classifier(str(videos[0]), candidate_labels=LABELS)
    assert results[2] == classifier(str(videos[1]), candidate_labels=LABELS)


def test_empty_and_duplicate_labels_are_refused_before_decoding(classifier, tmp_path):
    absent = str(tmp_path / "absent.mp4")  # the label check comes first, so this missing file is not reached
    with pytest.raises(InvalidLabelsError, match="empty"):
        classifier(absent, candidate_labels=[])
    with pytest.raises(InvalidLabelsError, match="required"):
        classifier(absent)
    with pytest.raises(InvalidLabelsError, match="'tai chi'.*same class"):
        classifier(absent, candidate_labels=["tai chi", "abseiling", "tai chi"])


def test_template_without_placeholder_is_refused(classifier, videos):
    with pytest.raises(InvalidTemplateError, match="'{}'"):
        classifier(str(videos[0]), candidate_labels=LABELS, hypothesis_template="a video of dancing")
    with pytest.raises(InvalidTemplateError, match=r"templates\[1\]"):
        classifier(str(videos[0]), candidate_labels=LABELS, hypothesis_template=["a video of {}", "no slot"])


def test_labels_longer_than_the_text_context_are_truncated_with_a_warning(classifier, videos):
    long_label = " ".join(["somersaulting"] * 60)
    with pytest.warns(UserWarning, match="truncated"):
        result = classifier(str(videos[0]), candidate_labels=[long_label, "tai chi"], hypothesis_template="{}")
    assert {item["label"] for item in result} == {long_label, "tai chi"}


def test_model_directory_without_processor_says_how_to_create_one(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    with pytest.raises(MissingProcessorError, match=r"ActionCLIPProcessor.from_model_config\(.*save_pretrained"):
        pipeline("zero-shot-video-classification", model=str(tmp_path), device="cpu")


# ---------------------------------------------------------------------------------------------------------- sharing


def test_saved_pipeline_loads_with_remote_code_where_the_package_is_absent(classifier, videos, tmp_path):
    classifier.save_pretrained(tmp_path)
    expected = classifier(str(videos[0]), candidate_labels=LABELS, top_k=3)
    script = f"""
import sys
sys.modules["actionclip"] = None  # the package cannot be imported in this process
from transformers import pipeline
classifier = pipeline(model={str(tmp_path)!r}, trust_remote_code=True, device="cpu")
assert type(classifier).__name__ == "ZeroShotVideoClassificationPipeline"
assert not type(classifier).__module__.startswith("actionclip"), type(classifier).__module__
print(repr(classifier({str(videos[0])!r}, candidate_labels={LABELS!r}, top_k=3)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    got = eval(result.stdout.strip().splitlines()[-1])
    assert [item["label"] for item in got] == [item["label"] for item in expected]
    assert [item["score"] for item in got] == pytest.approx([item["score"] for item in expected], abs=1e-6)


def test_a_silent_pipe_in_a_list_is_skipped_on_time(classifier, videos):
    import os
    import time

    read_fd, write_fd = os.pipe()  # the writer stays open and never writes
    silent = os.fdopen(read_fd, "rb")
    try:
        started = time.monotonic()
        with pytest.warns(UserWarning, match="skipped"):
            results = classifier(
                [videos[0], silent, videos[1]], candidate_labels=LABELS, num_workers=2, on_error="skip",
                timeout=1.0,
            )  # fmt: skip
        assert time.monotonic() - started < 30
    finally:
        os.close(write_fd)  # first: the reader's close waits for the read-ahead thread's read to return
        silent.close()
    assert results[1] is None
    assert results[0] == classifier(videos[0], candidate_labels=LABELS)
    assert results[2] == classifier(videos[1], candidate_labels=LABELS)


def test_infinite_timeout_is_no_limit(classifier, videos):
    assert classifier(videos[0], candidate_labels=LABELS, timeout=float("inf")) == classifier(
        videos[0], candidate_labels=LABELS
    )


def test_hwaccel_is_a_checked_option_and_a_missing_device_a_typed_error(classifier, videos):
    with pytest.raises(PipelineArgumentError, match="hwaccel must be None"):
        classifier(videos[0], candidate_labels=LABELS, hwaccel="no-such-device")
    try:
        on_device = classifier([videos[0], videos[1]], candidate_labels=LABELS, hwaccel="cuda", num_workers=2)
    except VideoDecodeError as error:  # no usable NVIDIA device here: every file says so
        assert "hardware decoding on 'cuda' could not start" in str(error)
    else:
        assert [r[0]["label"] for r in on_device] == [
            classifier(v, candidate_labels=LABELS)[0]["label"] for v in videos[:2]
        ]


def test_more_frames_than_the_position_table_is_a_pipeline_argument_error(classifier, videos):
    limit = classifier.model.max_frames
    assert limit == classifier.model.config.fusion_max_frames
    with pytest.raises(PipelineArgumentError, match=f"{limit} rows"):
        classifier(videos[0], candidate_labels=LABELS, num_frames=limit + 1)
    size = classifier.model.config.vision_config.image_size
    with pytest.raises(PipelineArgumentError, match=f"{limit} rows"):
        classifier(torch.zeros(limit + 1, 3, size, size), candidate_labels=LABELS, preprocessed=True)


def test_ten_million_frames_are_refused_before_decoding(classifier, videos):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(PipelineArgumentError, match="num_frames"):
        classifier(videos[0], candidate_labels=LABELS, num_frames=10**7)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing was allocated


def test_preprocessed_frames_of_the_wrong_size_are_a_typed_error(classifier):
    with pytest.raises(VideoInputError, match="16x16"):
        classifier(torch.zeros(8, 3, 16, 16), candidate_labels=LABELS, preprocessed=True)
    with pytest.raises(VideoInputError, match="16x16"):
        classifier({"pixel_values": torch.zeros(8, 3, 16, 16)}, candidate_labels=LABELS)


def test_an_unknown_keyword_is_a_pipeline_argument_error_naming_it(classifier, videos):
    with pytest.raises(PipelineArgumentError, match="'num_frame'"):
        classifier(videos[0], candidate_labels=LABELS, num_frame=8)


def test_clips_prepared_elsewhere_give_the_scores_of_their_files(classifier, videos):
    """``{"frames": prepare_clip(video, clip_spec(...))}``: decoding in another process or machine, the model here."""
    from actionclip.video_clips import prepare_clip

    options = dict(candidate_labels=LABELS, num_clips=2, top_k=3)
    spec = classifier.clip_spec(num_clips=2)
    prepared = [{"frames": prepare_clip(str(video), spec)} for video in videos[:2]]
    assert prepared[0]["frames"].dtype == np.uint8 and prepared[0]["frames"].shape == (2, 8, 32, 32, 3)
    files = [str(video) for video in videos[:2]]
    assert classifier(prepared, batch_size=2, **options) == classifier(files, batch_size=2, **options)


def test_prepared_frames_of_the_wrong_kind_are_a_typed_error(classifier):
    with pytest.raises(VideoInputError, match="uint8"):
        classifier({"frames": np.zeros((1, 8, 32, 32, 3), np.float32)}, candidate_labels=LABELS)
    with pytest.raises(VideoInputError, match="takes"):
        classifier({"frames": np.zeros((1, 8, 16, 16, 3), np.uint8)}, candidate_labels=LABELS)
