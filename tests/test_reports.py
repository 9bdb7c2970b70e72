"""Evaluation reports: per-class table, most-confused pairs, confusion matrix picture and the figures JSON."""

import csv
import json

import numpy as np
import pytest
from matplotlib import image as mpimg

from actionclip.errors import InvalidLabelsError
from actionclip.evaluation.metrics import compute_video_accuracy
from actionclip.evaluation.reports import (
    MAX_PLOTTED_CLASSES,
    confusion_matrix,
    load_evaluation_report,
    most_confused_pairs,
    per_class_accuracy,
    plot_confusion_matrix,
    write_evaluation_report,
)

CLASS_NAMES = ["archery", "juggling balls", "playing guitar"]
# 8 videos. Predictions (argmax): 0, 0, 1, 2, 2, 2, 2, 0  -> true 1 -> predicted 2 three times.
SCORES = np.array(
    [
        [0.8, 0.1, 0.1],  # true 0, predicted 0
        [0.7, 0.2, 0.1],  # true 0, predicted 0 (classes by score: 0, 1, 2)
        [0.1, 0.8, 0.1],  # true 1, predicted 1
        [0.1, 0.3, 0.6],  # true 1, predicted 2
        [0.1, 0.3, 0.6],  # true 1, predicted 2
        [0.1, 0.2, 0.7],  # true 1, predicted 2
        [0.2, 0.1, 0.7],  # true 2, predicted 2
        [0.5, 0.1, 0.4],  # true 2, predicted 0
    ]
)
LABELS = np.array([0, 0, 1, 1, 1, 1, 2, 2])
METADATA = {
    "model": "actionclip-vit-b32-8f",
    "dataset": "Toy actions",
    "split": "test",
    "protocol": "zero-shot",
    "views": "1x1",
    "frames": np.int64(8),
    "templates": ["a video of {}", "{}"],
}


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("report")


@pytest.fixture(scope="module")
def report(report_dir):
    return write_evaluation_report(report_dir, SCORES, LABELS, CLASS_NAMES, METADATA)


def test_report_writes_every_file(report, report_dir):
    for name in report["files"].values():
        assert (report_dir / name).stat().st_size > 0, name
    assert set(report["files"].values()) == {
        "evaluation.json",
        "report.md",
        "per_class_accuracy.csv",
        "per_class_accuracy.md",
        "confused_pairs.csv",
        "confusion_matrix.png",
    }


def test_json_holds_the_returned_figures(report, report_dir):
    assert json.loads((report_dir / "evaluation.json").read_text()) == report


def test_overall_figures_match_the_metric_and_hand_counts(report):
    assert report["metrics"] == {
        key: value for key, value in compute_video_accuracy(SCORES, LABELS).items() if key.endswith("accuracy")
    }
    assert report["metrics"]["top1_accuracy"] == pytest.approx(4 / 8)
    # per class top-1: 2/2, 1/4, 1/2
    assert report["metrics"]["mean_class_accuracy"] == pytest.approx((1 + 0.25 + 0.5) / 3)
    assert report["chance_level"] == pytest.approx(1 / 3)
    assert report["num_videos"] == 8 and report["num_classes"] == 3


def test_metadata_is_stored_with_numpy_values_made_plain(report):
    assert report["metadata"]["frames"] == 8 and isinstance(report["metadata"]["frames"], int)
    assert report["metadata"]["templates"] == ["a video of {}", "{}"]
    assert report["metadata"]["protocol"] == "zero-shot"


def test_per_class_table_counts_support_and_top1(report):
    rows = {row["class_name"]: row for row in report["per_class"]}
    assert [rows[name]["support"] for name in CLASS_NAMES] == [2, 4, 2]
    assert [rows[name]["correct"] for name in CLASS_NAMES] == [2, 1, 1]
    assert [rows[name]["top1_accuracy"] for name in CLASS_NAMES] == [1.0, 0.25, 0.5]
    assert rows["juggling balls"]["most_confused_with"] == "playing guitar"
    assert rows["juggling balls"]["most_confused_count"] == 3
    assert rows["archery"]["most_confused_with"] is None


def test_per_class_csv_reads_back_as_the_table(report, report_dir):
    with open(report_dir / "per_class_accuracy.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["class_name"] for row in rows] == CLASS_NAMES
    assert [int(row["support"]) for row in rows] == [2, 4, 2]
    assert [float(row["top1_accuracy"]) for row in rows] == [1.0, 0.25, 0.5]


def test_per_class_markdown_lists_the_worst_class_first(report_dir):
    lines = (report_dir / "per_class_accuracy.md").read_text().splitlines()
    assert lines[0].startswith("| class | support | correct | top1 acc")
    assert lines[2].startswith("| juggling balls | 4 | 1 | 25.0%")
    assert len(lines) == 2 + len(CLASS_NAMES)


def test_most_confused_pair_is_first_with_count_and_share(report):
    first = report["confused_pairs"][0]
    assert (first["true_class"], first["predicted_class"], first["count"]) == ("juggling balls", "playing guitar", 3)
    assert first["share"] == pytest.approx(3 / 4)
    assert [(p["true_index"], p["predicted_index"]) for p in report["confused_pairs"]] == [(1, 2), (2, 0)]


def test_confusion_matrix_rows_are_true_classes(report):
    assert report["confusion_matrix"] == [[2, 0, 0], [0, 1, 3], [1, 0, 1]]


def test_report_markdown_shows_summary_pairs_and_picture(report_dir):
    text = (report_dir / "report.md").read_text()
    assert "| top1 accuracy | 50.0% |" in text
    assert "| chance level (1/C) | 33.3% |" in text
    assert "| juggling balls | playing guitar | 3 | 75.0% |" in text
    assert "![confusion matrix](confusion_matrix.png)" in text


def test_confusion_png_is_an_image_of_all_classes(report, report_dir):
    picture = mpimg.imread(report_dir / "confusion_matrix.png")
    assert picture.ndim == 3 and picture.shape[0] > 300 and picture.shape[1] > 300
    assert picture[..., :3].std() > 0.05  # not a blank canvas
    assert report["confusion_matrix_plotted_class_indices"] == [0, 1, 2]


def test_many_classes_plot_only_the_most_confused_subset(tmp_path):
    num_classes = 120
    names = [f"action {i}" for i in range(num_classes)]
    labels = np.arange(num_classes).repeat(2)
    predictions = labels.copy()
    predictions[labels == 7] = 8  # class 7 always taken for class 8
    plot = plot_confusion_matrix(confusion_matrix(labels, predictions, num_classes), names, tmp_path / "cm.png")
    assert plot["subset"] is True
    assert len(plot["plotted_class_indices"]) == MAX_PLOTTED_CLASSES
    assert {7, 8} <= set(plot["plotted_class_indices"])
    assert mpimg.imread(tmp_path / "cm.png").shape[0] > 1000


def test_class_without_videos_has_no_accuracy_and_is_left_out_of_the_mean(tmp_path):
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]])
    report = write_evaluation_report(tmp_path, scores, [0, 0], ["a", "b", "c"])
    rows = {row["class_name"]: row for row in report["per_class"]}
    assert rows["c"]["support"] == 0 and rows["c"]["top1_accuracy"] is None
    assert report["metrics"]["mean_class_accuracy"] == 0.5
    assert report["num_classes_evaluated"] == 1
    with open(tmp_path / "per_class_accuracy.csv", newline="") as handle:
        assert list(csv.DictReader(handle))[2]["top1_accuracy"] == ""


def test_class_names_with_pipes_do_not_break_markdown_tables(tmp_path):
    write_evaluation_report(tmp_path, SCORES, LABELS, ["a|b", "c", "d"])
    line = (tmp_path / "per_class_accuracy.md").read_text().splitlines()[-1]
    assert line.startswith("| a\\|b | 2 |")


def test_load_evaluation_report_reads_the_folder_or_the_file(report, report_dir):
    assert load_evaluation_report(report_dir) == report
    assert load_evaluation_report(report_dir / "evaluation.json") == report


def test_load_evaluation_report_rejects_other_json(tmp_path):
    (tmp_path / "evaluation.json").write_text('{"accuracy": 0.5}')
    with pytest.raises(ValueError, match="lacks 'metrics'"):
        load_evaluation_report(tmp_path)


@pytest.mark.parametrize(
    "names, message",
    [
        (["a", "b"], "2 names but the scores have 3 classes"),
        (["a", "b", "a"], r"class_names\[2\] = 'a' repeats class_names\[0\]"),
        (["a", "", "c"], r"class_names\[1\] must be a non-empty string"),
        ("abc", "sequence of 3 strings"),
    ],
)
def test_bad_class_names_are_rejected(tmp_path, names, message):
    with pytest.raises(InvalidLabelsError, match=message):
        write_evaluation_report(tmp_path, SCORES, LABELS, names)


def test_scores_and_labels_that_disagree_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="labels has 7 entries but scores has 8 rows"):
        write_evaluation_report(tmp_path, SCORES, LABELS[:7], CLASS_NAMES)


def test_metadata_that_json_cannot_hold_is_rejected_naming_the_key(tmp_path):
    with pytest.raises(TypeError, match=r"metadata\['model'\] has type object"):
        write_evaluation_report(tmp_path, SCORES, LABELS, CLASS_NAMES, {"model": object()})


def test_per_class_accuracy_reports_each_requested_k():
    rows = per_class_accuracy(SCORES, LABELS, CLASS_NAMES, ks=(1, 2))
    # class 1 videos rank their true class 0, 1, 1, 1 -> all within top 2
    assert rows[1]["top2_accuracy"] == 1.0
    # class 2 video 7 ranks class 2 second (0.5 > 0.4 > 0.1)
    assert rows[2]["top2_accuracy"] == 1.0 and rows[2]["top1_accuracy"] == 0.5


def test_most_confused_pairs_can_list_every_pair_or_none():
    confusion = np.array([[5, 1, 2], [0, 5, 0], [1, 1, 5]])
    names = ["x", "y", "z"]
    assert len(most_confused_pairs(confusion, names, top_n=None)) == 4
    assert most_confused_pairs(confusion, names, top_n=0) == []
    # equal counts: the larger share of the true class first, then lower indices
    assert [(p["true_index"], p["predicted_index"]) for p in most_confused_pairs(confusion, names)] == [
        (0, 2),
        (2, 0),
        (2, 1),
        (0, 1),
    ]
