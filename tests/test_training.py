"""Training ActionCLIP: fine-tuning on every dataset format, parameter groups, evaluation and the script's
`--push_to_hub`, on real encoded videos and tiny real models (datasets: test_datasets.py; collator:
test_collator.py)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import TEXT, VISION, tiny_model
from video_datasets import FORMATS, NUM_FRAMES, datasets_in_format

from actionclip.data.collator import ActionCLIPCollator
from actionclip.data.datasets import VideoClassificationDataset
from actionclip.data.tar_shards import TarShardVideoDataset
from actionclip.training.trainer import (
    ActionCLIPTrainer,
    ActionCLIPTrainingArguments,
    actionclip_parameter_groups,
    freeze_towers,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------------------------------------------
# Helpers shared with test_distributed / test_lora / test_resume


def training_arguments(output_dir, **overrides) -> ActionCLIPTrainingArguments:
    values = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        learning_rate=2e-4,
        warmup_steps=0,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        load_best_model_at_end=False,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    values.update(overrides)
    return ActionCLIPTrainingArguments(**values)


def make_trainer(model, train_dataset, eval_dataset, output_dir, templates=("a video of {}.",), **overrides):
    from actionclip.evaluation.metrics import make_compute_metrics

    collator = ActionCLIPCollator(train_dataset.label_names, templates=list(templates))
    return ActionCLIPTrainer(
        model=model,
        args=training_arguments(output_dir, **overrides),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        compute_metrics=make_compute_metrics(ks=(1, 3)),  # 4 classes: the default adds top-5 only from 5
        eval_templates=list(templates),
    )


def small_model(seed=0, **overrides):
    return tiny_model(seed=seed, num_frames=NUM_FRAMES, fusion_num_layers=1, **overrides)


# ----------------------------------------------------------------------------------------------------------------
# Datasets


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_fine_tunes_with_falling_loss_and_evaluates_top1_top3(
    name, video_data, frame_folders, ucf_layout, kinetics_layout, tar_shards, tmp_path
):
    train, evaluation = datasets_in_format(name, video_data, frame_folders, ucf_layout, kinetics_layout, tar_shards)
    item = next(iter(evaluation)) if isinstance(evaluation, TarShardVideoDataset) else evaluation[0]
    assert item["pixel_values"].shape == (NUM_FRAMES, 3, 32, 32)
    assert isinstance(item["labels"], int)
    # The whole training set in every batch, without augmentation: the loss then falls step by step.
    options = dict(max_steps=5, per_device_train_batch_size=16, learning_rate=5e-5, lr_scheduler_type="constant")
    trainer = make_trainer(small_model(), train, evaluation, tmp_path, **options)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 5
    assert losses[-1] < losses[0] - 0.05, losses
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["eval_top1_accuracy"] <= metrics["eval_mean_class_accuracy"] + 1.0
    assert 0.0 <= metrics["eval_top1_accuracy"] <= 1.0 and np.isfinite(metrics["eval_loss"])
    assert metrics["eval_top1_accuracy"] <= metrics["eval_top3_accuracy"] <= 1.0


# ----------------------------------------------------------------------------------------------------------------
# Parameter groups and evaluation


def test_parameter_groups_follow_the_paper():
    model = small_model()
    trainer = ActionCLIPTrainer(model=model, args=training_arguments("/tmp/unused", learning_rate=5e-6))
    optimizer = trainer.create_optimizer()
    groups = {group["name"]: group for group in optimizer.param_groups}
    assert set(groups) == {"text", "vision", "fusion"}
    assert groups["text"]["lr"] == pytest.approx(5e-6)
    assert groups["vision"]["lr"] == pytest.approx(5e-6)
    assert groups["fusion"]["lr"] == pytest.approx(5e-5)
    assert all(group["weight_decay"] == pytest.approx(0.2) for group in groups.values())
    assert all(group["betas"] == (0.9, 0.98) and group["eps"] == 1e-8 for group in groups.values())
    assert isinstance(optimizer, torch.optim.AdamW)
    ids = {name: {id(p) for p in group["params"]} for name, group in groups.items()}
    assert ids["fusion"] == {id(p) for p in model.fusion.parameters()}
    assert {id(p) for p in model.vision_model.parameters()} | {id(model.visual_projection.weight)} == ids["vision"]
    assert id(model.logit_scale) in ids["text"]
    assert sum(map(len, ids.values())) == len(list(model.parameters()))


def test_vision_ratio_freezing_and_no_decay_groups():
    model = small_model()
    freeze_towers(model, text=True)
    groups = actionclip_parameter_groups(model, 1e-5, 0.2, fusion_lr_ratio=10, vision_lr_ratio=0.5,
                                         weight_decay_norm_and_bias=False)  # fmt: skip
    by_name = {group["name"]: group for group in groups}
    assert by_name["vision"]["lr"] == pytest.approx(5e-6) and by_name["fusion"]["lr"] == pytest.approx(1e-4)
    assert by_name["vision/no_decay"]["weight_decay"] == 0.0
    assert [p.ndim for p in by_name["text/no_decay"]["params"]] == [0]  # only logit_scale stays trainable
    assert "text" not in by_name
    assert not any(p.requires_grad for p in model.text_model.parameters())


def test_learning_rate_warms_up_linearly_then_decays_by_cosine(video_data, tmp_path):
    train = VideoClassificationDataset.from_list_file(video_data.list_file("train"), num_frames=4, image_size=32)
    trainer = make_trainer(small_model(), train, None, tmp_path, max_steps=10, warmup_steps=0.2, learning_rate=1e-4)
    trainer.create_optimizer_and_scheduler(10)
    rates = []
    for _ in range(10):
        rates.append([group["lr"] for group in trainer.optimizer.param_groups])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    rates = np.array(rates)
    np.testing.assert_allclose(rates[1:, 2] / rates[1:, 0], 10.0, rtol=1e-6)  # fusion: 10x at every step
    np.testing.assert_allclose(rates[:3, 0], [0.0, 5e-5, 1e-4], rtol=1e-6)
    np.testing.assert_allclose(rates[2:, 0], 1e-4 * 0.5 * (1 + np.cos(np.pi * np.arange(8) / 8)), rtol=1e-6)


def test_evaluation_scores_are_template_ensembled_probabilities_over_all_classes(video_data, tmp_path):
    evaluation = VideoClassificationDataset.from_folder(
        video_data.root / "val", video_data.root / "labels.csv", num_frames=4, image_size=32
    )
    templates = ["a video of {}.", "{}", "a photo of action {}"]
    trainer = make_trainer(small_model(), evaluation, evaluation, tmp_path, templates=templates)
    output = trainer.predict(evaluation)
    assert output.predictions.shape == (len(evaluation), 4)
    np.testing.assert_allclose(output.predictions.sum(axis=1), 1.0, atol=1e-5)
    # The same numbers straight from the model.
    from actionclip.scoring import template_ensemble_probs
    from actionclip.tokenizer import load_clip_tokenizer

    model = trainer.model.eval()
    batch = torch.stack([evaluation[i]["pixel_values"] for i in range(len(evaluation))])
    with torch.no_grad():
        text = model.encode_label_set(evaluation.label_names, load_clip_tokenizer(), templates)
        video = torch.nn.functional.normalize(model.get_video_features(batch).pooler_output, dim=-1)
        expected = template_ensemble_probs(model.scale() * video @ text.t(), len(templates))
    np.testing.assert_allclose(output.predictions, expected.numpy(), atol=1e-5)
    assert output.metrics["test_top1_accuracy"] == pytest.approx(
        float((expected.argmax(1).numpy() == output.label_ids).mean())
    )


# ----------------------------------------------------------------------------------------------------------------
# The script


def run_script(arguments):
    sys.path.insert(0, str(REPO_ROOT / "training_scripts"))
    try:
        import run_actionclip
    finally:
        sys.path.pop(0)
    return run_actionclip.main([str(argument) for argument in arguments])


def script_arguments(tiny_clip_dir, video_data, output_dir, *extra):
    return [
        "--model_name_or_path", tiny_clip_dir, "--dataset_format", "folder", "--train_path", video_data.root / "train",
        "--eval_path", video_data.root / "val", "--class_names", video_data.root / "labels.csv", "--num_frames", "4",
        "--output_dir", output_dir, "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
        "--report_to", "none", "--use_cpu", "--disable_tqdm", "true", "--config_overrides", '{"fusion_num_layers": 1}',
        *extra,
    ]  # fmt: skip


def test_script_trains_from_a_clip_checkpoint_with_an_argument_file(tiny_clip_dir, video_data, tmp_path):
    argument_file = tmp_path / "args.json"
    argument_file.write_text(json.dumps({"num_train_epochs": 2, "learning_rate": 1e-4, "logging_steps": 1}))
    metrics = run_script([argument_file, *script_arguments(tiny_clip_dir, video_data, tmp_path / "out")])
    assert "eval_top1_accuracy" in metrics and metrics["epoch"] == 2
    assert sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert not list((tmp_path / "out").glob(".tmp-*"))
    from actionclip import ActionCLIPModel
    from actionclip.processing_actionclip import ActionCLIPProcessor

    model = ActionCLIPModel.from_pretrained(tmp_path / "out")
    assert model.config.id2label[0] == video_data.labels[0] and model.config.num_frames == 4
    assert ActionCLIPProcessor.from_pretrained(tmp_path / "out").num_frames == 4
    state = json.loads((tmp_path / "out" / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"].endswith("checkpoint-" + str(state["best_global_step"]))


def test_script_trains_a_small_model_from_scratch_with_config_overrides(video_data, tmp_path):
    overrides = json.dumps(
        {"text_config": TEXT, "vision_config": VISION, "projection_dim": 64, "fusion_num_layers": 1}
    )
    arguments = script_arguments("x", video_data, tmp_path, "--max_steps", "1", "--eval_strategy", "no",
                                 "--save_strategy", "no", "--load_best_model_at_end", "false")  # fmt: skip
    arguments = arguments[2:]  # no --model_name_or_path
    arguments[arguments.index("--config_overrides") + 1] = overrides
    metrics = run_script(arguments)
    assert np.isfinite(metrics["train_loss"])


class RecordingHfApi:
    """Stands in for the Hub at huggingface_hub's `HfApi`: `create_repo` answers locally and `upload_folder` records
    the files it would commit (after the same allow/ignore filtering) instead of sending them."""

    def __init__(self):
        self.commits = []

    def create_repo(self, api, repo_id, **kwargs):
        from huggingface_hub import RepoUrl

        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, api, *, repo_id, folder_path, path_in_repo=None, run_as_future=False, **kwargs):
        from concurrent.futures import Future

        from huggingface_hub import CommitInfo
        from huggingface_hub.utils import filter_repo_objects

        folder = Path(folder_path)
        relative = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        kept = filter_repo_objects(relative, allow_patterns=kwargs.get("allow_patterns"),
                                   ignore_patterns=kwargs.get("ignore_patterns"))  # fmt: skip
        prefix = f"{path_in_repo.strip('/')}/" if path_in_repo else ""
        files = {prefix + name: (folder / name).read_bytes() for name in kept}
        self.commits.append({"repo_id": repo_id, "files": files, "message": kwargs.get("commit_message")})
        info = CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/{len(self.commits)}", commit_message="",
            commit_description="", oid=f"{len(self.commits):040d}", pr_url=None,
        )  # fmt: skip
        if run_as_future:
            future = Future()
            future.set_result(info)
            return future
        return info


def test_push_to_hub_commits_everything_from_pretrained_needs(tiny_clip_dir, video_data, tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    recorder = RecordingHfApi()
    monkeypatch.setattr(HfApi, "create_repo", lambda api, repo_id, **kw: recorder.create_repo(api, repo_id, **kw))
    monkeypatch.setattr(HfApi, "upload_folder", lambda api, **kw: recorder.upload_folder(api, **kw))
    # Older transformers call the module-level functions (methods bound to huggingface_hub's default HfApi).
    import huggingface_hub
    import transformers.trainer

    for module in (huggingface_hub, transformers.trainer):
        if hasattr(module, "upload_folder"):
            monkeypatch.setattr(module, "upload_folder", lambda **kw: recorder.upload_folder(None, **kw))
        if hasattr(module, "create_repo"):
            monkeypatch.setattr(module, "create_repo", lambda repo_id, **kw: recorder.create_repo(None, repo_id, **kw))
    arguments = script_arguments(tiny_clip_dir, video_data, tmp_path / "out", "--max_steps", "2", "--eval_strategy",
                                 "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
                                 "--push_to_hub", "--hub_model_id", "someone/tiny-actionclip")  # fmt: skip
    run_script(arguments)
    final = recorder.commits[-1]
    assert final["repo_id"] == "someone/tiny-actionclip"
    pushed = tmp_path / "pushed"
    for name, content in final["files"].items():
        (pushed / name).parent.mkdir(parents=True, exist_ok=True)
        (pushed / name).write_bytes(content)
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer_config.json", "README.md"} <= set(
        final["files"]
    )
    from actionclip import ActionCLIPModel
    from actionclip.processing_actionclip import ActionCLIPProcessor

    model = ActionCLIPModel.from_pretrained(pushed)
    trained = ActionCLIPModel.from_pretrained(tmp_path / "out")
    for (name, value), other in zip(model.state_dict().items(), trained.state_dict().values()):
        torch.testing.assert_close(value, other, rtol=0, atol=0, msg=name)
    processor = ActionCLIPProcessor.from_pretrained(pushed)
    assert processor.tokenizer("a video")["input_ids"][0] == 49406
    card = final["files"]["README.md"].decode()
    assert "actionclip" in card
    from actionclip.hub.model_card import check_model_card

    check_model_card(card)
