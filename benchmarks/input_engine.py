"""From files to scores: the pipeline fed by the input engine against one thread of our decoder, in one run.

Usage:
    python benchmarks/input_engine.py                      # this machine: near-free model, CPU
    python benchmarks/input_engine.py --preset h200        # ViT-B/16, 16 workers, bf16 on CUDA, 128 files

Writes 320x240 H.264 files (GOP 12) with our writer (cached in the work directory), and measures in the same run:

- ``decode``: one thread of our decoder (`video_io.sample_and_read`, 8 TSN frames at the stored size), files/s
  and process CPU time per video;
- ``pipeline``: ``pipeline(...)(files, batch_size=B, num_workers=W)`` from the files, videos/s, and host CPU time
  per video: the CPU the engine's worker processes report per video (decode, resize, crop; start-up excluded) plus
  this process's CPU while it receives the frames (the engine alone, with the pipeline's clip spec);
- ``model``: the model alone (``frames_to_pixel_values`` + ``get_video_features``) on prepared uint8 frames,
  videos/s.

Goals (issue 13, this 2-core machine, near-free model, 224 px): pipeline >= 1.5x the decode rate; host CPU per video
<= 1.2x the decode alone. On an H100/H200: pipeline >= half the model-only rate.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import actionclip.process_policy  # noqa: E402,F401  (our wait policy, before torch loads)

PRESETS = {
    # A near-free model that still takes 224 px frames: one tiny layer, 32 px patches.
    "cpu": dict(
        vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1, patch_size=32),
        text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1),
        projection_dim=32,
        files=24,
        batch_size=8,
        device="cpu",
        dtype="float32",
    ),
    # The configuration: ViT-B/16 at 224 px, random weights.
    "h200": dict(
        vision=dict(
            hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, patch_size=16
        ),
        text=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8),
        projection_dim=512,
        files=128,
        batch_size=32,
        device="cuda",
        dtype="bfloat16",
    ),
}


def write_files(
    folder: Path, count: int, num_frames: int = 60, height: int = 240, width: int = 320, block: int = 8
) -> list[str]:
    """``count`` H.264 files (GOP 12) of ``height`` x ``width``: random colour blocks of ``block`` pixels moving
    across the frame; cached in ``folder``."""
    import numpy as np

    from actionclip.data.video_writer import write_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / (
            f"video_{index:03d}.mp4" if (height, width, num_frames) == (240, 320, 60) else
            f"{width}x{height}_{num_frames}_{index}.mp4"
        )  # fmt: skip
        if not path.exists():
            rng = np.random.default_rng(index)
            blocks = rng.integers(0, 256, (height // block + 8, width // block + 12, 3), dtype=np.uint8)
            texture = np.kron(blocks, np.ones((block, block, 1), dtype=np.uint8))
            frames = np.stack(
                [texture[(t % 60) : (t % 60) + height, (2 * t) % 96 : (2 * t) % 96 + width] for t in range(num_frames)]
            )
            write_video(path, frames, gop_size=12)
        paths.append(str(path))
    return paths


def build_model(folder: Path, preset: dict) -> str:
    from actionclip import ActionCLIPConfig, ActionCLIPModel
    from actionclip.processing_actionclip import ActionCLIPProcessor

    config = ActionCLIPConfig(
        text_config=preset["text"],
        vision_config={**preset["vision"], "image_size": 224},
        projection_dim=preset["projection_dim"],
        num_frames=8,
        fusion="meanP",
    )
    model = ActionCLIPModel(config)
    model.save_pretrained(folder)
    ActionCLIPProcessor.from_model_config(config).save_pretrained(folder)
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--files", type=int, help="number of video files (default: the preset's)")
    parser.add_argument("--workers", type=int, help="decoding processes (default: the engine's default)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--device")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "actionclip_input_engine_bench"))
    args = parser.parse_args()
    preset = dict(PRESETS[args.preset])
    if args.preset == "h200" and args.workers is None:
        args.workers = 16
    import torch
    from transformers import pipeline

    import actionclip  # noqa: F401  (registers the task)
    from actionclip.sampling import TSNSampler
    from actionclip.video_clips import read_clip
    from actionclip.video_decode_pool import DecodePool, default_num_workers
    from actionclip.video_io import sample_and_read

    torch.manual_seed(0)
    count = args.files or preset["files"]
    batch_size = args.batch_size or preset["batch_size"]
    device = args.device or preset["device"]
    workers = default_num_workers() if args.workers is None else args.workers
    workdir = Path(args.workdir)
    files = write_files(workdir / "videos", count)
    model_dir = build_model(workdir / f"model_{args.preset}", preset)
    dtype = getattr(torch, preset["dtype"])
    classifier = pipeline("zero-shot-video-classification", model=model_dir, device=device, dtype=dtype)
    labels = [f"action {i}" for i in range(10)]

    # One thread of our decoder at the stored size.
    sampler = TSNSampler(8)
    sample_and_read(files[0], sampler)
    started, cpu = time.perf_counter(), time.process_time()
    for path in files:
        sample_and_read(path, sampler, threads=1)
    decode_wall, decode_cpu = time.perf_counter() - started, time.process_time() - cpu

    # The model alone on prepared frames (frames_to_pixel_values + get_video_features), on the model's device.
    frames = classifier.preprocess(files[0])["frames"].expand(batch_size, -1, -1, -1, -1, -1).flatten(0, 1)
    frames = frames.contiguous().to(device)
    video_processor = classifier.processor.video_processor

    def model_step():
        pixel_values = video_processor.frames_to_pixel_values(frames, device=device)
        out = classifier.backend.video_features(pixel_values)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return out

    for _ in range(2):
        model_step()
    steps = max(1, count // batch_size)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        model_step()
    model_wall, model_cpu = time.perf_counter() - started, time.process_time() - cpu
    model_rate = steps * batch_size / model_wall
    model_cpu_per_video = model_cpu / (steps * batch_size)

    # The pipeline from the files (a warm-up call first: the fork server and the text embeddings).
    classifier(files[:2], candidate_labels=labels, batch_size=batch_size, num_workers=workers)
    started = time.perf_counter()
    results = classifier(files, candidate_labels=labels, batch_size=batch_size, num_workers=workers)
    pipeline_wall = time.perf_counter() - started
    assert len(results) == count and all(results)

    # Host CPU of the same input path (the pipeline's clip spec through the engine's workers): CPU the workers
    # report per video (their start-up excluded) plus this process's CPU while it receives and batches the frames.
    spec = classifier.clip_spec()
    # Each clip is dropped once taken, as the pipeline drops it once batched.
    with DecodePool(workers) as pool:
        own = time.process_time()
        started = time.perf_counter()
        received = sum(isinstance(frames, torch.Tensor) for frames in pool.imap((path, spec, None) for path in files))
        engine_wall = time.perf_counter() - started
        parent_cpu = time.process_time() - own
        host_cpu = parent_cpu + pool.worker_cpu_seconds
    assert received == count

    # The same input path in this process, no workers: what the engine's work costs before any process boundary.
    cpu = time.process_time()
    for path in files:
        read_clip(path, spec)
    in_process_cpu = (time.process_time() - cpu) / count

    # Start-up: first result of a fresh pool of `workers` processes, per start method (fork server already up).
    startup = {}
    for method in ("forkserver", "spawn"):
        started = time.perf_counter()
        with DecodePool(workers, start_method=method) as pool:
            spec = classifier.clip_spec()
            list(pool.imap((path, spec, None) for path in files[: max(1, workers)]))
        startup[method] = time.perf_counter() - started

    decode_rate = count / decode_wall
    pipeline_rate = count / pipeline_wall
    decode_cpu_per_video = decode_cpu / count
    host_per_video = host_cpu / count
    print(
        f"# {count} files 320x240 H.264 GOP 12, 8 TSN frames, 224 px, batch {batch_size}, device {device}, "
        f"preset {args.preset}, {os.cpu_count()} CPUs (affinity {len(os.sched_getaffinity(0))}), "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| what | videos/s | CPU ms / video | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| our decoder, 1 thread (`sample_and_read`, stored size) | {decode_rate:.1f} | {1000 * decode_cpu_per_video:.1f} | 1.00 |"
    )
    print(
        f"| pipeline from files, {workers} worker processes | {pipeline_rate:.1f} | {1000 * host_per_video:.1f} (host, model excluded) | "
        f"{pipeline_rate / decode_rate:.2f}x rate, {host_per_video / decode_cpu_per_video:.2f}x CPU |"
    )
    print(
        f"| input engine alone (the pipeline's spec, no model) | {count / engine_wall:.1f} | "
        f"{1000 * (host_cpu - parent_cpu) / count:.1f} workers + {1000 * parent_cpu / count:.1f} this process | |"
    )
    print(
        f"| the engine's `read_clip` in this process (no workers) | | {1000 * in_process_cpu:.1f} | "
        f"{in_process_cpu / decode_cpu_per_video:.2f}x CPU |"
    )
    print(
        f"| model only (frames_to_pixel_values + get_video_features) | {model_rate:.1f} | {1000 * model_cpu_per_video:.1f} | "
        f"pipeline = {pipeline_rate / model_rate:.2f}x model |"
    )
    print(
        f"# start-up of {workers} workers + their first video each: forkserver {startup['forkserver']:.2f} s, "
        f"spawn {startup['spawn']:.2f} s"
    )


if __name__ == "__main__":
    main()
