"""Temporal localisation on real encoded videos with tiny real models, one per visual prompt."""

import json

import numpy as np
import pytest
import torch
from tiny_models import tiny_model
from video_factory import write_test_video

import actionclip  # noqa: F401  (registers the task)
from actionclip.apps.localization import BACKGROUND_LABEL, localize, merge_segments
from actionclip.apps.windows import make_window_grid
from actionclip.commands import main
from actionclip.errors import InvalidTemplateError, InvalidWindowError, PipelineArgumentError
from actionclip.pipeline_zero_shot_video_classification import ZeroShotVideoClassificationPipeline
from actionclip.processing_actionclip import ActionCLIPProcessor
from actionclip.video_io import read_frames

LABELS = ["juggling balls", "playing guitar", "tai chi"]
TEMPLATES = ["a video of {}", "{}, an action"]
POST_NETWORK = ["meanP", "conv1d", "lstm", "transf", "transf_cls"]
FPS = 25
# 100 frames = 4 s; 1 s windows of 8 frames (grid step 0.125 s), stride a quarter window.
WINDOW, STRIDE, NUM_FRAMES = 1.0, 0.25, 8


def make_pipeline(**config) -> ZeroShotVideoClassificationPipeline:
    model = tiny_model(seed=1, num_frames=NUM_FRAMES, **config)
    with torch.no_grad():
        model.logit_scale.fill_(np.log(50.0))
    return ZeroShotVideoClassificationPipeline(
        model=model, processor=ActionCLIPProcessor.from_model_config(model.config), device="cpu"
    )


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_test_video(tmp_path_factory.mktemp("long") / "long.mp4", num_frames=100, fps=FPS, seed=2)


def standalone_scores(classifier, video, frame_indices) -> np.ndarray:
    """The same frames classified as one clip by the ordinary pipeline call."""
    frames = read_frames(video, frame_indices)
    result = classifier(frames, candidate_labels=LABELS, hypothesis_template=TEMPLATES, num_frames=NUM_FRAMES)
    by_label = {item["label"]: item["score"] for item in result}
    return np.array([by_label[label] for label in LABELS])


def count_vision_frames(model) -> list[int]:
    """Frames entering the vision tower, per call (a forward hook on its patch embeddings)."""
    calls: list[int] = []
    model.vision_model.embeddings.register_forward_hook(lambda module, args, output: calls.append(output.shape[0]))
    return calls


@pytest.mark.parametrize("fusion", POST_NETWORK)
def test_cached_window_scores_equal_classifying_the_window_as_a_clip(fusion, video):
    classifier = make_pipeline(fusion=fusion)
    calls = count_vision_frames(classifier.model)
    result = localize(classifier, video, LABELS, window=WINDOW, stride=STRIDE, hypothesis_template=TEMPLATES, top_k=2)
    grid = result.grid
    assert result.cached_frames and grid.num_windows == 13 and result.scores.shape == (13, 3)
    # One vision-tower pass per distinct sampled frame, windows overlapping 4-fold.
    assert sum(calls) == len(grid.distinct_frames) == result.frames_encoded == 32
    for window in (0, 7, 12):
        expected = standalone_scores(classifier, video, grid.frame_indices[window])
        # Float rounding only: the pipeline normalises uint8 frames on the device (one multiply-add), localize on
        # the host.
        np.testing.assert_allclose(result.scores[window], expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("prompt", [dict(shift=True, fusion="meanP"), dict(joint=True, fusion="transf")])
def test_shift_and_joint_encode_every_window_and_score_like_a_clip(prompt, video):
    classifier = make_pipeline(**prompt)
    calls = count_vision_frames(classifier.model)
    result = localize(classifier, video, LABELS, window=WINDOW, stride=STRIDE, hypothesis_template=TEMPLATES)
    assert not result.cached_frames
    assert sum(calls) == result.grid.num_windows * NUM_FRAMES == result.frames_encoded
    for window in (0, 9):
        expected = standalone_scores(classifier, video, result.grid.frame_indices[window])
        # Float rounding only, as above (2.4e-5 seen in a full run, where torch's kernels for the batch differ).
        np.testing.assert_allclose(result.scores[window], expected, atol=1e-4, rtol=0)
    with pytest.raises(PipelineArgumentError, match="Shift or Joint"):
        localize(classifier, video, LABELS, window=WINDOW, stride=STRIDE, cache_frames=True)


def test_cached_and_per_window_paths_agree(video):
    classifier = make_pipeline(fusion="transf")
    cached = localize(classifier, video, LABELS, window=WINDOW, stride=STRIDE)
    whole = localize(classifier, video, LABELS, window=WINDOW, stride=STRIDE, cache_frames=False)
    np.testing.assert_allclose(cached.scores, whole.scores, atol=1e-5, rtol=0)
    assert cached.frames_encoded * 3 < whole.frames_encoded


def test_localize_takes_a_pipeline_and_the_pipeline_refuses_window_options(video):
    classifier = make_pipeline(fusion="meanP")
    result = localize(classifier, video, LABELS, window=2.0, stride=1.0)
    assert [round(start, 6) for start in result.grid.starts] == [0.0, 1.0, 2.0]
    assert result.segments[0]["start"] == 0.0 and result.segments[-1]["end"] == pytest.approx(4.0)
    with pytest.raises(PipelineArgumentError, match=r"window / stride .*actionclip\.apps\.localization\.localize"):
        classifier(video, candidate_labels=LABELS, window=2.0, stride=1.0)


def test_decoded_frames_need_fps_and_give_the_same_scores(video):
    classifier = make_pipeline(fusion="meanP")
    frames = read_frames(video, np.arange(100))
    from_file = localize(classifier, video, LABELS, window=WINDOW, stride=STRIDE)
    from_frames = localize(classifier, frames, LABELS, window=WINDOW, stride=STRIDE, fps=FPS)
    np.testing.assert_allclose(from_file.scores, from_frames.scores, atol=1e-6, rtol=0)
    with pytest.raises(PipelineArgumentError, match="fps"):
        localize(classifier, frames, LABELS, window=WINDOW, stride=STRIDE)


def test_an_empty_template_list_is_refused_as_by_the_pipeline(video):
    classifier = make_pipeline(fusion="meanP")
    with pytest.raises(InvalidTemplateError):
        classifier(str(video), candidate_labels=LABELS, hypothesis_template=[])
    with pytest.raises(InvalidTemplateError):
        localize(classifier, video, LABELS, window=WINDOW, stride=STRIDE, hypothesis_template=[])


@pytest.mark.parametrize(
    ("window", "stride", "message"),
    [(5.0, 1.0, "longer than the video"), (1.0, 0.0, "stride"), (1.0, -1.0, "stride"), (0.0, 1.0, "window")],
)
def test_bad_window_or_stride_is_a_typed_error(video, window, stride, message):
    classifier = make_pipeline(fusion="meanP")
    with pytest.raises(InvalidWindowError, match=message):
        localize(classifier, video, LABELS, window=window, stride=stride)


def test_windows_of_one_label_merge_and_unlabelled_windows_are_background():
    grid = make_window_grid(duration=10.0, num_video_frames=250, window=4.0, stride=1.0, num_frames=8)
    assert grid.num_windows == 7 and grid.stride == 1.0
    chosen = [[("a", 0.9)], [("a", 0.7)], [], [], [("b", 0.6)], [("b", 0.8)], [("b", 1.0)]]
    chosen = [picks or [(BACKGROUND_LABEL, 0.5)] for picks in chosen]
    segments = merge_segments(grid, chosen)
    # Window i starts at i s and answers for [i + 1.5, i + 2.5]; the first from 0, the last to the end.
    assert segments == [
        {"start": 0.0, "end": 3.5, "label": "a", "score": pytest.approx(0.8)},
        {"start": 3.5, "end": 5.5, "label": BACKGROUND_LABEL, "score": 0.5},
        {"start": 5.5, "end": 10.0, "label": "b", "score": pytest.approx(0.8)},
    ]


def test_threshold_without_background_leaves_gaps(video):
    classifier = make_pipeline(fusion="meanP")
    result = localize(classifier, video, LABELS, window=WINDOW, stride=STRIDE, threshold=1.0, background=False)
    assert result.segments == [] and all(picks == [] for picks in result.selected)
    result = localize(classifier, video, LABELS, window=WINDOW, stride=STRIDE, threshold=1.0)
    assert [segment["label"] for segment in result.segments] == [BACKGROUND_LABEL]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    classifier = make_pipeline(fusion="transf")
    classifier.model.save_pretrained(path)
    classifier.processor.save_pretrained(path)
    return path


def test_command_prints_json_and_writes_a_timeline_png(video, model_dir, tmp_path, capsys):
    plot = tmp_path / "timeline.png"
    status = main(
        ["localize", str(video), "--labels", ",".join(LABELS), "--model", str(model_dir)]
        + ["--window", "1s", "--stride", "250ms", "--json", "--plot", str(plot)]
    )
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["windows"]) == 13 and report["frames_encoded"] == 32
    assert set(report["windows"][0]["scores"]) == set(LABELS)
    assert {segment["label"] for segment in report["segments"]} <= set(LABELS) | {BACKGROUND_LABEL}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_window_longer_than_the_video_exits_2_with_one_line(video, model_dir, capsys):
    status = main(["localize", str(video), "--labels", "a,b", "--model", str(model_dir), "--window", "9"])
    error = capsys.readouterr().err
    assert status == 2 and error.count("\n") == 1 and "longer than the video" in error


def test_untrimmed_generator_writes_known_contiguous_segments(tmp_path):
    from actionclip.data.synthetic import SyntheticActionConfig, write_untrimmed_video
    from actionclip.video_io import probe_video

    config = SyntheticActionConfig(num_frames=8, size=(32, 32), fps=8.0)
    labels = ["a red circle moving left", "a red circle moving right", "a blue square growing"]
    segments = write_untrimmed_video(tmp_path / "u.mp4", labels, config, seed=3)
    assert 3 <= len(segments) <= 5 and segments[0]["start"] == 0.0
    for before, after in zip(segments, segments[1:]):
        assert before["end"] == after["start"] and before["label"] != after["label"]
    for segment in segments:
        assert segment["label"] in labels and (segment["end"] - segment["start"]) in (2.0, 3.0, 4.0)
    assert probe_video(tmp_path / "u.mp4").num_frames == segments[-1]["end"] * config.fps
    assert write_untrimmed_video(tmp_path / "again.mp4", labels, config, seed=3) == segments


def test_segment_recall_counts_same_label_matches_at_the_iou():
    from actionclip.apps.localization import segment_recall, temporal_iou

    truth = [{"start": 0, "end": 4, "label": "a"}, {"start": 4, "end": 6, "label": "b"}]
    assert temporal_iou(truth[0], {"start": 2, "end": 4}) == 0.5
    assert temporal_iou(truth[0], {"start": 2, "end": 6}) == pytest.approx(1 / 3)
    # The first truth is matched at IoU 0.5 exactly; the second only by a segment of another label.
    assert segment_recall(truth, [{"start": 2, "end": 4, "label": "a"}, {"start": 4, "end": 7, "label": "a"}]) == 0.5
    assert segment_recall(truth, [{"start": 1, "end": 4, "label": "a"}, {"start": 4.5, "end": 6, "label": "b"}]) == 1
