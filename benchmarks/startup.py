"""Start-up time of the `actionclip` command against the interpreter's own, measured in the same run.

Usage: ``python benchmarks/startup.py [--repeats 5] [--no-classify] [--model DIR --export DIR] [--video FILE]``

Times, as fresh processes (the median of ``--repeats`` runs after one warm-up), ``python -c pass`` (the baseline),
``python -m actionclip --help``, an argument error (``classify x.mp4 --top-k 0``, exit 2), ``import actionclip``,
for scale ``import torch, transformers``, and one ``actionclip classify`` of a 1 s clip through a PyTorch model and
through its ONNX export (whole processes: start-up, loading, decoding, the model, printing). Prints a markdown table
with seconds and the ratio to the baseline. The goals: ``--help`` and an argument error in about a second, well under
``import torch, transformers`` (issue 21); ``classify`` through an export without torch, so well under the PyTorch
one (issue 28). The first time includes reading the files from disk, so run it twice.

Without ``--model`` / ``--export``, a small model (ViT 128 x 2, 32 px, text 64 x 2, meanP) is saved and exported in
a temporary folder first (that takes torch, untimed); the clip is 1 s of 25 frames of 320 x 240 (``--video``
replaces it). The model's size hardly matters here: start-up is what is measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "python -c pass (baseline)": ["-c", "pass"],
    "actionclip --help": ["-m", "actionclip", "--help"],
    "actionclip classify x.mp4 --top-k 0 (argument error)": [
        "-m",
        "actionclip",
        "classify",
        "x.mp4",
        "--labels",
        "a,b",
        "--model",
        "m",
        "--top-k",
        "0",
    ],
    "import actionclip": ["-c", "import actionclip"],
    "import torch, transformers": ["-c", "import torch, transformers; transformers.PreTrainedModel"],
}


LABELS = "juggling balls,playing guitar,tai chi,abseiling,knitting"


def time_process(arguments: list[str], repeats: int, expect_success: bool = False) -> float:
    """Median wall time in seconds of ``python ARGUMENTS`` in a fresh process (one warm-up run first)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    times = []
    for run in range(repeats + 1):
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, *arguments], env=env, capture_output=True, text=True, cwd=REPO_ROOT, check=False
        )
        if expect_success and result.returncode != 0:
            raise SystemExit(f"python {' '.join(arguments)} failed:\n{result.stderr[-2000:]}")
        if run:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_model_and_export(folder: Path) -> tuple[Path, Path]:
    """A small saved model with its processor and its ONNX export, in ``folder`` (imports torch)."""
    from actionclip import ActionCLIPConfig, ActionCLIPModel, ActionCLIPProcessor
    from actionclip.onnx.export import export_onnx

    text = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=1)
    vision = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=2)
    config = ActionCLIPConfig(
        text_config=text,
        vision_config={**vision, "patch_size": 8, "image_size": 32},
        projection_dim=64,
        num_frames=8,
        fusion="meanP",
    )
    model = ActionCLIPModel(config).eval()
    model.save_pretrained(folder / "model")
    ActionCLIPProcessor.from_model_config(config).save_pretrained(folder / "model")
    export_onnx(folder / "model", folder / "onnx")
    return folder / "model", folder / "onnx"


def make_clip(path: Path) -> Path:
    """1 s of random 320 x 240 frames at 25 fps (H.264)."""
    import numpy as np

    from actionclip.data.video_writer import write_video

    rng = np.random.default_rng(0)
    write_video(path, rng.integers(0, 256, size=(25, 240, 320, 3), dtype=np.uint8), fps=25.0)
    return path


def classify_arguments(model: Path, video: Path) -> list[str]:
    # Absolute: the processes run in the repository root.
    video, model = str(Path(video).resolve()), str(Path(model).resolve())
    return ["-m", "actionclip", "classify", video, "--labels", LABELS, "--model", model, "--json"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (after one warm-up)")
    parser.add_argument("--no-classify", action="store_true", help="skip the two classify cases")
    parser.add_argument("--model", type=Path, help="a PyTorch model directory (with --export: its ONNX export)")
    parser.add_argument("--export", type=Path, help="the ONNX export of --model")
    parser.add_argument("--video", type=Path, help="the clip to classify (default: 1 s of 320 x 240)")
    args = parser.parse_args(argv)
    if (args.model is None) != (args.export is None):
        parser.error("give --model and --export together")
    repeats = max(1, args.repeats)
    results = {name: time_process(arguments, repeats) for name, arguments in CASES.items()}
    if not args.no_classify:
        with tempfile.TemporaryDirectory(prefix="actionclip-startup-") as folder:
            model, export = (args.model, args.export) if args.model else make_model_and_export(Path(folder))
            video = args.video or make_clip(Path(folder) / "clip.mp4")
            for name, directory in (("PyTorch model", model), ("ONNX export", export)):
                results[f"actionclip classify (1 s clip, {name})"] = time_process(
                    classify_arguments(directory, video), repeats, expect_success=True
                )
    baseline = results["python -c pass (baseline)"]
    print(
        f"start-up, median of {args.repeats} fresh processes; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}"
    )
    print()
    print("| command | seconds | x baseline |")
    print("| --- | --- | --- |")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.2f} | {seconds / baseline:.1f} |")
    if not args.no_classify:
        torch_seconds = results["actionclip classify (1 s clip, PyTorch model)"]
        onnx_seconds = results["actionclip classify (1 s clip, ONNX export)"]
        print()
        print(f"classify through the export: {torch_seconds / onnx_seconds:.2f}x faster than through PyTorch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
