"""A training step fed from video files against the same step on synthetic inputs, in one run.

Usage: ``python benchmarks/training_step.py [--preset cpu|h200|tiny] [--device cuda] [--workers 16]``

One model (``model_throughput.build_ours``: the preset's towers, random weights), one step function (forward with
the KL loss, backward, AdamW; bf16 autocast on CUDA), three ways to feed it:

- ``synthetic``: random ``pixel_values`` and prompts already on the device (the model's own rate);
- ``files, device transforms``: H.264 files (320x240, 10 s, GOP 12; ``pipeline_e2e.make_videos``) through
  `VideoClassificationDataset(transform_on_device=True)` in ``--workers`` DataLoader processes (decode + TSN
  sampling + a uint8 multi-scale crop), `ActionCLIPCollator` (padded uint8 batch, pinned on CUDA), then on the
  device `ActionCLIPTrainer._prepare_inputs`' work: `augment_frames` (crop resize, flip, colour jitter, grayscale,
  normalisation) in the model's dtype;
- ``files, CPU transforms``: the same files with today's float32 augmentation in the workers.

Prints steps/s and videos/s per feed and the ratio of each file-fed rate to the synthetic one (the issue's goal on
an H200 with 16 cores: >= 0.8 for the engine's feed). Worker start-up and the first batches are excluded
(``--warmup`` steps); the DataLoader cycles over the files for as many steps as asked.
"""

from __future__ import annotations

import argparse
import itertools
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

from actionclip.data.clip_loader import VideoRecord  # noqa: E402
from actionclip.data.collator import ActionCLIPCollator  # noqa: E402
from actionclip.data.datasets import VideoClassificationDataset  # noqa: E402
from actionclip.video_processing_actionclip import ActionCLIPVideoProcessor  # noqa: E402


def _step_function(model, device: torch.device):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=0.2)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else None

    def step(pixel_values, input_ids, attention_mask, labels):
        if autocast is not None:
            with autocast:
                loss = model(pixel_values, input_ids, attention_mask, labels=labels).loss
        else:
            loss = model(pixel_values, input_ids, attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def _timed(batches, to_inputs, step, warmup: int, steps: int, synchronize) -> float:
    """Seconds per step over ``steps`` steps after ``warmup`` (batches come from ``batches``)."""
    iterator = iter(batches)
    for _ in range(warmup):
        step(*to_inputs(next(iterator)))
    if synchronize:
        synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(*to_inputs(next(iterator)))
    float(loss)  # waits for the last step
    return (time.perf_counter() - start) / steps


def main(argv=None) -> int:
    import model_throughput
    from pipeline_e2e import make_videos

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(model_throughput.PRESETS), default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--videos", type=int, default=8, help="distinct files (the loader cycles them)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads of the main process")
    parser.add_argument("--skip-cpu-transforms", action="store_true", help="only the synthetic and engine feeds")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "actionclip_bench_videos"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    preset = model_throughput.PRESETS[args.preset]
    device = torch.device(args.device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else None
    model = model_throughput.build_ours(preset, device).train()
    step = _step_function(model, device)
    inputs = model_throughput.make_inputs(preset, device)
    size, frames, batch_size = preset.image_size, preset.num_frames, preset.batch_size

    rows = []
    synthetic = itertools.repeat((inputs.pixel_values, inputs.train_ids, inputs.train_mask, inputs.labels))
    seconds = _timed(synthetic, lambda batch: batch, step, args.warmup, args.steps, synchronize)
    rows.append(("synthetic (inputs on the device)", seconds))

    paths = make_videos(Path(args.cache), count=args.videos)
    labels = [f"action {i}" for i in range(max(2, args.videos))]
    records = [VideoRecord(str(path), i % len(labels)) for i, path in enumerate(paths)]
    processor = ActionCLIPVideoProcessor(crop_size=size)
    collator = ActionCLIPCollator(labels)
    dtype = next(model.parameters()).dtype
    feeds = [("files, device transforms", True)]
    if not args.skip_cpu_transforms:
        feeds.append(("files, CPU transforms", False))
    for name, on_device in feeds:
        dataset = VideoClassificationDataset(
            records * (1 + (batch_size * (args.warmup + args.steps)) // len(records)),
            labels,
            num_frames=frames,
            training=True,
            video_processor=processor,
            seed=0,
            transform_on_device=on_device,
        )
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=args.workers,
            collate_fn=collator,
            pin_memory=device.type == "cuda",
            prefetch_factor=4 if args.workers else None,
        )

        def to_inputs(batch):
            moved = {
                key: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
                for key, value in batch.items()
            }
            if "frames" in moved:  # what ActionCLIPTrainer._prepare_inputs does
                pixel_values = processor.augment_frames(moved["frames"], batch["augmentation"], dtype=dtype)
            else:
                pixel_values = moved["pixel_values"]
            return pixel_values, moved["input_ids"], moved["attention_mask"], moved["labels"]

        rows.append((name, _timed(loader, to_inputs, step, args.warmup, args.steps, synchronize)))

    print(
        f"training step: preset {preset.name} ({preset.describe()}); device {device}; {args.workers} DataLoader "
        f"workers; files 320x240 H.264; {args.warmup} warm-up + {args.steps} timed steps"
    )
    print()
    print("| feed | steps/s | videos/s | rate / synthetic |")
    print("| --- | --- | --- | --- |")
    base = rows[0][1]
    for name, seconds in rows:
        print(f"| {name} | {1 / seconds:.2f} | {batch_size / seconds:.1f} | {base / seconds:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
