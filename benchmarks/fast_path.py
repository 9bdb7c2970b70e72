"""The pipeline's inference fast path: warmed single-video latency and batch throughput per option, in one run.

Usage: ``python benchmarks/fast_path.py [--preset h200] [--device cuda] [--compile] [--labels 400]``

Saves a random-weight model of the preset's size (``model_throughput.build_ours``; ``h200``: ViT-B/16, 224 px,
8 frames) with its processor, writes one H.264 file (320x240, 10 s; ``pipeline_e2e.make_videos``) and measures:

- model only, ``get_video_features`` on a batch (``--batch``) of random pixel values: the patch embedding as the
  strided Conv2d against the matmul on unfolded patches (`modeling_actionclip.PatchEmbedding`), same weights,
  in the fastest dtype of the device (bf16 weights on CUDA, float32 on a CPU);
- ``pipeline(...)(file, candidate_labels)`` warmed single-video latency (median of ``--repeats`` calls after
  ``--warmup``; the label set's text embeddings are cached after the first call) for: float32 weights; ``dtype``
  bf16 weights (CUDA) ; and with ``--compile`` the bf16 pipeline with ``compile=True``;
- the same pipelines on ``--batch`` copies of the file at ``batch_size=--batch``: videos/s.

The pipeline's input side (decode + host preprocessing) is whatever the current branch does; the issue's goal
for the warmed single-video latency on an H200 is <= 25 ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import actionclip.process_policy  # noqa: E402,F401  (first: our OpenMP wait policy, set before torch loads)

# isort: split
import torch  # noqa: E402
from device_preprocess import median_ms  # noqa: E402
from torch import nn  # noqa: E402


def _median_ms(function, repeats: int, synchronize) -> float:
    return median_ms(function, repeats, per=1, synchronize=synchronize)


def main(argv=None) -> int:
    import model_throughput
    from pipeline_e2e import make_videos
    from transformers import pipeline

    import actionclip  # noqa: F401  (registers the task)
    from actionclip.processing_actionclip import ActionCLIPProcessor

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(model_throughput.PRESETS), default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also the compiled pipeline (compile=True)")
    parser.add_argument("--labels", type=int, default=None, help="candidate labels (default: the preset's)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the preset's)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "actionclip_bench_videos"))
    args = parser.parse_args(argv)
    preset = model_throughput.PRESETS[args.preset]
    device = torch.device(args.device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else None
    reduced = torch.bfloat16 if device.type == "cuda" else torch.float32
    batch = args.batch or preset.batch_size
    labels = model_throughput.label_names(args.labels or preset.num_classes)
    templates = list(model_throughput.ACTIONCLIP_TEMPLATES[: preset.num_templates])

    model = model_throughput.build_ours(preset, torch.device("cpu")).eval()
    lines = []

    # Model only: the patch embedding as a convolution and as a matmul, same weights.
    on_device = model.to(device=device, dtype=reduced)
    layer = on_device.vision_model.embeddings.patch_embedding
    pixel_values = torch.randn(
        batch, preset.num_frames, 3, preset.image_size, preset.image_size, device=device, dtype=reduced
    )
    model_rows = []
    for name, forward in (("Conv2d", nn.Conv2d.forward), ("matmul on unfolded patches", type(layer).forward)):
        layer.forward = types.MethodType(forward, layer)

        def run(encoder=on_device):
            with torch.inference_mode():
                encoder.get_video_features(pixel_values)

        for _ in range(args.warmup):
            run()
        model_rows.append((name, _median_ms(run, args.repeats, synchronize)))
    del layer.forward
    lines.append(f"model only, get_video_features, batch {batch}, {reduced}:")
    lines.append("")
    lines.append("| patch embedding | ms / batch | videos/s |")
    lines.append("| --- | --- | --- |")
    for name, ms in model_rows:
        lines.append(f"| {name} | {ms:.1f} | {batch * 1000 / ms:.0f} |")
    model = on_device.to(device="cpu", dtype=torch.float32)

    directory = Path(tempfile.mkdtemp(prefix="actionclip_fast_path_"))
    model.save_pretrained(directory)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(directory)
    del model, on_device
    video = str(make_videos(Path(args.cache), count=1)[0])

    variants = [("float32 weights", {})]
    if reduced != torch.float32:
        variants.append((f"dtype={str(reduced).removeprefix('torch.')} weights", {"dtype": reduced}))
    if args.compile:
        variants.append((f"{variants[-1][0]} + compile=True", {**variants[-1][1], "compile": True}))
    rows = []
    for name, options in variants:
        try:
            classifier = pipeline("zero-shot-video-classification", model=str(directory), device=device, **options)
            call = dict(candidate_labels=labels, hypothesis_template=templates)
            for _ in range(args.warmup):
                classifier(video, **call)
            latency = _median_ms(lambda c=classifier, k=call: c(video, **k), args.repeats, synchronize)
            # Batch throughput: warm the batch shape (a compiled model compiles once for it), then time one pass.
            classifier([video] * batch, batch_size=batch, **call)
            start = time.perf_counter()
            classifier([video] * batch, batch_size=batch, **call)
            rate = batch / (time.perf_counter() - start)
            rows.append((name, f"{latency:.1f}", f"{rate:.1f}"))
        except Exception as error:  # a variant that cannot run here says why; the others still run
            rows.append((name, f"failed: {type(error).__name__}: {str(error)[:120]}", ""))
        finally:
            classifier = None
    lines.append("")
    lines.append(
        f"pipeline on one 320x240 file, {len(labels)} labels x {len(templates)} templates (cached text), device "
        f"{device}; warmed single-video latency (median of {args.repeats}) and videos/s at batch_size={batch}:"
    )
    lines.append("")
    lines.append("| pipeline | single-video ms | videos/s |")
    lines.append("| --- | --- | --- |")
    lines.extend(f"| {name} | {latency} | {rate} |" for name, latency, rate in rows)
    print(f"fast path: preset {preset.name} ({preset.describe()})")
    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
