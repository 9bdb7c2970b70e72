"""An ONNX export classifies with onnxruntime and numpy alone: ``actionclip classify --model EXPORT_DIR`` imports
neither torch nor transformers, and scores as the PyTorch pipeline on the model the export came from."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import VISION, tiny_model
from transformers import pipeline
from video_factory import write_test_video

import actionclip  # noqa: F401  (registers the task)
from actionclip.onnx.export import export_onnx
from actionclip.processing_actionclip import ActionCLIPProcessor

REPO_ROOT = Path(__file__).resolve().parents[1]
LABELS = ["juggling balls", "playing guitar", "tai chi", "abseiling", "knitting"]
# Without torch, a command that imports it anyway would be caught by these names in `python -X importtime`'s output.
HEAVY_MODULES = ("torch", "transformers", "torchvision", "torchcodec")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """A conv1d model of 6 frames (a 40-pixel crop of a 45-pixel resize), its export, and a folder of two videos of
    other sizes and lengths."""
    folder = tmp_path_factory.mktemp("onnx_runtime")
    model = tiny_model(seed=7, num_frames=6, fusion="conv1d", vision_config={**VISION, "image_size": 40})
    with torch.no_grad():  # scores far from uniform, so that a mix-up of labels or views shows
        model.logit_scale.fill_(np.log(50.0))
    model.save_pretrained(folder / "model")
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(folder / "model")
    export_onnx(folder / "model", folder / "onnx")
    videos = folder / "videos"
    videos.mkdir()
    write_test_video(videos / "a.mp4", num_frames=30, height=64, width=80, seed=1)
    write_test_video(videos / "b.mp4", num_frames=17, height=72, width=56, seed=2)
    return folder / "model", folder / "onnx", videos


def run_command(arguments: list[str]) -> tuple[list, str]:
    """``actionclip ARGUMENTS`` through its entry point in a fresh interpreter under ``-X importtime``: the printed
    JSON, and the modules it imported (every process's, workers included)."""
    entry = "import sys; from actionclip.commands import main; sys.exit(main())"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", entry, *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    return json.loads(result.stdout), imported


def assert_same_predictions(got: list[dict], expected: list[dict]) -> None:
    assert [item["label"] for item in got] == [item["label"] for item in expected]
    assert [item["score"] for item in got] == pytest.approx([item["score"] for item in expected], abs=1e-4)


def test_classify_on_an_export_imports_no_torch_and_scores_as_the_pytorch_pipeline(dirs):
    model_dir, onnx_dir, videos = dirs
    results, imported = run_command(
        ["classify", str(videos), "--labels", ",".join(LABELS), "--model", str(onnx_dir)]
        + ["--num-clips", "2", "--num-crops", "3", "--top-k", "4", "--json"]
    )
    assert "actionclip.onnx.runtime" in imported and "onnxruntime" in imported
    assert [name for name in imported if name.split(".")[0] in HEAVY_MODULES] == []

    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    paths = [str(videos / "a.mp4"), str(videos / "b.mp4")]
    expected = classifier(paths, candidate_labels=LABELS, num_clips=2, num_crops=3, top_k=4)
    assert [result["video"] for result in results] == paths
    for result, predictions in zip(results, expected):
        assert_same_predictions(result["predictions"], predictions)


def test_descriptions_templates_and_embedding_ensemble_on_an_export_score_as_pytorch(dirs, tmp_path):
    model_dir, onnx_dir, videos = dirs
    descriptions = {
        "juggling balls": ["a person throws and catches several balls", "balls fly in arcs above the hands"],
        "tai chi": ["slow flowing movements of the whole body"],
        "knitting": [],
    }
    (tmp_path / "descriptions.json").write_text(json.dumps(descriptions))
    (tmp_path / "templates.txt").write_text("a video of {}\n{}, in a video\nsomeone doing {} outdoors\n")
    video = str(videos / "b.mp4")
    options = ["--ensemble", "embedding", "--logit-scale", "30", "--num-frames", "4"]
    results, imported = run_command(
        ["classify", video, "--descriptions", str(tmp_path / "descriptions.json"), "--model", str(onnx_dir)]
        + ["--templates", str(tmp_path / "templates.txt"), *options, "--json"]
    )
    assert [name for name in imported if name.split(".")[0] in HEAVY_MODULES] == []

    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    expected = classifier(
        video,
        candidate_labels=descriptions,
        hypothesis_template=str(tmp_path / "templates.txt"),
        ensemble="embedding",
        logit_scale=30,
        num_frames=4,
    )
    assert_same_predictions(results[0]["predictions"], expected)


def test_numpy_normalisation_equals_the_video_processor_bit_for_bit():
    from actionclip.video_common import normalize_frames
    from actionclip.video_processing_actionclip import ActionCLIPVideoProcessor

    video_processor = ActionCLIPVideoProcessor(crop_size=24, image_mean=[0.2, 0.5, 0.7], image_std=[0.3, 0.1, 0.25])
    frames = np.random.default_rng(3).integers(0, 256, size=(2, 5, 24, 24, 3), dtype=np.uint8)
    settings = video_processor.evaluation_settings()
    got = normalize_frames(frames, settings["image_mean"], settings["image_std"], settings["rescale_factor"])
    expected = video_processor.frames_to_pixel_values(torch.from_numpy(frames)).numpy()
    assert got.shape == (2, 5, 3, 24, 24) and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
