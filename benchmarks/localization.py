"""Temporal localisation: the cached-frame path against encoding every window, measured in one run.

Usage: ``python benchmarks/localization.py [--seconds 60] [--window 4] [--stride 1] [--repeats 2]``

A real H.264 video of ``--seconds`` seconds and a random-weight model of the ``cpu`` preset of
``model_throughput.py`` (ViT 256 x 4, 112 px, 8 frames, ``transf`` fusion, 6 layers) through
``ZeroShotVideoClassificationPipeline.localize``:

- **cached frames**: every distinct frame of the time grid through the vision tower once, the fusion per window;
- **every window** (the baseline, ``cache_frames=False``; what Shift and Joint models always do): each window's
  frames through the whole model. Frames are decoded once in both, so the ratio is the model work saved.

Prints a markdown table and the ratio (the goal at stride = window / 4: >= 3x).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import model_throughput  # noqa: E402

from actionclip.apps.localization import localize  # noqa: E402
from actionclip.data.video_writer import write_video  # noqa: E402
from actionclip.pipeline_zero_shot_video_classification import ZeroShotVideoClassificationPipeline  # noqa: E402
from actionclip.processing_actionclip import ActionCLIPProcessor  # noqa: E402

LABELS = [f"action number {i}" for i in range(20)]


def moving_video(path: Path, seconds: float, fps: int = 25, size: tuple[int, int] = (96, 128)) -> Path:
    rng = np.random.default_rng(0)
    height, width = size
    texture = rng.integers(0, 256, (height + 64, width + 64, 3), dtype=np.uint8)
    frames = (
        texture[(t // 4) % 64 : (t // 4) % 64 + height, t % 64 : t % 64 + width] for t in range(int(seconds * fps))
    )
    write_video(path, frames, fps=fps)
    return path


def run(args) -> str:
    torch.set_num_threads(args.threads)
    preset = model_throughput.PRESETS[args.preset]
    model = model_throughput.build_ours(preset, torch.device("cpu"))
    classifier = ZeroShotVideoClassificationPipeline(
        model=model, processor=ActionCLIPProcessor.from_model_config(model.config), device="cpu"
    )
    with tempfile.TemporaryDirectory() as folder:
        video = moving_video(Path(folder) / "long.mp4", args.seconds)
        options = dict(window=args.window, stride=args.stride, hypothesis_template=["a video of {}", "{}"])
        localize(classifier, video, LABELS, **options)  # warm-up: text cache, allocator, decoder
        times = {True: [], False: []}
        results = {}
        for _ in range(args.repeats):
            for cached in (False, True):
                start = time.perf_counter()
                results[cached] = localize(classifier, video, LABELS, cache_frames=cached, **options)
                times[cached].append(time.perf_counter() - start)
    best = {cached: min(values) for cached, values in times.items()}
    difference = float(np.abs(results[True].scores - results[False].scores).max())
    grid = results[True].grid
    lines = [
        f"video {args.seconds:g} s at 25 fps (96 x 128), window {grid.window:g} s, stride {grid.stride:g} s: "
        f"{grid.num_windows} windows of {preset.num_frames} frames; ViT {preset.vision_width} x {preset.vision_layers}, "
        f"{preset.image_size} px, fusion {preset.fusion} ({preset.fusion_layers} layers); {len(LABELS)} labels x 2 "
        f"templates; {args.threads} thread(s); best of {args.repeats}",
        "",
        "| path | frames through the vision tower | seconds | windows/s |",
        "| --- | --- | --- | --- |",
    ]
    for cached, name in ((False, "every window (baseline)"), (True, "cached frames")):
        lines.append(
            f"| {name} | {results[cached].frames_encoded} | {best[cached]:.3f} | {grid.num_windows / best[cached]:.1f} |"
        )
    lines += ["", f"speed-up: {best[False] / best[True]:.2f}x; max |score difference| {difference:.2e}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=4.0)
    parser.add_argument("--stride", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--preset", choices=sorted(model_throughput.PRESETS), default="cpu", help="model size")
    print(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
