"""The contrastive objective and the training script across processes: `torchrun --nproc_per_node=2` on the CPU
(gloo), in subprocesses."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
TORCHRUN = Path(sys.executable).with_name("torchrun")

pytestmark = pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside the interpreter")

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import torch
    import torch.distributed as dist
    sys.path.insert(0, {tests_dir!r})
    from tiny_models import random_videos, tiny_model
    from actionclip.tokenizer import load_clip_tokenizer

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    pixel_values = random_videos(batch=4, frames=4, size=32, seed=1)
    labels = torch.tensor([0, 1, 0, 2])
    texts = ["a video of running", "a video of jumping", "the man is running", "a video of swimming"]
    tokens = load_clip_tokenizer()(texts, padding=True, return_tensors="pt")
    options = dict(num_frames=4, fusion_num_layers=1, contrastive_loss={contrastive_loss!r})

    # One process holding the whole global batch, without gathering.
    reference = tiny_model(seed=0, **options)
    reference.criterion.gather_distributed = False
    reference_loss = reference(pixel_values, tokens["input_ids"], tokens["attention_mask"], labels=labels).loss
    reference_loss.backward()

    model = tiny_model(seed=0, **options)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    mine = slice(2 * rank, 2 * rank + 2)
    loss = ddp(pixel_values[mine], tokens["input_ids"][mine], tokens["attention_mask"][mine], labels=labels[mine]).loss
    loss.backward()

    # Relative to each parameter's gradient, floored by the largest gradient: some gradients are exactly zero in
    # theory (attention key biases) and are rounding noise in practice.
    scale = max(r.grad.abs().max().item() for r in reference.parameters() if r.grad is not None)
    worst = max(
        (p.grad - r.grad).abs().max().item() / max(r.grad.abs().max().item(), 1e-3 * scale)
        for p, r in zip(model.parameters(), reference.parameters())
        if r.grad is not None and p.grad is not None
    )
    missing = [n for (n, p), r in zip(model.named_parameters(), reference.parameters()) if (p.grad is None) != (r.grad is None)]
    with open(os.path.join({out_dir!r}, f"rank{{rank}}.json"), "w") as handle:
        json.dump({{"loss": loss.item(), "reference_loss": reference_loss.item(), "worst_relative_grad_error": worst,
                   "missing": missing}}, handle)
    dist.destroy_process_group()
    """
)


def run_torchrun(args, cwd, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", *map(str, args)]
    # A session of its own, so that a hung run is killed with all its workers.
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"torchrun did not finish in {timeout} s:\n{output[-5000:]}") from None
    assert process.returncode == 0, output[-8000:]
    return output


@pytest.mark.parametrize("contrastive_loss", ["kl", "sigmoid"])
def test_gathered_loss_and_ddp_gradients_equal_one_process_on_the_global_batch(tmp_path, contrastive_loss):
    """The paper's KL loss and SigLIP's sigmoid loss (its logit bias included) over the gathered batch."""
    script = tmp_path / "worker.py"
    script.write_text(
        WORKER.format(tests_dir=str(TESTS_DIR), out_dir=str(tmp_path), contrastive_loss=contrastive_loss)
    )
    run_torchrun([script], cwd=REPO_ROOT)
    for rank in (0, 1):
        result = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert result["missing"] == []
        assert abs(result["loss"] - result["reference_loss"]) < 1e-5, result
        assert result["worst_relative_grad_error"] < 1e-4, result


def test_training_script_under_torchrun_matches_one_process_with_the_same_global_batch(
    tmp_path, tiny_clip_dir, video_data
):
    """Two processes with 2 videos each train like one process with 4 (same samples per step, gathered loss)."""
    common = [
        "--model_name_or_path", tiny_clip_dir, "--dataset_format", "folder", "--train_path", video_data.root / "train",
        "--class_names", video_data.root / "labels.csv", "--num_frames", "4", "--max_steps", "2",
        "--learning_rate", "1e-4", "--save_strategy", "no", "--eval_strategy", "no", "--load_best_model_at_end",
        "false", "--report_to", "none", "--use_cpu", "--seed", "3", "--config_overrides", '{"fusion_num_layers": 1}',
        "--disable_tqdm", "true",
    ]  # fmt: skip
    script = REPO_ROOT / "training_scripts" / "run_actionclip.py"
    run_torchrun([script, *common, "--output_dir", tmp_path / "ddp", "--per_device_train_batch_size", "2"], REPO_ROOT)
    single = subprocess.run(
        [
            sys.executable,
            script,
            *map(str, common),
            "--output_dir",
            tmp_path / "one",
            "--per_device_train_batch_size",
            "4",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert single.returncode == 0, single.stderr[-5000:]
    ddp_weights = load_file(tmp_path / "ddp" / "model.safetensors")
    one_weights = load_file(tmp_path / "one" / "model.safetensors")
    assert ddp_weights.keys() == one_weights.keys()
    for name, value in one_weights.items():
        torch.testing.assert_close(ddp_weights[name], value, atol=2e-5, rtol=1e-4, msg=name)


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    from tiny_models import make_tiny_clip_dir

    return make_tiny_clip_dir(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    from video_datasets import make_video_data

    return make_video_data(tmp_path_factory.mktemp("videos"))
