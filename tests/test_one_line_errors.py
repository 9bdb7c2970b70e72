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


def _checkpoint(tmp_path, name, edit):
    from conftest import REFERENCE_DIR

    checkpoint = torch.load(REFERENCE_DIR / "Transf.pt", weights_only=True)
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


def _cases(tmp_path, model_dir):
    from conftest import REFERENCE_DIR

    good = REFERENCE_DIR / "Transf.pt"
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    unwritable = a_file / "inside"  # below a regular file: no one can create it, root included
    template = tmp_path / "broken.md"
    template.write_text("{{ card_data }\n{% for x in %}\n")
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"")
    negative = tmp_path / "negative.txt"
    negative.write_text("videos/a.mp4 -1\n")
    tiny = json.dumps({"text_config": TEXT, "vision_config": VISION, "projection_dim": 64, "fusion_num_layers": 1})
    cli = [sys.executable, "-m", "actionclip.cli"]
    training = [sys.executable, str(REPO_ROOT / "training_scripts" / "run_actionclip.py")]

    def drop(key):
        return lambda state: state.pop(key)

    def flat_conv(state):
        state["visual.conv1.weight"] = state["visual.conv1.weight"].reshape(-1)

    def no_rows(state):
        state["visual.positional_embedding"] = state["visual.positional_embedding"][:0]

    return {
        "convert: no visual.positional_embedding": cli
        + ["convert", _checkpoint(tmp_path, "nopos", drop("visual.positional_embedding")), tmp_path / "o1"],
        "convert: 1-D conv1.weight": cli + ["convert", _checkpoint(tmp_path, "flat", flat_conv), tmp_path / "o2"],
        "convert: 0-row positional table": cli + ["convert", _checkpoint(tmp_path, "rows", no_rows), tmp_path / "o3"],
        "convert: --num-frames 0": cli + ["convert", good, tmp_path / "o4", "--num-frames", "0"],
        "convert: --num-frames 100": cli + ["convert", good, tmp_path / "o5", "--num-frames", "100"],
        "convert: output is a file": cli + ["convert", good, a_file],
        "convert: output unwritable": cli + ["convert", good, unwritable],
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
    }  # fmt: skip


def _run_all(cases: dict, cwd) -> dict[str, tuple[int, str]]:
    """``{name: (exit status, stderr)}`` of every command, run at once."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    running = {
        name: subprocess.Popen(
            [str(part) for part in command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name, command in cases.items()
    }
    results = {}
    for name, process in running.items():
        _, stderr = process.communicate(timeout=600)
        results[name] = (process.returncode, stderr)
    return results


def _not_one_line(results: dict[str, tuple[int, str]]) -> list[str]:
    """The runs that did not end with exit status 2 and one ``error:`` line on stderr, without a traceback."""
    failures = []
    for name, (status, stderr) in results.items():
        # One line; argparse's own errors come after its usage lines.
        lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(("usage:", " "))]
        if status != 2 or "Traceback" in stderr or len(lines) != 1 or "error:" not in lines[0]:
            failures.append(f"{name}: exit {status}\n{stderr[-1500:]}")
    return failures


def test_bad_input_to_every_program_is_one_line_and_exit_2(model_dir, tmp_path):
    failures = _not_one_line(_run_all(_cases(tmp_path, model_dir), tmp_path))
    assert not failures, "\n\n".join(failures)


def test_damaged_hostile_or_incomplete_weights_are_one_line_naming_the_file_and_exit_2(model_dir, tmp_path):
    marker = tmp_path / "marker"
    unreadable = ("model.safetensors': not a readable safetensors file",)
    models = {  # name: (model directory, what the message says: the file and the problem)
        "truncated model.safetensors": (weight_factory.truncated(model_dir, tmp_path / "cut"), unreadable),
        "header claiming 10**15 bytes": (weight_factory.claiming_bytes(model_dir, tmp_path / "claim"), unreadable),
        "tensor of another shape": (weight_factory.reshaped(model_dir, tmp_path / "shape"),
                                    (f"model.safetensors': tensor '{weight_factory.RESHAPED_TENSOR}' has shape",)),
        "no fusion tensors": (weight_factory.without_fusion(model_dir, tmp_path / "part"),
                              ("model.safetensors': lacks", "tensors (fusion.")),
        "pickled pytorch_model.bin with a payload": (
            weight_factory.pickled_with_payload(model_dir, tmp_path / "pickle", marker),
            ("pytorch_model.bin': is a pickle", "could run code")),
    }  # fmt: skip
    video = write_test_video(tmp_path / "clip.mp4", num_frames=12)
    cli = [sys.executable, "-m", "actionclip.cli"]
    cases = {}
    for name, (model, _) in models.items():
        cases[f"classify: {name}"] = cli + ["classify", video, "--model", model, "--labels", "a,b", "--no-progress"]
        cases[f"info: {name}"] = cli + ["info", model]
    results = _run_all(cases, tmp_path)
    failures = _not_one_line(results)
    for name, (model, said) in models.items():
        for command in ("classify", "info"):
            stderr = results[f"{command}: {name}"][1]
            if not all(part in stderr for part in (f"cannot use weights '{model}/", *said)):
                failures.append(f"{command}: {name}: the file or the problem is not named\n{stderr[-1500:]}")
    assert not failures, "\n\n".join(failures)
    assert not marker.exists()  # nothing in the pickle ran
