"""The evaluation program (training_scripts/run_eval.py, `actionclip eval`, actionclip/evaluation/program.py): its
bookkeeping on small real video sets (synthetic H.264 clips) with a tiny real model saved to disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import tiny_model
from video_factory import small_synthetic_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_EVAL = REPO_ROOT / "training_scripts" / "run_eval.py"
TEMPLATES = ["a video of {}", "{}"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """2 colours x 2 shapes x (left, right, growing, shrinking); 16-frame 32x48 clips, so clips and crops differ."""
    return small_synthetic_dataset(
        tmp_path_factory.mktemp("synthetic"),
        num_frames=16,
        size=(32, 48),
        videos_per_class=2,
        zeroshot_videos_per_class=2,
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from actionclip.processing_actionclip import ActionCLIPProcessor

    model = tiny_model(seed=0, templates=TEMPLATES)
    directory = tmp_path_factory.mktemp("model")
    model.save_pretrained(directory)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(directory)
    return directory


def run_script(*args: str) -> subprocess.CompletedProcess:
    """training_scripts/run_eval.py in a fresh process."""
    return subprocess.run(
        [sys.executable, str(RUN_EVAL), "--no_progress", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )


def run_eval(*args: str) -> dict:
    """The same program in this process (`actionclip eval` and run_eval.py both call it)."""
    from actionclip.commands import ArgumentParser
    from actionclip.commands.eval import add_eval_arguments
    from actionclip.evaluation.program import run_evaluation

    parser = add_eval_arguments(ArgumentParser())
    return run_evaluation(parser.parse_args(["--no_progress", *map(str, args)]))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_closed_set_multi_view_records_protocol_views_frames_and_templates(synthetic, model_dir, tmp_path):
    out = tmp_path / "eval"
    done = run_script(
        "--model", model_dir, "--output_dir", out, "--protocol", "closed_set", "--dataset_format", "list",
        "--eval_path", synthetic.list_file("val"), "--class_names", synthetic.root / "labels.csv",
        "--num_clips", 2, "--num_crops", 3,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    result = read_json(out / "closed_set" / "result.json")
    assert result["protocol"] == "closed_set"
    assert (result["num_clips"], result["num_crops"], result["num_views"], result["num_frames"]) == (2, 3, 6, 8)
    assert result["templates"] == TEMPLATES
    assert result["settings"]["kind"] == "closed-set"
    assert set(result["metrics"]) == {"top1_accuracy", "top5_accuracy", "mean_class_accuracy"}

    report = read_json(out / "closed_set" / "test" / "evaluation.json")
    assert report["num_videos"] == len(synthetic.samples["val"])
    assert report["num_classes"] == len(synthetic.labels)
    assert report["metadata"]["views"] == "2x3"
    assert report["metadata"]["frames"] == 8
    assert report["metadata"]["templates"] == TEMPLATES
    assert report["metrics"]["top1_accuracy"] == result["splits"]["test"]["top1_accuracy"]
    assert (out / "closed_set" / "test" / "confusion_matrix.png").stat().st_size > 1000
    assert "closed_set" in done.stdout and "top1_accuracy" in done.stdout


def test_multi_view_scores_are_the_mean_of_each_views_template_ensembled_probabilities(synthetic, model_dir):
    from actionclip.evaluation.runner import ProtocolEvaluator, ViewSettings
    from actionclip.model_loading import load_model_and_processor
    from actionclip.sampling import MultiViewSampler, TSNSampler
    from actionclip.scoring import template_ensemble_probs
    from actionclip.video_clips import ClipSpec
    from actionclip.video_io import read_frames

    model, processor = load_model_and_processor(model_dir)
    evaluator = ProtocolEvaluator(model, processor, ViewSettings(num_frames=8, num_clips=3), progress=False)
    path = str(synthetic.videos("val")[0][0])
    scores = evaluator.scores([path], synthetic.labels)

    indices = MultiViewSampler(3, TSNSampler(8))(16)
    size = ClipSpec.for_video_processor(processor.video_processor, 8).size  # files are resized while decoding
    views = [processor.video_processor(read_frames(path, row, size=size))["pixel_values"] for row in indices]
    text = processor.tokenizer(
        [t.format(label) for t in TEMPLATES for label in synthetic.labels], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        per_view = [
            template_ensemble_probs(model(pixel_values=v, **text).logits_per_video, len(TEMPLATES)) for v in views
        ]
    expected = torch.cat(per_view).mean(0, keepdim=True)
    assert indices.shape == (3, 8) and len({tuple(row) for row in indices}) == 3
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=1e-4)


def test_views_are_uint8_frames_and_decoding_workers_give_the_same_scores(synthetic, model_dir):
    from actionclip.evaluation.runner import MultiViewVideos, ProtocolEvaluator, ViewSettings
    from actionclip.model_loading import load_model_and_processor

    model, processor = load_model_and_processor(model_dir)
    views = ViewSettings(num_frames=8, num_clips=2, num_crops=3)
    paths = [str(path) for path, _ in synthetic.videos("val")[:5]]
    frames = MultiViewVideos(paths, processor.video_processor, views)[0]
    assert frames.dtype == torch.uint8 and frames.shape == (6, 8, 32, 32, 3)  # (views, T, S, S, 3)
    scores = [
        ProtocolEvaluator(model, processor, views, batch_size=2, num_workers=workers, progress=False).scores(
            paths, synthetic.labels
        )
        for workers in (0, 2)
    ]
    torch.testing.assert_close(scores[0], scores[1], atol=0, rtol=0)


def test_three_crops_take_start_centre_and_end_of_the_longer_side():
    from actionclip.evaluation.runner import three_crops

    width = torch.arange(10.0).expand(1, 1, 3, 4, 10)  # (clips, T, C, H, W): pixel value = its column
    crops = three_crops(width, 4, 4)
    assert crops.shape == (3, 1, 3, 4, 4)
    assert [crops[i, 0, 0, 0].tolist() for i in range(3)] == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    tall = width.transpose(-1, -2)
    assert [three_crops(tall, 4, 4)[i, 0, 0, :, 0].tolist() for i in range(3)] == [
        [0, 1, 2, 3],
        [3, 4, 5, 6],
        [6, 7, 8, 9],
    ]


def test_half_class_protocol_reports_every_subset_and_their_mean_and_std(synthetic, model_dir, tmp_path):
    out = tmp_path / "eval"
    run_eval(
        "--model", model_dir, "--output_dir", out, "--protocol", "half_class", "--eval_path",
        synthetic.list_file("train"), "--class_names", synthetic.root / "labels.csv", "--num_subsets", 4,
        "--seed", 3,
    )  # fmt: skip
    result = read_json(out / "half_class_zero_shot" / "result.json")
    assert result["num_splits"] == 4 and result["settings"]["seed"] == 3 and result["settings"]["num_subsets"] == 4
    half = round(len(synthetic.labels) / 2)
    top1 = []
    for name, metrics in result["splits"].items():
        report = read_json(out / "half_class_zero_shot" / name / "evaluation.json")
        assert report["num_classes"] == half
        assert report["metadata"]["protocol"] == "zero-shot"
        # Every video of the subset's classes, and only those, was evaluated.
        labels = (out / "half_class_zero_shot" / f"{name}_labels.csv").read_text().splitlines()[1:]
        names = {line.split(",", 1)[1] for line in labels}
        assert report["num_videos"] == sum(synthetic.labels[label] in names for _, label in synthetic.samples["train"])
        top1.append(metrics["top1_accuracy"])
    assert result["metrics"]["top1_accuracy"]["mean"] == pytest.approx(np.mean(top1))
    assert result["metrics"]["top1_accuracy"]["std"] == pytest.approx(np.std(top1))


def _write_ucf101_splits(synthetic, split_dir: Path, video_root: Path) -> list[str]:
    """The synthetic videos in UCF101's layout and official split files (3 splits, different test videos)."""
    import shutil

    classes = [label.title().replace(" ", "").replace("-", "") for label in synthetic.labels]
    split_dir.mkdir()
    (split_dir / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    videos = []
    for index, (path, label) in enumerate(synthetic.samples["train"]):
        name = f"{classes[label]}/v_{classes[label]}_g{index:02d}_c01.avi"
        (video_root / classes[label]).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(synthetic.root / path, video_root / name)
        videos.append((name, label))
    for k in (1, 2, 3):
        test = [v for i, v in enumerate(videos) if i % 3 == k - 1]
        train = [v for i, v in enumerate(videos) if i % 3 != k - 1]
        (split_dir / f"trainlist0{k}.txt").write_text("".join(f"{n} {label + 1}\r\n" for n, label in train))
        (split_dir / f"testlist0{k}.txt").write_text("".join(f"{n}\r\n" for n, _ in test))
    return classes


def test_ucf101_zero_shot_evaluates_the_three_official_test_splits(synthetic, model_dir, tmp_path):
    classes = _write_ucf101_splits(synthetic, tmp_path / "splits", tmp_path / "videos")
    out = tmp_path / "eval"
    run_eval(
        "--model", model_dir, "--output_dir", out, "--protocol", "ucf101", "--split_dir", tmp_path / "splits",
        "--video_root", tmp_path / "videos",
    )  # fmt: skip
    result = read_json(out / "ucf101_zero_shot" / "result.json")
    assert list(result["splits"]) == ["split1", "split2", "split3"]
    counts = [read_json(out / "ucf101_zero_shot" / s / "evaluation.json")["num_videos"] for s in result["splits"]]
    assert sum(counts) == len(synthetic.samples["train"])  # each video is in exactly one test split
    report = read_json(out / "ucf101_zero_shot" / "split2" / "evaluation.json")
    assert report["metadata"]["dataset"] == "UCF101" and report["num_classes"] == len(classes)
    values = [m["top1_accuracy"] for m in result["splits"].values()]
    assert result["metrics"]["top1_accuracy"]["std"] == pytest.approx(np.std(values))


def test_kinetics600_novel_subsets_relabel_videos_to_each_160_class_subset(synthetic, model_dir, tmp_path):
    from actionclip.data.labels import load_label_names, write_label_csv

    k600 = load_label_names("kinetics600")
    subsets = [load_label_names(f"k600_novel_split{k}") for k in (1, 2, 3)]
    # Give the synthetic videos Kinetics-600 ids: two classes of subset 1, one of subset 2, one in no subset.
    in_no_subset = next(name for name in k600 if not any(name in s for s in subsets))
    chosen = [subsets[0][0], subsets[0][5], subsets[1][7], in_no_subset]
    lines = [f"{path} {k600.index(chosen[i % 4])}\n" for i, (path, _) in enumerate(synthetic.samples["train"])]
    (synthetic.root / "k600_val.txt").write_text("".join(lines))
    write_label_csv(tmp_path / "k600.csv", k600)

    out = tmp_path / "eval"
    run_eval(
        "--model", model_dir, "--output_dir", out, "--protocol", "k600_novel", "--eval_path",
        synthetic.root / "k600_val.txt",
    )  # fmt: skip
    result = read_json(out / "kinetics600_novel_zero_shot" / "result.json")
    assert result["num_splits"] == 3
    reports = [read_json(out / "kinetics600_novel_zero_shot" / f"split{k}" / "evaluation.json") for k in (1, 2, 3)]
    assert [r["num_classes"] for r in reports] == [160, 160, 160]
    expected = [sum(chosen[i % 4] in subset for i in range(len(synthetic.samples["train"]))) for subset in subsets]
    assert [r["num_videos"] for r in reports] == expected
    assert [r["class_name"] for r in reports[0]["per_class"][:3]] == subsets[0][:3]


def test_base_to_novel_reports_base_novel_and_their_harmonic_mean(synthetic, model_dir, tmp_path):
    out = tmp_path / "eval"
    labels = synthetic.root / "labels.csv"
    run_eval(
        "--model", model_dir, "--output_dir", out, "--protocol", "base_to_novel", "--train_path",
        synthetic.list_file("train"), "--eval_path", synthetic.list_file("val"), "--class_names", labels,
        "--shots", 1,
    )  # fmt: skip
    result = read_json(out / "base_to_novel" / "result.json")
    base, novel = result["splits"]["base"]["top1_accuracy"], result["splits"]["novel"]["top1_accuracy"]
    expected = 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)
    assert result["harmonic_mean"]["top1_accuracy"] == pytest.approx(expected)
    base_names = (out / "base_to_novel" / "base_labels.csv").read_text().splitlines()[1:]
    novel_names = (out / "base_to_novel" / "novel_labels.csv").read_text().splitlines()[1:]
    assert not {n.split(",", 1)[1] for n in base_names} & {n.split(",", 1)[1] for n in novel_names}
    # The 1-shot base training list the model should have been trained on is written beside the results.
    base_train = (out / "base_to_novel" / "base_train.txt").read_text().splitlines()
    assert len(base_train) == len(base_names)


def test_few_shot_writes_nested_k_shot_lists_and_evaluates_the_models_that_exist(synthetic, model_dir, tmp_path):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(model_dir, models / "k1")  # a "1-shot model"; none for 2 shots
    out = tmp_path / "eval"
    done = run_eval(
        "--model", models / "k{shots}", "--output_dir", out, "--protocol", "few_shot", "--train_path",
        synthetic.list_file("train"), "--eval_path", synthetic.list_file("val"), "--class_names",
        synthetic.root / "labels.csv", "--shots", 1, 2,
    )  # fmt: skip
    assert list(done["few_shot"]["splits"]) == ["1shot"]
    one = (out / "few_shot" / "train_1shot_seed0.txt").read_text().splitlines()
    two = (out / "few_shot" / "train_2shot_seed0.txt").read_text().splitlines()
    assert len(one) == len(synthetic.labels) and len(two) == 2 * len(synthetic.labels)
    assert set(one) <= set(two)
    summary = read_json(out / "few_shot" / "result.json")
    assert list(summary["splits"]) == ["1shot"]
    report = read_json(out / "1shot" / "few_shot" / "1shot" / "evaluation.json")
    assert report["metadata"]["protocol"] == "few-shot-1"
    assert report["num_videos"] == len(synthetic.samples["val"])


def test_a_protocol_missing_its_inputs_fails_with_a_message(model_dir, tmp_path):
    from actionclip.errors import EvaluationSetupError

    with pytest.raises(EvaluationSetupError, match="--protocol hmdb51 needs --split-dir and --video-root"):
        run_eval("--model", model_dir, "--output_dir", tmp_path, "--protocol", "hmdb51")


def test_actionclip_eval_reports_a_missing_input_in_one_line_with_status_2(model_dir, tmp_path, capsys):
    from actionclip.commands import main

    status = main(["eval", "--model", str(model_dir), "--output_dir", str(tmp_path), "--protocol", "ucf101"])
    assert status == 2
    assert capsys.readouterr().err.strip() == (
        "actionclip eval: error: --protocol ucf101 needs --split-dir and --video-root"
    )


def test_order_pair_accuracy_counts_both_members_of_each_pair():
    from actionclip.evaluation.metrics.order_pairs import order_pair_accuracy

    scores = np.array([[0.6, 0.4, 0.0], [0.7, 0.3, 0.0], [0.2, 0.8, 0.0], [0.1, 0.0, 0.9]])
    labels = np.array([0, 1, 1, 2])
    # Videos of classes 0 and 1 only: right, wrong (0.7 > 0.3), right; class 2 is in no pair.
    assert order_pair_accuracy(scores, labels, [(0, 1)]) == {"accuracy": 2 / 3, "num_videos": 3, "num_pairs": 1}
    assert order_pair_accuracy(scores, labels, [])["accuracy"] is None


def test_order_pair_accuracy_counts_a_tie_as_a_coin_flip():
    """A model blind to order scores both members alike; float32 rounding must not turn that into 0% or 100%."""
    from actionclip.evaluation.metrics.order_pairs import order_pair_accuracy

    tied, up, down = np.float32(0.3), np.nextafter(np.float32(0.3), 1), np.nextafter(np.float32(0.3), 0)
    scores = np.array([[tied, up], [tied, down], [0.1, 0.9], [0.2, 0.1]], dtype=np.float32)
    labels = np.array([0, 1, 1, 1])

    # two ties one float32 step apart (1/2 each), one right (0.9 > 0.1), one wrong (0.1 < 0.2)
    assert order_pair_accuracy(scores, labels, [(0, 1)])["accuracy"] == pytest.approx(2 / 4)
    # without tolerance the one-step differences decide, and both go against the true class
    assert order_pair_accuracy(scores, labels, [(0, 1)], tie_rtol=0.0)["accuracy"] == pytest.approx(1 / 4)
