"""What a transformers user writes works as they write it (issue 29): the pipeline's inputs and argument names, saved
folders, datasets built for a model, the metric's documented path."""

import doctest
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import torch
from huggingface_hub import ZeroShotImageClassificationOutputElement
from tiny_models import save_tiny_model_dir
from torch.utils.data import Subset
from transformers import pipeline
from transformers.pipelines.pt_utils import KeyDataset
from transformers.testing_utils import compare_pipeline_output_to_hub_spec

import actionclip  # noqa: F401  (registers the task)
from actionclip.errors import VideoTimeoutError
from actionclip.pipeline_zero_shot_video_classification import PipelineArgumentError

REPO_ROOT = Path(__file__).resolve().parent.parent
LABELS = ["a red square moving left", "a blue square moving right", "juggling balls"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # 6 frames, not the default 8: a dataset that ignores the model's processor shows it.
    return save_tiny_model_dir(tmp_path_factory.mktemp("tiny"), seed=5, logit_scale=60.0, num_frames=6)


@pytest.fixture(scope="module")
def classifier(model_dir):
    # Decoding in this process: worker processes would only add their start-up to these few small videos.
    return pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu", num_workers=0)


@pytest.fixture(scope="module")
def paths(video_data):
    return [str(video_data.root / path) for path, _ in video_data.samples["val"][::2]]


@pytest.fixture(scope="module")
def expected(classifier, paths):
    """The list input's results, which every other way of giving the same videos must equal."""
    return classifier(paths, candidate_labels=LABELS)


# -- pipeline inputs (issue 29, item 2)


def test_a_key_dataset_gives_the_list_inputs_results_as_an_iterator(classifier, paths, expected):
    results = classifier(KeyDataset(datasets.Dataset.from_dict({"path": paths}), "path"), candidate_labels=LABELS)
    assert not isinstance(results, list)  # a dataset streams, as transformers' pipelines do
    assert list(results) == expected


def test_a_datasets_column_gives_the_list_inputs_results(classifier, paths, expected):
    column = datasets.Dataset.from_dict({"path": paths})["path"]
    assert not isinstance(column, list)  # datasets >= 4 returns a Column object
    assert classifier(column, candidate_labels=LABELS) == expected


def test_a_torch_subset_gives_the_results_of_its_videos(classifier, paths, expected):
    results = classifier(Subset(paths, [3, 0, 2]), candidate_labels=LABELS)
    assert list(results) == [expected[3], expected[0], expected[2]]


def test_undecoded_datasets_video_items_give_the_list_inputs_results(classifier, paths, expected):
    by_path = datasets.Dataset.from_dict({"video": paths}).cast_column("video", datasets.Video(decode=False))
    items = list(by_path["video"])
    assert items[0] == {"bytes": None, "path": paths[0]}
    assert classifier(items, candidate_labels=LABELS) == expected
    as_bytes = [{"bytes": Path(path).read_bytes(), "path": "clip.mp4"} for path in paths]  # a path not on disk
    assert classifier(as_bytes, candidate_labels=LABELS) == expected
    assert classifier(as_bytes[1], candidate_labels=LABELS) == expected[1]


def test_a_decoding_datasets_video_column_is_decoded_by_our_readers(classifier, paths, expected):
    with pytest.raises(ImportError, match="torchcodec"):  # what datasets itself needs for these values
        datasets.Dataset.from_dict({"video": paths}).cast_column("video", datasets.Video())[0]
    videos = datasets.Dataset.from_dict({"video": paths}).cast_column("video", datasets.Video())
    assert classifier(videos["video"], candidate_labels=LABELS) == expected
    assert list(classifier(KeyDataset(videos, "video"), candidate_labels=LABELS)) == expected


def test_inputs_is_the_first_arguments_keyword(classifier, paths, expected):
    assert classifier(inputs=paths[2], candidate_labels=LABELS) == expected[2]
    assert classifier(inputs=paths, candidate_labels=LABELS) == expected


def test_timeout_is_the_image_pipelines_name_for_the_time_a_video_may_take(classifier, paths):
    read_fd, write_fd = os.pipe()  # the writer stays open and never writes
    silent = os.fdopen(read_fd, "rb")
    try:
        started = time.monotonic()
        with pytest.raises(VideoTimeoutError):
            classifier(silent, candidate_labels=LABELS, timeout=1.0)
        assert time.monotonic() - started < 20
    finally:
        os.close(write_fd)  # first: the reader's close waits for the read-ahead thread's read to return
        silent.close()
    with pytest.raises(PipelineArgumentError, match="'decode_timeout'"):  # one name per concept: no alias
        classifier(paths[0], candidate_labels=LABELS, decode_timeout=1.0)


def test_results_have_the_zero_shot_image_pipelines_form(classifier, paths):
    result = classifier(paths[1], candidate_labels=LABELS, hypothesis_template="a video of {}")
    for item in result:
        compare_pipeline_output_to_hub_spec(item, ZeroShotImageClassificationOutputElement)
        assert list(item) == ["score", "label"]
    scores = [item["score"] for item in result]
    assert scores == sorted(scores, reverse=True) and sorted(item["label"] for item in result) == sorted(LABELS)
    assert max(scores) > 0.4  # not uniform: the order above means something


# -- README and data defaults (issue 29, item 7)


def readme_block_after(marker: str) -> str:
    """The first ```python block after ``marker`` in the README, as written there."""
    readme = (REPO_ROOT / "README.md").read_text()
    return re.search(r"```python\n(.*?)```", readme[readme.index(marker) :], re.S).group(1)


def test_a_folder_saved_by_the_pipeline_loads_with_the_package_and_no_trust_remote_code(classifier, paths, tmp_path):
    block = readme_block_after("any saved folder, that one included")
    assert "trust_remote_code" not in block
    script = "\n".join(
        [
            "import json, sys",
            "import actionclip",
            "from transformers import pipeline as make_pipeline",
            "classifier = make_pipeline('zero-shot-video-classification', model=sys.argv[1], device='cpu')",
            "d = sys.argv[2]",
            block,  # as written in the README
            "assert type(clf).__module__ == 'actionclip.pipeline_zero_shot_video_classification'",
            "print(json.dumps(clf(sys.argv[3], candidate_labels=json.loads(sys.argv[4]))))",
        ]
    )
    model = str(classifier.model.name_or_path)
    result = subprocess.run(
        [sys.executable, "-c", script, model, str(tmp_path / "saved"), paths[0], json.dumps(LABELS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "custom_pipelines" in json.loads((tmp_path / "saved" / "config.json").read_text())
    got = json.loads(result.stdout.strip().splitlines()[-1])
    want = classifier(paths[0], candidate_labels=LABELS)
    assert [item["label"] for item in got] == [item["label"] for item in want]
    assert [item["score"] for item in got] == pytest.approx([item["score"] for item in want], abs=1e-6)


def test_from_hf_dataset_items_follow_the_models_processor(model_dir, video_data):
    from actionclip.data.datasets import VideoClassificationDataset
    from actionclip.processing_actionclip import ActionCLIPProcessor

    rows = {"video": [str(video_data.root / path) for path, _ in video_data.samples["val"]]}
    rows["label"] = [label for _, label in video_data.samples["val"]]
    hf_dataset = datasets.Dataset.from_dict(rows)
    from_folder = VideoClassificationDataset.from_hf_dataset(hf_dataset, video_data.labels, processor=str(model_dir))
    assert tuple(from_folder[0]["pixel_values"].shape) == (6, 3, 32, 32)  # the model's 6 frames of 32 px
    processor = ActionCLIPProcessor.from_pretrained(model_dir)
    from_object = VideoClassificationDataset.from_hf_dataset(hf_dataset, video_data.labels, processor=processor)
    torch.testing.assert_close(from_object[3]["pixel_values"], from_folder[3]["pixel_values"])
    # What passing the model's settings by hand gives.
    by_hand = VideoClassificationDataset.from_hf_dataset(
        hf_dataset, video_data.labels, num_frames=6, video_processor=processor.video_processor
    )
    torch.testing.assert_close(from_folder[3]["pixel_values"], by_hand[3]["pixel_values"], atol=0, rtol=0)


def test_the_metric_loads_as_its_documentation_says(no_network, tmp_path, monkeypatch):
    from actionclip.evaluation.metrics import load_video_accuracy

    documentation = load_video_accuracy().inputs_description
    examples = doctest.DocTestParser().get_doctest(documentation, {}, "video_accuracy", None, 0)
    assert any("evaluate.load(" in example.source for example in examples.examples)
    monkeypatch.chdir(tmp_path)  # the documented line works from anywhere, not only from the repository
    runner = doctest.DocTestRunner()
    runner.run(examples)
    assert runner.summarize(verbose=False) == doctest.TestResults(failed=0, attempted=len(examples.examples))


def test_topk_keys_are_named_after_the_requested_k_and_a_k_above_the_classes_is_refused():
    from actionclip.evaluation.metrics import compute_video_accuracy, make_compute_metrics

    scores = [[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.3, 0.6, 0.1], [0.6, 0.3, 0.1]]  # true-class ranks 0, 1, 2, 0
    labels = [0, 1, 2, 0]
    assert set(compute_video_accuracy(scores, labels)) == {
        "top1_accuracy",
        "mean_class_accuracy",
        "num_videos",
        "num_classes",
    }  # top-5 of 3 classes says nothing: the default leaves it out rather than report a "top3" nobody asked for
    assert compute_video_accuracy(scores, labels, ks=(1, 2))["top2_accuracy"] == 0.75
    with pytest.raises(ValueError, match=r"ks \(5,\) exceed the 3 classes"):
        compute_video_accuracy(scores, labels, ks=(1, 5))
    with pytest.raises(ValueError, match=r"ks \(4,\) exceed the 3 classes"):
        make_compute_metrics(ks=(4,))((scores, labels))
