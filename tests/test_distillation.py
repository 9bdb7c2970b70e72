"""Frozen-teacher distillation while fine-tuning (`actionclip.training.distillation`, ``distill_weight`` /
``distill_on``): the loss by hand, a teacher that never changes, LoRA and a sigmoid family, exact resume, two
processes against one, and the training script end to end on real encoded videos and tiny real models."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from backbone_families import make_family_dir
from safetensors.torch import load_file
from test_distributed import TORCHRUN, run_torchrun
from test_training import make_trainer, small_model, training_arguments
from tiny_models import make_tiny_clip_dir
from video_datasets import make_video_data

from actionclip import ActionCLIPModel
from actionclip.data.datasets import VideoClassificationDataset
from actionclip.errors import InvalidTrainingOptionError
from actionclip.processing_actionclip import ActionCLIPProcessor
from actionclip.prompts import ACTIONCLIP_TEMPLATES
from actionclip.training.distillation import PROJECTORS_FILE, FeatureDistillation, cosine_distillation_loss
from actionclip.training.trainer import ActionCLIPTrainingArguments, apply_lora, build_trainer

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "training_scripts" / "run_actionclip.py"
GELU_1 = 0.8413447460685429  # gelu(1) = 1 * Phi(1)


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    return make_video_data(tmp_path_factory.mktemp("videos"))


def _train_set(video_data, **options):
    return VideoClassificationDataset.from_list_file(
        video_data.list_file("train"), num_frames=4, image_size=32, **options
    )


def _snapshot(parameters):
    return {name: value.detach().clone() for name, value in parameters}


# ----------------------------------------------------------------------------------------------------------------
# The loss, by hand


def test_cosine_loss_is_one_minus_cosine_averaged_over_the_rows():
    student = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    teacher = torch.tensor([[3.0, 0.0], [1.0, 0.0], [0.0, -1.0]])
    # cosines 1, 1/sqrt(2), -1: losses 0, 1 - 1/sqrt(2), 2
    expected = (0.0 + (1 - 1 / math.sqrt(2)) + 2.0) / 3
    assert cosine_distillation_loss(student, teacher).item() == pytest.approx(expected, abs=1e-6)


def test_fresh_projectors_give_plain_cosine_distillation_weighted_and_averaged_over_parts():
    distillation = FeatureDistillation(teacher=None, dim=2, parts=("video", "text"), weight=0.5)
    student = {"video": torch.tensor([[1.0, 0.0]]), "text": torch.tensor([[1.0, 1.0]])}
    targets = {"video": torch.tensor([[0.0, 1.0]]), "text": torch.tensor([[1.0, 0.0]])}
    loss, parts = distillation(student, targets)
    assert parts["video"].item() == pytest.approx(1.0, abs=1e-6)  # orthogonal
    assert parts["text"].item() == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)
    assert loss.item() == pytest.approx(0.5 * (1.0 + 1 - 1 / math.sqrt(2)) / 2, abs=1e-6)


def test_the_residual_branch_moves_the_projected_student_towards_the_teacher():
    distillation = FeatureDistillation(teacher=None, dim=2, parts="video", weight=1.0)
    projector = distillation.projectors["video"]
    with torch.no_grad():
        projector.down.weight.copy_(torch.eye(2))
        projector.down.bias.zero_()
        projector.up.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))  # the first feature's gelu into the second
    # [1, 0] -> [1, 0] + [0, gelu(1)]; against [0, 1]: cos = gelu(1) / sqrt(1 + gelu(1)^2)
    loss, _ = distillation({"video": torch.tensor([[1.0, 0.0]])}, {"video": torch.tensor([[0.0, 1.0]])})
    assert loss.item() == pytest.approx(1 - GELU_1 / math.sqrt(1 + GELU_1**2), abs=1e-6)
    assert list(distillation.state_dict()) == [
        "projectors.video.down.weight", "projectors.video.down.bias", "projectors.video.up.weight",
        "projectors.video.up.bias",
    ]  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# Options


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (dict(distill_weight=-0.5), "distill_weight"),
        (dict(distill_weight=float("nan")), "distill_weight"),
        (dict(distill_weight=1.0, distill_on="video,audio"), "'audio'"),
        (dict(distill_weight=1.0, distill_on=()), "distill_on"),
    ],
)
def test_bad_distillation_options_are_typed_errors_naming_the_option(options, named, tmp_path):
    with pytest.raises(InvalidTrainingOptionError, match=named):
        training_arguments(tmp_path, **options)


def test_distill_on_takes_a_comma_list_or_a_tuple(tmp_path):
    assert training_arguments(tmp_path, distill_on="text, video").distill_on == ("video", "text")
    assert training_arguments(tmp_path, distill_on=("text",)).distill_on == ("text",)
    assert ActionCLIPTrainingArguments(output_dir=str(tmp_path), use_cpu=True).distill_weight == 0.0


def test_the_script_refuses_a_negative_weight_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, SCRIPT, "--output_dir", tmp_path, "--use_cpu", "--distill_weight", "-1"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(result.stderr.strip().splitlines()) == 1 and "distill_weight" in result.stderr


# ----------------------------------------------------------------------------------------------------------------
# The teacher


def test_teacher_is_frozen_outside_the_optimizer_while_the_student_and_projectors_train(video_data, tmp_path):
    model = small_model(seed=1)
    start = _snapshot(model.named_parameters())
    options = dict(max_steps=3, per_device_train_batch_size=4, learning_rate=1e-3, distill_weight=2.0)
    trainer = make_trainer(model, _train_set(video_data), None, tmp_path, **options)
    teacher = trainer.distillation.teacher
    assert teacher.model is not model and not teacher.model.training
    trainer.train()

    teacher_weights = dict(teacher.model.named_parameters())
    assert all(not p.requires_grad and p.grad is None for p in teacher_weights.values())
    assert all(torch.equal(teacher_weights[name], value) for name, value in start.items())
    assert {name for name, p in model.named_parameters() if not torch.equal(p, start[name])}  # the student moved
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in teacher_weights.values()}
    groups = {group["name"]: group for group in trainer.optimizer.param_groups}
    assert {id(p) for p in groups["distillation"]["params"]} == {id(p) for p in trainer.distillation.parameters()}
    assert all(
        p.abs().sum() > 0 for p in (projector.up.weight for projector in trainer.distillation.projectors.values())
    )

    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 3
    for entry in logs:
        assert entry["loss"] == pytest.approx(entry["contrastive_loss"] + entry["distillation_loss"], rel=1e-5)
        mean_part = (entry["distillation_video_loss"] + entry["distillation_text_loss"]) / 2
        assert entry["distillation_loss"] == pytest.approx(2.0 * mean_part, rel=1e-5)
    # Step 1: the student is the teacher on the text side (same weights, the projector still the identity).
    assert logs[0]["distillation_text_loss"] == pytest.approx(0.0, abs=1e-6)
    assert logs[1]["distillation_text_loss"] > 1e-4

    trainer.save_model(str(tmp_path / "saved"))
    saved = load_file(tmp_path / "saved" / "model.safetensors")
    assert set(saved) == set(model.state_dict())  # neither the teacher nor the projectors


def test_lora_teacher_is_the_base_model_with_its_adapters_off(video_data, tmp_path):
    pixel_values = torch.stack([_train_set(video_data)[i]["pixel_values"] for i in range(2)])
    with torch.no_grad():
        expected = small_model(seed=2).get_frame_features(pixel_values).mean(dim=1)
    model = apply_lora(small_model(seed=2), r=4, alpha=8)
    options = dict(max_steps=2, per_device_train_batch_size=4, learning_rate=1e-2, distill_weight=1.0,
                   distill_on="video")  # fmt: skip
    trainer = make_trainer(model, _train_set(video_data), None, tmp_path, **options)
    teacher = trainer.distillation.teacher
    assert teacher.model is model.get_base_model()  # no second copy
    trainer.train()
    assert model.get_base_model().training  # the teacher's eval mode was the teacher's turn only
    torch.testing.assert_close(teacher.video_features(pixel_values), expected, rtol=0, atol=1e-6)
    with torch.no_grad():
        student = model.get_base_model().get_frame_features(pixel_values).mean(dim=1)
    assert (student - expected).abs().max() > 1e-4  # the adapters act, except while teaching
    assert all("text" not in key for key in trainer.state.log_history[0] if key.startswith("distillation_"))


def test_a_sigmoid_family_distils(video_data, tmp_path):
    folder = make_family_dir("siglip", tmp_path / "siglip")
    model = ActionCLIPModel.from_backbone(folder, num_frames=2, fusion_num_layers=1)
    processor = ActionCLIPProcessor.from_backbone(folder, num_frames=2)
    dataset = VideoClassificationDataset.from_list_file(
        video_data.list_file("train"), video_data.root / "labels.csv", num_frames=2, training=True,
        video_processor=processor.video_processor,
    )  # fmt: skip
    args = training_arguments(tmp_path / "out", max_steps=2, per_device_train_batch_size=4, learning_rate=1e-3,
                              distill_weight=1.0)  # fmt: skip
    trainer = build_trainer(model, args, processor, dataset.label_names, train_dataset=dataset)
    assert trainer.distillation.projectors["video"].up.in_features == model.config.projection_dim
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2 and all(math.isfinite(entry["distillation_loss"]) for entry in logs)
    assert logs[1]["distillation_loss"] > 0


# ----------------------------------------------------------------------------------------------------------------
# Resume


def test_resumed_mid_run_with_distillation_equals_uninterrupted(video_data, tmp_path):
    def trainer(output_dir):
        options = dict(max_steps=4, per_device_train_batch_size=4, save_strategy="steps", save_steps=2,
                       warmup_steps=1, learning_rate=1e-3, distill_weight=1.0)  # fmt: skip
        train = _train_set(video_data, training=True, seed=7)
        return make_trainer(small_model(seed=1), train, None, output_dir, templates=ACTIONCLIP_TEMPLATES, **options)

    uninterrupted = trainer(tmp_path / "a")
    uninterrupted.train()
    assert (tmp_path / "a" / "checkpoint-2" / PROJECTORS_FILE).is_file()
    resumed = trainer(tmp_path / "b")
    resumed.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-2"))
    for module in ("model", "distillation"):
        expected = getattr(uninterrupted, module).state_dict()
        for name, value in getattr(resumed, module).state_dict().items():
            assert torch.equal(value, expected[name]), f"{module}: {name} differs"
    losses = [
        [entry["distillation_loss"] for entry in run.state.log_history if "distillation_loss" in entry]
        for run in (uninterrupted, resumed)
    ]
    assert losses[1] == losses[0] and len(losses[0]) == 4  # steps 1-2 from the checkpoint's state, then 3-4


# ----------------------------------------------------------------------------------------------------------------
# The script: end to end, and two processes against one


@pytest.fixture(scope="module")
def script_runs(tmp_path_factory, video_data):
    """The training script with ``--distill_weight`` on a tiny CLIP folder and the class-folder dataset: one
    process with 4 videos a step, and (where torchrun is installed) two processes with 2 each."""
    root = tmp_path_factory.mktemp("script")
    clip_dir = make_tiny_clip_dir(root / "clip")
    common = [
        "--model_name_or_path", clip_dir, "--dataset_format", "folder", "--train_path", video_data.root / "train",
        "--class_names", video_data.root / "labels.csv", "--num_frames", "4", "--max_steps", "2", "--logging_steps",
        "1", "--learning_rate", "1e-3", "--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "no",
        "--load_best_model_at_end", "false", "--report_to", "none", "--use_cpu", "--seed", "3", "--config_overrides",
        '{"fusion_num_layers": 1}', "--disable_tqdm", "true", "--distill_weight", "0.5", "--distill_on", "video,text",
    ]  # fmt: skip
    single = subprocess.run(
        [sys.executable, SCRIPT, *map(str, common), "--output_dir", root / "one", "--per_device_train_batch_size", "4"],
        cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}, capture_output=True,
        text=True, timeout=240,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-5000:]
    runs = {"one": root / "one"}
    if TORCHRUN.exists():
        run_torchrun([SCRIPT, *common, "--output_dir", root / "ddp", "--per_device_train_batch_size", "2"], REPO_ROOT)
        runs["ddp"] = root / "ddp"
    return runs


def _step_logs(output_dir):
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return [entry for entry in history if "loss" in entry]


def test_script_trains_with_distillation_and_saves_the_projectors_only_in_checkpoints(script_runs):
    output_dir = script_runs["one"]
    logs = _step_logs(output_dir)
    assert len(logs) == 2 and all(entry["distillation_loss"] > 0 for entry in logs[1:])
    assert (output_dir / "checkpoint-2" / PROJECTORS_FILE).is_file()
    assert not (output_dir / PROJECTORS_FILE).exists()
    weights = load_file(output_dir / "model.safetensors")
    assert not any("projector" in name for name in weights)
    reloaded = ActionCLIPModel.from_pretrained(output_dir)
    assert set(reloaded.state_dict()) == set(weights)
    assert json.loads((output_dir / "checkpoint-2" / "trainer_state.json").read_text())["global_step"] == 2


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside the interpreter")
def test_two_processes_log_the_loss_of_one_process_on_the_whole_batch(script_runs):
    for ddp, one in zip(_step_logs(script_runs["ddp"]), _step_logs(script_runs["one"]), strict=True):
        for key in (
            "loss",
            "contrastive_loss",
            "distillation_loss",
            "distillation_video_loss",
            "distillation_text_loss",
        ):
            assert ddp[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6), key

    # Left out: weights whose gradient is zero in theory and rounding noise in practice, which Adam scales up to
    # learning-rate-sized steps: the text projector's output layer at step 1 (the student's text embedding is the
    # teacher's, so 1 - cos is at its minimum) and the attention key biases (a softmax ignores them).
    def theory_zero(name):
        return name.startswith("projectors.text.up.") or name.endswith("k_proj.bias")

    for weights in (f"checkpoint-2/{PROJECTORS_FILE}", "model.safetensors"):
        ddp_weights = load_file(script_runs["ddp"] / weights)
        one_weights = load_file(script_runs["one"] / weights)
        assert ddp_weights.keys() == one_weights.keys()
        for name, value in one_weights.items():
            if not theory_zero(name):
                torch.testing.assert_close(ddp_weights[name], value, atol=2e-5, rtol=1e-4, msg=name)
