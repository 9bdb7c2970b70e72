"""Host CPU time per video: today's float32 CPU transforms against the uint8 hand-off + device transforms.

Usage: ``python benchmarks/device_preprocess.py [--device cuda] [--crop 224] [--frames 8] [--batch 32]``

Decodes a few real H.264 files (320x240, cached; ``pipeline_e2e.make_videos``) once with the TSN sampler, then
times, per video, in one process:

- evaluation, today: ``ActionCLIPVideoProcessor(frames)`` on the CPU (bicubic resize of the shorter side to 256,
  centre crop 224, rescale + normalise, float32): all of it host work;
- evaluation, hand-off: the host's share once the decoder returns frames at the resize target (the input engine's
  libswscale scaling; here those frames are prepared beforehand and not timed): the centre crop as a slice and
  the copy into one uint8 batch (pinned on CUDA); then, on ``--device``, ``frames_to_pixel_values`` (timed
  separately, synchronised, per video of a ``--batch`` batch);
- training, today: ``ActionCLIPVideoProcessor(frames, training=True)`` per clip (multi-scale crop, bilinear
  resize, flip, colour jitter, grayscale, normalise; float32 on the CPU, in the DataLoader workers);
- training, hand-off: ``crop_for_augmentation`` (the same draws; a uint8 slice) and the padded collation on the
  host; ``augment_frames`` on ``--device``.

Prints a markdown table (ms per video: median of ``--repeats``) and the host ratios. On a CPU ``--device cpu``
the "device" columns are CPU time too: read the host columns.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import actionclip.process_policy  # noqa: E402,F401  (first: our OpenMP wait policy, set before torch loads)

# isort: split
import torch  # noqa: E402

from actionclip.device_transforms import pack_augmentations  # noqa: E402
from actionclip.sampling import TSNSampler  # noqa: E402
from actionclip.video_io import sample_and_read  # noqa: E402
from actionclip.video_processing_actionclip import ActionCLIPVideoProcessor  # noqa: E402


def median_ms(function, repeats: int, per: int, synchronize=None) -> float:
    """Median wall time of ``function`` over ``repeats`` calls, in ms per ``per`` items (``synchronize`` waits for
    the device)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        if synchronize is not None:
            synchronize()
        times.append((time.perf_counter() - start) * 1000 / per)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--videos", type=int, default=4, help="distinct files decoded (the batch cycles them)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the host")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "actionclip_bench_videos"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else None
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32

    from pipeline_e2e import make_videos

    processor = ActionCLIPVideoProcessor(crop_size=args.crop)
    paths = make_videos(Path(args.cache), count=args.videos)
    sampler = TSNSampler(args.frames, mode="eval")
    decoded = [torch.from_numpy(sample_and_read(str(path), sampler).frames) for path in paths]
    clips = [decoded[i % len(decoded)] for i in range(args.batch)]
    # What the input engine's decoder hands over: frames scaled to the evaluation's resize target (not cropped).
    resize_only = ActionCLIPVideoProcessor(crop_size=args.crop, do_center_crop=False)
    scaled = [resize_only.evaluation_frames(clip) for clip in decoded]
    scaled = [scaled[i % len(scaled)] for i in range(args.batch)]
    pin = device.type == "cuda"

    def eval_today():
        for clip in clips:
            processor(clip)

    def eval_host():
        crop = args.crop
        buffer = torch.empty((args.batch, args.frames, crop, crop, 3), dtype=torch.uint8, pin_memory=pin)
        for row, frames in enumerate(scaled):
            top, left = (frames.shape[1] - crop) // 2, (frames.shape[2] - crop) // 2
            buffer[row] = frames[:, top : top + crop, left : left + crop]
        return buffer

    handed_over = eval_host()

    def eval_device():
        processor.frames_to_pixel_values(handed_over, device=device, dtype=dtype)

    def train_today():
        for seed, clip in enumerate(clips):
            processor(clip, training=True, seed=seed)

    def train_host():
        crops, draws = [], []
        for seed, clip in enumerate(clips):
            crop, augmentation = processor.crop_for_augmentation(clip, torch.Generator().manual_seed(seed))
            crops.append(crop)
            draws.append(augmentation)
        height, width = max(c.shape[1] for c in crops), max(c.shape[2] for c in crops)
        batch = torch.zeros((len(crops), args.frames, height, width, 3), dtype=torch.uint8, pin_memory=pin)
        for row, crop in enumerate(crops):
            batch[row, :, : crop.shape[1], : crop.shape[2]] = crop
        return batch, pack_augmentations(draws)

    train_batch, train_draws = train_host()

    def train_device():
        processor.augment_frames(train_batch, train_draws, device=device, dtype=dtype)

    # Warm-up (allocator, kernels, cached resize matrices).
    eval_device()
    train_device()
    if synchronize:
        synchronize()
    per = args.batch
    rows = [
        ("evaluation", median_ms(eval_today, args.repeats, per), median_ms(eval_host, args.repeats, per),
         median_ms(eval_device, args.repeats, per, synchronize)),
        ("training", median_ms(train_today, args.repeats, per), median_ms(train_host, args.repeats, per),
         median_ms(train_device, args.repeats, per, synchronize)),
    ]  # fmt: skip
    print(
        f"device transforms: {args.batch} videos x {args.frames} frames of 320x240 -> {args.crop} px; host threads "
        f"{args.threads}; device {device} ({dtype}); median of {args.repeats}"
    )
    print()
    print("| transform | today, host ms/video | hand-off, host ms/video | device ms/video | host: today / hand-off |")
    print("| --- | --- | --- | --- | --- |")
    for name, today, host, on_device in rows:
        print(f"| {name} | {today:.2f} | {host:.3f} | {on_device:.3f} | {today / host:.0f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
