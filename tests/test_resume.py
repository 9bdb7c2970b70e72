"""Resuming: a run resumed from a checkpoint ends with the weights of an uninterrupted run, also after the training
process is killed (SIGKILL) mid-epoch and while it writes a checkpoint."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_training import make_trainer, small_model
from tiny_models import make_tiny_clip_dir
from transformers.trainer_utils import get_last_checkpoint
from video_datasets import make_video_data

from actionclip.data.datasets import VideoClassificationDataset
from actionclip.prompts import ACTIONCLIP_TEMPLATES

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    return make_video_data(tmp_path_factory.mktemp("videos"))


def _weights(model) -> dict:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def test_resumed_run_continues_with_the_same_learning_rate_and_data(video_data, tmp_path):
    """16 clips, batch 4: checkpoint-2 is mid-epoch; random sampling, augmentation and prompts are on."""

    def trainer(output_dir):
        train = VideoClassificationDataset.from_list_file(
            video_data.list_file("train"), num_frames=4, image_size=32, training=True, seed=7
        )
        options = dict(max_steps=6, per_device_train_batch_size=4, save_strategy="steps", save_steps=2,
                       warmup_steps=2, learning_rate=1e-4)  # fmt: skip
        return make_trainer(small_model(seed=1), train, None, output_dir, templates=ACTIONCLIP_TEMPLATES, **options)

    uninterrupted = trainer(tmp_path / "a")
    uninterrupted.train()
    resumed = trainer(tmp_path / "b")
    resumed.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-2"))

    def rates(state):
        return {entry["step"]: entry["learning_rate"] for entry in state.log_history if "learning_rate" in entry}

    assert rates(resumed.state) == rates(uninterrupted.state)  # steps 1-2 come from checkpoint-2's state
    assert len(rates(resumed.state)) == 6
    expected = _weights(uninterrupted.model)
    for name, value in _weights(resumed.model).items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-6, msg=name)


@pytest.mark.slow  # six 12-step runs with worker processes: about 1-2 minutes on 2 busy cores
def test_resumed_from_every_checkpoint_of_a_shuffled_three_epoch_run_equals_uninterrupted(video_data, tmp_path):
    """16 clips, batch 4: 3 epochs of 4 steps, a checkpoint every 2 steps (6 and 10 are mid-epoch in epochs 1
    and 2); shuffling, augmentation, random prompts and 2 DataLoader worker processes are on."""

    def trainer(output_dir):
        train = VideoClassificationDataset.from_list_file(
            video_data.list_file("train"), num_frames=4, image_size=32, training=True, seed=7
        )
        options = dict(num_train_epochs=3, per_device_train_batch_size=4, save_strategy="steps", save_steps=2,
                       warmup_steps=2, learning_rate=1e-4, dataloader_num_workers=2, seed=3)  # fmt: skip
        return make_trainer(small_model(seed=1), train, None, output_dir, templates=ACTIONCLIP_TEMPLATES, **options)

    uninterrupted = trainer(tmp_path / "a")
    uninterrupted.train()
    assert uninterrupted.state.global_step == 12
    expected = _weights(uninterrupted.model)
    checkpoints = sorted((tmp_path / "a").glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    assert [path.name for path in checkpoints] == [f"checkpoint-{step}" for step in (2, 4, 6, 8, 10, 12)]
    for checkpoint in checkpoints[:-1]:
        resumed = trainer(tmp_path / f"from-{checkpoint.name}")
        resumed.train(resume_from_checkpoint=str(checkpoint))
        for name, value in _weights(resumed.model).items():
            assert torch.equal(value, expected[name]), f"resumed from {checkpoint.name}: {name} differs"


DRIVER = textwrap.dedent(
    """
    import os, sys, time
    import torch
    from transformers import TrainerCallback
    sys.path.insert(0, os.path.join({repo!r}, "training_scripts"))
    import run_actionclip

    mode, at = os.environ.get("STALL_MODE", ""), int(os.environ.get("STALL_AT", "0"))

    def stall():
        print("STALLED", flush=True)
        time.sleep(600)

    class StallAfterStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if mode == "step" and state.global_step == at:
                stall()

    if mode == "save":
        real_save = torch.save

        def save_then_stall(obj, f, *args, **kwargs):
            # The weights of checkpoint-<at> are written; stall before its optimizer state.
            if str(f).endswith("optimizer.pt") and f"checkpoint-{{at}}" in str(f):
                stall()
            return real_save(obj, f, *args, **kwargs)

        torch.save = save_then_stall
    run_actionclip.main(sys.argv[1:], callbacks=[StallAfterStep()])
    """
)


def _arguments(clip_dir, video_data, output_dir, resume=False):
    arguments = [
        "--model_name_or_path", clip_dir, "--dataset_format", "list", "--train_path", video_data.list_file("train"),
        "--class_names", video_data.root / "labels.csv", "--num_frames", "4", "--output_dir", output_dir,
        "--per_device_train_batch_size", "4", "--max_steps", "6", "--save_strategy", "steps", "--save_steps", "2",
        "--eval_strategy", "no", "--load_best_model_at_end", "false", "--learning_rate", "1e-4", "--warmup_steps", "2",
        "--report_to", "none", "--use_cpu", "--disable_tqdm", "true", "--seed", "11",
        "--config_overrides", '{"fusion_num_layers": 1}',
    ]  # fmt: skip
    if resume:
        arguments += ["--resume_from_checkpoint", "latest"]
    return [str(argument) for argument in arguments]


def _run(driver, arguments, stall_mode="", stall_at=0, timeout=300):
    """Run the script; with a stall mode, SIGKILL it once it reports the stall. Returns the output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "STALL_MODE": stall_mode,
           "STALL_AT": str(stall_at)}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, str(driver), *arguments], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output, deadline = [], time.monotonic() + timeout
    try:
        for line in process.stdout:
            output.append(line)
            if stall_mode and line.strip() == "STALLED":
                os.kill(process.pid, signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                break
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = "".join(output)
    if stall_mode:
        assert process.returncode == -signal.SIGKILL, text[-4000:]
    else:
        assert process.returncode == 0, text[-4000:]
    return text


def test_killed_mid_epoch_and_mid_checkpoint_write_then_resumed_equals_uninterrupted(video_data, tmp_path):
    clip_dir = make_tiny_clip_dir(tmp_path / "clip")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(repo=str(REPO_ROOT)))

    _run(driver, _arguments(clip_dir, video_data, tmp_path / "reference"))

    output_dir = tmp_path / "interrupted"
    # Killed after step 3 of 4 in the first epoch: checkpoint-2 is the last one.
    _run(driver, _arguments(clip_dir, video_data, output_dir), stall_mode="step", stall_at=3)
    assert get_last_checkpoint(str(output_dir)) == str(output_dir / "checkpoint-2")

    # Resumed, then killed while writing checkpoint-4: its weights are on disk, its optimizer state is not.
    _run(driver, _arguments(clip_dir, video_data, output_dir, resume=True), stall_mode="save", stall_at=4)
    half_written = output_dir / ".tmp-checkpoint-4" / "checkpoint-4"
    assert (half_written / "model.safetensors").is_file() and not (half_written / "optimizer.pt").exists()
    assert not (output_dir / "checkpoint-4").exists()
    assert get_last_checkpoint(str(output_dir)) == str(output_dir / "checkpoint-2")

    log = _run(driver, _arguments(clip_dir, video_data, output_dir, resume=True))
    assert f"resuming from {output_dir / 'checkpoint-2'}" in log
    assert sorted(p.name for p in output_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    assert not list(output_dir.glob(".tmp-*"))
    expected = load_file(tmp_path / "reference" / "model.safetensors")
    final = load_file(output_dir / "model.safetensors")
    assert final.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(final[name], value, rtol=0, atol=1e-6, msg=name)


def test_resuming_a_finished_run_from_its_final_checkpoint_trains_no_further_step(video_data, tmp_path):
    """16 clips, batch 4, max_steps=6 (not a whole number of epochs): resumed from checkpoint-6, no step 7."""

    def trainer():
        train = VideoClassificationDataset.from_list_file(
            video_data.list_file("train"), num_frames=4, image_size=32, training=True, seed=7
        )
        options = dict(max_steps=6, per_device_train_batch_size=4, save_strategy="steps", save_steps=3,
                       learning_rate=1e-4)  # fmt: skip
        return make_trainer(small_model(seed=1), train, None, tmp_path, **options)

    finished = trainer()
    finished.train()
    resumed = trainer()
    result = resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-6"))

    assert result.global_step == 6 and resumed.state.global_step == 6
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    expected = _weights(finished.model)
    for name, value in _weights(resumed.model).items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0, msg=name)
