"""Retention tracking: held-out classes evaluated zero-shot beside the training classes during fine-tuning (the
Trainer's logs, `evaluation.json` and the model card), in a tiny real training run of the training script."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tiny_models import TEXT, VISION
from video_factory import small_synthetic_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return small_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), num_frames=4, size=(32, 32))


def run_script(arguments):
    sys.path.insert(0, str(REPO_ROOT / "training_scripts"))
    try:
        import run_actionclip
    finally:
        sys.path.pop(0)
    return run_actionclip.main([str(argument) for argument in arguments])


def test_held_out_classes_are_tracked_in_logs_evaluation_json_and_the_card(synthetic, tmp_path):
    out = tmp_path / "run"
    overrides = {"text_config": TEXT, "vision_config": VISION, "projection_dim": 64, "fusion_num_layers": 1}
    metrics = run_script([
        "--config_overrides", json.dumps(overrides), "--dataset_format", "list",
        "--train_path", synthetic.list_file("train"), "--eval_path", synthetic.list_file("val"),
        "--class_names", synthetic.root / "labels.csv", "--novel_eval_path", synthetic.list_file("zeroshot"),
        "--novel_class_names", synthetic.root / "zeroshot_labels.csv", "--num_frames", "4",
        "--output_dir", out, "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
        "--max_steps", "2", "--eval_strategy", "steps", "--eval_steps", "1", "--save_strategy", "no",
        "--load_best_model_at_end", "false", "--report_to", "none", "--use_cpu", "--disable_tqdm", "true",
    ])  # fmt: skip
    assert "novel_top1_accuracy" in metrics and "eval_top1_accuracy" in metrics
    state = json.loads((out / "trainer_state.json").read_text())
    logged = [entry for entry in state["log_history"] if "novel_top1_accuracy" in entry]
    assert [entry["step"] for entry in logged] == [1, 2]  # every eval_steps during training
    base = {e["step"]: e["eval_top1_accuracy"] for e in state["log_history"] if "eval_top1_accuracy" in e}
    for entry in logged:
        b, n = base[entry["step"]], entry["novel_top1_accuracy"]
        assert entry["novel_harmonic_mean"] == pytest.approx(0.0 if b + n == 0 else 2 * b * n / (b + n))

    novel = json.loads((out / "evaluation" / "novel" / "evaluation.json").read_text())
    assert novel["num_classes"] == len(synthetic.zeroshot_labels)
    assert novel["metrics"]["top1_accuracy"] == pytest.approx(metrics["novel_top1_accuracy"])
    history = novel["metadata"]["retention_history"]
    assert [row["step"] for row in history] == [1, 2, 2]  # two during training, one at the end
    assert history[-1]["novel_top1_accuracy"] == pytest.approx(metrics["novel_top1_accuracy"])
    base_report = json.loads((out / "evaluation" / "base" / "evaluation.json").read_text())
    assert base_report["metrics"]["top1_accuracy"] == pytest.approx(metrics["eval_top1_accuracy"])
    card = (out / "README.md").read_text()
    assert "Retention of zero-shot accuracy" in card and "zero-shot (held-out classes)" in card


def test_retention_without_the_training_classes_test_set_is_refused(synthetic, tmp_path):
    with pytest.raises(ValueError, match="needs --eval_path"):
        run_script([
            "--config_overrides", json.dumps({"text_config": TEXT, "vision_config": VISION, "projection_dim": 64}),
            "--dataset_format", "list", "--train_path", synthetic.list_file("train"),
            "--class_names", synthetic.root / "labels.csv", "--novel_eval_path", synthetic.list_file("zeroshot"),
            "--novel_class_names", synthetic.root / "zeroshot_labels.csv", "--output_dir", tmp_path / "x",
            "--report_to", "none", "--use_cpu",
        ])  # fmt: skip


def test_the_trainer_scores_with_label_descriptions_through_the_same_path(synthetic, tmp_path):
    """Descriptions equal to the labels change nothing; real ones change the scores; a held-out label set given with
    `label_set` scores as an evaluation set of those classes does."""
    import numpy as np
    from tiny_models import tiny_model

    from actionclip.data.collator import ActionCLIPCollator
    from actionclip.data.datasets import VideoClassificationDataset
    from actionclip.training.trainer import ActionCLIPTrainer, ActionCLIPTrainingArguments

    val = VideoClassificationDataset.from_list_file(
        synthetic.list_file("val"), synthetic.root / "labels.csv", num_frames=4, image_size=32
    )
    novel = VideoClassificationDataset.from_list_file(
        synthetic.list_file("zeroshot"), synthetic.root / "zeroshot_labels.csv", num_frames=4, image_size=32
    )
    args = ActionCLIPTrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=8, report_to="none",
                                       use_cpu=True, disable_tqdm=True, eval_strategy="no",
                                       load_best_model_at_end=False)  # fmt: skip

    def predictions(descriptions=None, dataset=val, label_names=None, eval_dataset=val):
        trainer = ActionCLIPTrainer(
            model=tiny_model(num_frames=4, fusion_num_layers=1), args=args, eval_dataset=eval_dataset,
            data_collator=ActionCLIPCollator(val.label_names), eval_templates=["a video of {}.", "{}"],
            eval_descriptions=descriptions,
        )  # fmt: skip
        if label_names is None:
            return trainer.predict(dataset).predictions
        with trainer.label_set(label_names):
            return trainer.predict(dataset).predictions

    plain = predictions()
    np.testing.assert_allclose(predictions({name: [name] for name in val.label_names}), plain, atol=1e-6)
    described = predictions({val.label_names[0]: ["a shape that slides to the left of the frame"]})
    assert not np.allclose(described, plain)
    held_out = predictions(dataset=novel, label_names=novel.label_names)
    assert held_out.shape == (len(novel), len(novel.label_names))
    np.testing.assert_allclose(held_out, predictions(dataset=novel, eval_dataset=novel), atol=1e-6)
