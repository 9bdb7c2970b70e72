"""Bad input to any of our programs ends with one line on stderr and exit status 2, never a traceback. Each case
runs the real program in its own process (all at once, so that the imports overlap)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import weight_factory
from tiny_models import TEXT, VISION, tiny_model
from video_factory import write_test_video

from actionclip.processing_actionclip import ActionCLIPProcessor

REPO_ROOT = Path(__file__).resolve().parents[1]


def _checkpoint(good, tmp_path, name, edit):
    checkpoint = torch.load(good, weights_only=True)
    edit(checkpoint["model_state_dict"])
    path = tmp_path / f"{name}.pt"
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    model = tiny_model(seed=2)
    model.save_pretrained(path)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(path)
    return path


def _unusable_paths(tmp_path):
    """A regular file where a folder is wanted, and a path below it that no one can create (root included)."""
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    return a_file, a_file / "inside"


def _convert_cases(tmp_path, reference_dir):
    """Damaged authors' checkpoints and bad `convert` settings (they start from the authors' Transf.pt)."""
    good = reference_dir / "Transf.pt"
    a_file, unwritable = _unusable_paths(tmp_path)
    cli = [sys.executable, "-m", "actionclip"]

    def drop(key):
        return lambda state: state.pop(key)

    def flat_conv(state):
        state["visual.conv1.weight"] = state["visual.conv1.weight"].reshape(-1)

    def no_rows(state):
        state["visual.positional_embedding"] = state["visual.positional_embedding"][:0]

    return {
        "convert: no visual.positional_embedding": cli
        + ["convert", _checkpoint(good, tmp_path, "nopos", drop("visual.positional_embedding")), tmp_path / "o1"],
        "convert: 1-D conv1.weight": cli + ["convert", _checkpoint(good, tmp_path, "flat", flat_conv), tmp_path / "o2"],
        "convert: 0-row positional table": cli
        + ["convert", _checkpoint(good, tmp_path, "rows", no_rows), tmp_path / "o3"],
        "convert: --num-frames 0": cli + ["convert", good, tmp_path / "o4", "--num-frames", "0"],
        "convert: --num-frames 100": cli + ["convert", good, tmp_path / "o5", "--num-frames", "100"],
        "convert: output is a file": cli + ["convert", good, a_file],
        "convert: output unwritable": cli + ["convert", good, unwritable],
    }  # fmt: skip


def _cases(tmp_path, model_dir):
    a_file, unwritable = _unusable_paths(tmp_path)
    template = tmp_path / "broken.md"
    template.write_text("{{ card_data }\n{% for x in %}\n")
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"")
    negative = tmp_path / "negative.txt"
    negative.write_text("videos/a.mp4 -1\n")
    a_list = tmp_path / "list.txt"  # a valid list: eval gets as far as loading the model and decoding
    a_list.write_text("videos/a.mp4 0\n")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    tiny = json.dumps({"text_config": TEXT, "vision_config": VISION, "projection_dim": 64, "fusion_num_layers": 1})
    cli = [sys.executable, "-m", "actionclip"]
    training = [sys.executable, str(REPO_ROOT / "training_scripts" / "run_actionclip.py")]

    return {
        "card: broken template": cli + ["card", model_dir, "--no-eval", "--template", template, "--stdout"],
        "card: unwritable --output": cli + ["card", model_dir, "--no-eval", "--output", unwritable / "README.md"],
        "card: --license 'not a license'": cli + ["card", model_dir, "--no-eval", "--license", "not a license", "--stdout"],
        "demo: --output-dir a file": cli + ["demo", "--output-dir", a_file, "--quiet"],
        "demo: --output-dir unwritable": cli + ["demo", "--output-dir", unwritable, "--quiet"],
        "demo: --seed -1": cli + ["demo", "--seed", "-1", "--output-dir", tmp_path / "demo"],
        "training: negative label id": training
        + ["--dataset_format", "list", "--train_path", negative, "--config_overrides", tiny, "--output_dir",
           tmp_path / "run", "--use_cpu", "--report_to", "none", "--eval_strategy", "no"],
        "train: negative label id": cli
        + ["train", "--dataset_format", "list", "--train_path", negative, "--config_overrides", tiny, "--output_dir",
           tmp_path / "run2", "--use_cpu", "--report_to", "none", "--eval_strategy", "no"],
        "train: no model and no config": cli + ["train", "--train_path", videos, "--output_dir", tmp_path / "run3"],
        "eval: --num_workers -1": cli
        + ["eval", "--model", model_dir, "--output_dir", tmp_path / "e1", "--eval_path", a_list, "--class_names",
           labels, "--num_workers", "-1"],
        "eval: --device without such a device": cli
        + ["eval", "--model", model_dir, "--output-dir", tmp_path / "e2", "--eval-path", a_list, "--class-names",
           labels, "--device", _absent_device()],
        "export: output not empty": cli + ["export", model_dir, videos],
        "classify: --num_frames 0": cli
        + ["classify", videos / "a.mp4", "--labels", "a,b", "--model", model_dir, "--num_frames", "0"],
    }  # fmt: skip


# What the one line says, where the case is about the message.
MESSAGES = {
    "eval: --num_workers -1": "argument --num-workers: '-1' must be at least 0",
    "eval: --device without such a device": "actionclip eval: error: --device",
    "export: output not empty": "is not empty: choose a new directory or pass --overwrite",
    "classify: --num_frames 0": "argument --num-frames: '0' must be at least 1",  # the spelling --help shows
}


def _absent_device() -> str:
    """A device this machine does not have: ``cuda`` without a GPU, else the ordinal past the last GPU."""
    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


def test_bad_input_to_every_program_is_one_line_and_exit_2(model_dir, tmp_path):
    _assert_one_line_and_exit_2(_cases(tmp_path, model_dir), tmp_path)


def test_damaged_authors_checkpoints_are_one_line_and_exit_2(tmp_path, reference_dir):
    _assert_one_line_and_exit_2(_convert_cases(tmp_path, reference_dir), tmp_path)


def test_damaged_hostile_or_incomplete_weights_are_one_line_naming_the_file_and_exit_2(model_dir, tmp_path):
    marker = tmp_path / "marker"
    models = {  # name: (model directory, what the message says after the file's name)
        "truncated model.safetensors": (weight_factory.truncated(model_dir, tmp_path / "cut"),
                                        ("model.safetensors': not a readable safetensors file",)),
        "header claiming 10**15 bytes": (weight_factory.claiming_bytes(model_dir, tmp_path / "claim"),
                                         ("model.safetensors': not a readable safetensors file",)),
        "tensor of another shape": (weight_factory.reshaped(model_dir, tmp_path / "shape"),
                                    (f"model.safetensors': tensor '{weight_factory.RESHAPED_TENSOR}' has shape",)),
        "no fusion tensors": (weight_factory.without_fusion(model_dir, tmp_path / "part"),
                              ("model.safetensors': lacks", "tensors (fusion.")),
        "pickled pytorch_model.bin with a payload": (
            weight_factory.pickled_with_payload(model_dir, tmp_path / "pickle", marker),
            ("pytorch_model.bin': is a pickle", "could run code")),
    }  # fmt: skip
    video = write_test_video(tmp_path / "clip.mp4", num_frames=12)
    cli = [sys.executable, "-m", "actionclip"]
    cases, messages = {}, {}
    for name, (model, said) in models.items():
        cases[f"classify: {name}"] = cli + ["classify", video, "--model", model, "--labels", "a,b", "--no-progress"]
        cases[f"info: {name}"] = cli + ["info", model]
        file_named = (f"cannot use weights '{model}/{said[0]}", *said[1:])
        messages[f"classify: {name}"] = messages[f"info: {name}"] = file_named
    _assert_one_line_and_exit_2(cases, tmp_path, messages)
    assert not marker.exists()  # nothing in the pickle ran


def _assert_one_line_and_exit_2(cases, tmp_path, messages=MESSAGES):
    """Every case ends with exit status 2 and one line, which says ``messages[name]`` (a text or all of a tuple's)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    running = {
        name: subprocess.Popen(
            [str(part) for part in command],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name, command in cases.items()
    }
    failures = []
    for name, process in running.items():
        _, stderr = process.communicate(timeout=600)
        # One line; argparse's own errors come after its usage lines.
        lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(("usage:", " "))]
        if process.returncode != 2 or "Traceback" in stderr or len(lines) != 1 or "error:" not in lines[0]:
            failures.append(f"{name}: exit {process.returncode}\n{stderr[-1500:]}")
        elif not all(part in lines[0] for part in _parts(messages.get(name, ""))):
            failures.append(f"{name}: {lines[0]!r} does not say {messages[name]!r}")
    assert not failures, "\n\n".join(failures)


def _parts(said: str | tuple[str, ...]) -> tuple[str, ...]:
    return (said,) if isinstance(said, str) else said
