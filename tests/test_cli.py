"""The `actionclip` command, run as a program on real video files and a tiny saved model."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from tiny_models import tiny_model
from transformers import pipeline
from video_factory import write_test_video

import actionclip  # noqa: F401
from actionclip.commands import main
from actionclip.processing_actionclip import ActionCLIPProcessor

LABELS = ["juggling balls", "playing guitar", "tai chi"]


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "actionclip", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_model")
    model = tiny_model(seed=11, fusion="transf", joint=True)
    with torch.no_grad():
        model.logit_scale.fill_(np.log(40.0))
    model.save_pretrained(path)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_videos")
    write_test_video(folder / "a.mp4", num_frames=20, seed=1)
    (folder / "nested").mkdir()
    write_test_video(folder / "nested" / "b.webm", num_frames=16, seed=2, codec="libvpx-vp9")
    (folder / "readme.txt").write_text("not a video, and not picked up: wrong extension")
    return folder


@pytest.fixture(scope="module")
def expected(model_dir, video_dir):
    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    videos = [str(video_dir / "a.mp4"), str(video_dir / "nested" / "b.webm")]
    return dict(zip(videos, classifier(videos, candidate_labels=LABELS)))


def test_classify_a_directory_prints_json_with_a_progress_bar(model_dir, video_dir, expected):
    result = run_cli("classify", video_dir, "--labels", ",".join(LABELS), "--model", model_dir, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["video"] for row in rows] == list(expected)
    for row in rows:
        assert [p["label"] for p in row["predictions"]] == [p["label"] for p in expected[row["video"]]]
        assert [p["score"] for p in row["predictions"]] == pytest.approx(
            [p["score"] for p in expected[row["video"]]], abs=1e-6
        )
    assert "2/2" in result.stderr  # tqdm's bar, on stderr


def test_classify_with_labels_file_top_k_templates_and_csv(model_dir, video_dir, tmp_path, capsys):
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("\n".join(LABELS) + "\n\n", encoding="utf-8")
    templates_file = tmp_path / "templates.txt"
    templates_file.write_text("a video of {}\n{}, an action\n", encoding="utf-8")
    video = str(video_dir / "a.mp4")
    args = ["classify", video, "--labels-file", str(labels_file), "--model", str(model_dir), "--top-k", "2"]
    assert main([*args, "--csv", "--templates", str(templates_file)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    templates = ["a video of {}", "{}, an action"]
    best = classifier(video, candidate_labels=LABELS, top_k=2, hypothesis_template=templates)
    assert [(row["video"], row["rank"], row["label"]) for row in rows] == [
        (video, str(rank), item["label"]) for rank, item in enumerate(best, start=1)
    ]
    assert [float(row["score"]) for row in rows] == pytest.approx([item["score"] for item in best], abs=1e-6)
    default = classifier(video, candidate_labels=LABELS, top_k=2)
    assert [item["score"] for item in best] != pytest.approx([item["score"] for item in default], abs=1e-4)


def test_classify_text_output_in_process(model_dir, video_dir, expected, capsys):
    video = str(video_dir / "a.mp4")
    assert main(["classify", video, "--labels", ",".join(LABELS), "--model", str(model_dir), "--top-k", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    best = expected[video][0]
    assert lines == [video, f"  {best['score']:.4f}  {best['label']}"]


def test_info_describes_the_model(model_dir):
    result = run_cli("info", model_dir, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    model = tiny_model(seed=11, fusion="transf", joint=True)
    assert info["architecture"] == "ActionCLIPModel"
    assert (info["fusion"], info["joint"], info["shift"]) == ("transf", True, False)
    assert (info["num_frames"], info["image_size"], info["patch_size"]) == (8, 32, 8)
    assert info["templates"] == list(model.config.templates)
    assert info["parameters"]["total"] == sum(p.numel() for p in model.parameters())
    assert info["parameters"]["visual_prompts"] == sum(
        p.numel() for n, p in model.named_parameters() if n.startswith(("fusion.", "temporal_embedding"))
    )
    assert info["processor"] is True


def test_info_text_output_in_process(model_dir, capsys):
    assert main(["info", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "architecture" in out and "ActionCLIPModel" in out
    assert "templates (16)" in out and "  The woman is {}" in out


@pytest.mark.parametrize("command", [[], ["classify"], ["info"], ["convert"]])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: actionclip" in out and "example" in out


def test_help_runs_as_a_program():
    result = run_cli("classify", "--help")
    assert result.returncode == 0
    assert "--labels-file" in result.stdout and "examples:" in result.stdout


def test_bad_input_exits_2_with_one_line_and_no_traceback(model_dir, tmp_path, capsys):
    assert main(["classify", str(tmp_path / "absent.mp4"), "--labels", "a,b", "--model", str(model_dir)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"actionclip classify: error: video '{tmp_path / 'absent.mp4'}': no such file or directory"
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--labels", "tai chi,tai chi"], "same class"),
        (["--labels", ","], "empty"),
        (["--labels", "a,b", "--templates", "no placeholder here"], "'{}'"),
        (["--labels", "a,b", "--model-override"], None),
    ],
)
def test_bad_labels_and_templates_exit_2(model_dir, video_dir, args, message, capsys):
    argv = ["classify", str(video_dir / "a.mp4"), "--model", str(model_dir), *args]
    if message is None:  # an unknown option: argparse's own usage error, also status 2
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        return
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("actionclip classify: error:") and message in err[0]


def test_unreadable_video_is_reported_and_the_others_still_classified(model_dir, video_dir, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 2048)
    video = str(video_dir / "a.mp4")
    status = main(["classify", video, str(broken), "--labels", ",".join(LABELS), "--model", str(model_dir), "--json"])
    assert status == 2
    captured = capsys.readouterr()
    assert [row["video"] for row in json.loads(captured.out)] == [video]
    assert "broken.mp4" in captured.err and "1 of 2 videos could not be classified" in captured.err


def test_missing_model_exits_2(video_dir, tmp_path, capsys):
    assert main(["classify", str(video_dir / "a.mp4"), "--labels", "a,b", "--model", str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "nope")]) == 2


@pytest.mark.parametrize("user_value", [None, "ACTIVE"])
def test_commands_run_with_a_passive_omp_wait_policy_unless_the_user_set_one(model_dir, user_value):
    import os

    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if user_value is not None:
        env["OMP_WAIT_POLICY"] = user_value
    result = subprocess.run(
        [sys.executable, "-m", "actionclip", "info", str(model_dir), "--json"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    runtime = json.loads(result.stdout)["runtime"]
    assert runtime["omp_wait_policy"] == (user_value or "PASSIVE")
    assert runtime["cpus_available"] == len(os.sched_getaffinity(0))


def test_a_program_importing_the_package_keeps_its_environment():
    import os

    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    code = "import os, actionclip; print(os.environ.get('OMP_WAIT_POLICY'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.stdout.strip() == "None", result.stderr


def cli_process(*args, **popen_kwargs) -> subprocess.Popen:
    """The `actionclip` command running, its stdout and stderr piped to this process."""
    return subprocess.Popen(
        [sys.executable, "-m", "actionclip", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen_kwargs,
    )


def test_stream_into_a_reader_that_stops_after_one_line_ends_quietly(model_dir, video_dir):
    # `actionclip stream ... | head -n 1`: the reader closes the pipe while windows are still coming.
    process = cli_process(
        "stream", video_dir / "a.mp4", "--labels", ",".join(LABELS), "--model", model_dir,
        "--window", "0.2", "--stride", "0.04",
    )  # fmt: skip
    assert json.loads(process.stdout.readline())["label"] in LABELS
    process.stdout.close()
    assert process.wait(timeout=300) == 0
    assert process.stderr.read() == ""


def test_localize_into_a_reader_that_is_gone_ends_quietly(model_dir, video_dir):
    # The reader (`head -c 0`) closes the pipe before the result is written.
    process = cli_process(
        "localize", video_dir / "a.mp4", "--labels", ",".join(LABELS), "--model", model_dir, "--window", "0.4"
    )
    process.stdout.close()
    assert process.wait(timeout=300) == 0
    assert process.stderr.read() == ""


def test_a_model_saved_without_its_processor_gets_one_from_the_command_line(video_dir, tmp_path):
    folder = tmp_path / "no-processor"
    tiny_model(seed=4).save_pretrained(folder)
    video = video_dir / "a.mp4"

    refused = run_cli("classify", video, "--labels", "a,b", "--model", folder)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"actionclip classify: error: model directory {str(folder)!r} has no processor (processor_config.json): "
        f"write the default one beside the weights with `actionclip add-processor {folder}`"
    ]
    added = run_cli("add-processor", folder)
    assert added.returncode == 0, added.stderr
    assert (folder / "processor_config.json").is_file()
    classified = run_cli("classify", video, "--labels", "a,b", "--model", folder, "--json")
    assert classified.returncode == 0, classified.stderr
    assert {row["label"] for row in json.loads(classified.stdout)[0]["predictions"]} == {"a", "b"}
    again = run_cli("add-processor", folder)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"actionclip add-processor: error: {str(folder)!r} already has a processor: pass --overwrite to replace it"
    )
