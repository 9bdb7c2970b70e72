"""The `video_accuracy` evaluate metric, loaded offline from its packaged file, and the Trainer hook."""

import numpy as np
import pytest
from transformers import EvalPrediction

from actionclip.evaluation.metrics import (
    VIDEO_ACCURACY_PATH,
    compute_video_accuracy,
    load_video_accuracy,
    make_compute_metrics,
)

# 4 videos, 3 classes. Ranks of the true class: 0, 1, 2, 0.
SCORES = np.array(
    [
        [0.9, 0.05, 0.05],  # true 0, rank 0
        [0.6, 0.3, 0.1],  # true 1, rank 1
        [0.5, 0.4, 0.1],  # true 2, rank 2
        [0.1, 0.2, 0.7],  # true 2, rank 0
    ]
)
LABELS = np.array([0, 1, 2, 2])


@pytest.fixture(scope="module")
def metric():
    return load_video_accuracy()


def test_load_video_accuracy_needs_no_network(no_network):
    metric = load_video_accuracy()
    assert metric.name == "video_accuracy"
    assert metric.compute(predictions=SCORES, references=LABELS, ks=(1,))["top1_accuracy"] == 0.5


def test_evaluate_load_of_the_folder_path_also_works(no_network):
    import evaluate

    metric = evaluate.load(str(VIDEO_ACCURACY_PATH.parent), keep_in_memory=True)
    assert metric.compute(predictions=SCORES, references=LABELS)["top1_accuracy"] == 0.5


def test_metric_file_imports_only_libraries_so_evaluate_can_copy_it_alone():
    from evaluate.loading import get_imports

    imports = get_imports(str(VIDEO_ACCURACY_PATH))
    assert {kind for kind, *_ in imports} == {"library"}
    assert {name for _, name, *_ in imports} <= {"__future__", "datasets", "evaluate", "numpy"}


def test_topk_and_mean_class_accuracy_by_hand(metric):
    result = metric.compute(predictions=SCORES, references=LABELS, ks=(1, 2))
    assert result["top1_accuracy"] == pytest.approx(2 / 4)
    assert result["top2_accuracy"] == pytest.approx(3 / 4)
    # per class top-1: class 0 -> 1/1, class 1 -> 0/1, class 2 -> 1/2
    assert result["mean_class_accuracy"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert result["num_videos"] == 4 and result["num_classes"] == 3


def test_default_ks_leave_out_top5_with_fewer_than_5_classes(metric):
    result = metric.compute(predictions=SCORES, references=LABELS)
    assert set(result) == {"top1_accuracy", "mean_class_accuracy", "num_videos", "num_classes"}


def test_default_ks_report_top1_and_top5_with_enough_classes(metric):
    rng = np.random.default_rng(0)
    result = metric.compute(predictions=rng.normal(size=(20, 10)), references=rng.integers(0, 10, 20))
    assert "top1_accuracy" in result and "top5_accuracy" in result


def test_mean_class_accuracy_weighs_classes_equally_not_videos():
    # class 0 has 9 videos all right, class 1 has 1 video wrong: accuracy 0.9 but mean class accuracy 0.5
    scores = np.array([[1.0, 0.0]] * 10)
    labels = np.array([0] * 9 + [1])
    result = compute_video_accuracy(scores, labels, ks=(1,))
    assert result["top1_accuracy"] == pytest.approx(0.9)
    assert result["mean_class_accuracy"] == pytest.approx(0.5)


def test_mean_class_accuracy_ignores_classes_without_videos():
    scores = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    labels = np.array([1, 1])  # classes 0, 2, 3 have no videos
    assert compute_video_accuracy(scores, labels, ks=(1,))["mean_class_accuracy"] == pytest.approx(0.5)


def test_ties_go_to_the_lower_class_index_like_argmax():
    scores = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    result = compute_video_accuracy(scores, np.array([0, 1]), ks=(1, 2))
    assert result["top1_accuracy"] == 0.5  # video 0 (true 0) wins the tie, video 1 (true 1) loses it
    assert result["top2_accuracy"] == 1.0


def test_logits_and_probabilities_give_the_same_accuracy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(50, 8)) * 5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 8, 50)
    assert compute_video_accuracy(logits, labels) == compute_video_accuracy(probs, labels)


def test_batches_added_one_by_one_give_the_same_result(metric):
    rng = np.random.default_rng(2)
    scores, labels = rng.normal(size=(30, 7)), rng.integers(0, 7, 30)
    for start in range(0, 30, 8):
        metric.add_batch(predictions=scores[start : start + 8], references=labels[start : start + 8])
    assert metric.compute(ks=(1, 5)) == compute_video_accuracy(scores, labels, ks=(1, 5))


@pytest.mark.parametrize(
    "scores, labels, message",
    [
        (np.zeros(4), np.zeros(4, dtype=int), r"shape \(N, C\)"),
        (np.zeros((4, 3)), np.zeros(3, dtype=int), "3 entries but predictions has 4 rows"),
        (np.zeros((2, 3)), np.array([0, 3]), r"\[0, 3\).*entry 1 is 3"),
        (np.zeros((2, 3)), np.array([0, -1]), "entry 1 is -1"),
        (np.array([[0.0, np.nan], [1.0, 0.0]]), np.array([0, 1]), "NaN .*video 0, class 1"),
        (np.zeros((2, 3)), np.array([0.5, 1.0]), "integer class indices"),
        (np.zeros((0, 3)), np.zeros(0, dtype=int), "empty"),
    ],
)
def test_bad_inputs_are_rejected_naming_the_input(metric, scores, labels, message):
    with pytest.raises(ValueError, match=message):
        metric.compute(predictions=scores.tolist(), references=labels.tolist())


def test_rows_of_different_widths_are_rejected(metric):
    with pytest.raises(ValueError, match="every row the same length"):
        metric.compute(predictions=[[0.1, 0.9], [0.2, 0.3, 0.5]], references=[0, 1])


@pytest.mark.parametrize("ks", [(), (0,), (1, -2), ("5",), (True,)])
def test_bad_ks_are_rejected(ks):
    with pytest.raises(ValueError, match="ks"):
        compute_video_accuracy(SCORES, LABELS, ks=ks)


def test_num_classes_must_match_the_score_width(metric):
    with pytest.raises(ValueError, match="num_classes is 5"):
        metric.compute(predictions=SCORES, references=LABELS, num_classes=5)


def test_compute_metrics_reads_eval_prediction_with_tuple_predictions():
    compute_metrics = make_compute_metrics(ks=(1, 2))
    extra_output = np.zeros((4, 16))  # e.g. video embeddings returned after the logits
    metrics = compute_metrics(EvalPrediction(predictions=(SCORES, extra_output), label_ids=LABELS))
    assert metrics == {"top1_accuracy": 0.5, "top2_accuracy": 0.75, "mean_class_accuracy": pytest.approx(0.5)}
    assert all(isinstance(value, float) for value in metrics.values())


def test_compute_metrics_default_ks_fit_the_classes_and_accept_a_plain_pair():
    metrics = make_compute_metrics()((SCORES, LABELS))
    assert set(metrics) == {"top1_accuracy", "mean_class_accuracy"}


def test_compute_metrics_reports_missing_labels():
    with pytest.raises(ValueError, match="label_ids is None"):
        make_compute_metrics()(EvalPrediction(predictions=SCORES, label_ids=None))


def test_make_compute_metrics_rejects_bad_ks_before_any_evaluation():
    with pytest.raises(ValueError, match="ks"):
        make_compute_metrics(ks=(0, 5))
