"""ActionCLIP performance benchmarks: one table, ours against X-CLIP and against our own eager float32 path.

Usage::

    python benchmarks/run.py --preset cpu                    # a few minutes on a small CPU
    python benchmarks/run.py --preset h200 --compile         # the issue's configuration on one GPU
    python benchmarks/run.py --preset cpu --with-pipeline --with-decode

``--with-pipeline`` adds the end-to-end pipeline benchmark (files on disk -> labels, where the time goes, ours
against X-CLIP), ``--with-decode`` the decoder comparison of ``benchmarks/decode.py`` (run in its own process,
which pins itself to one core). See ``benchmarks/README.md`` for what each number means.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import actionclip.process_policy  # noqa: F401  (first: our OpenMP wait policy, set before torch loads)

# isort: split
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import model_throughput  # noqa: E402

NOTES = """\
- zero-shot, ours: `get_video_features` (vision tower on every frame, fusion) + one matmul against the cached, \
L2-normalised embeddings of all {prompts} prompts ({classes} classes x {templates} templates, computed once \
per label set, not timed) + the template ensemble.
- zero-shot, X-CLIP: its full `forward` with the {classes} label names' `input_ids` (one text per class, its \
own protocol). Its text embeddings depend on the video (the prompt generator attends to the video's patch \
features) and its `forward` takes no precomputed text, so its text tower runs on every batch.
- zero-shot, X-CLIP text-cached: X-CLIP's own modules with the text tower's output computed once (vision + \
cross-frame messages, MIT, prompt generator over the {classes} texts): the fastest X-CLIP can score a fixed \
label set; composed by this benchmark from its forward (the smoke test checks that it equals the forward).
- train: forward (both towers, one prompt per video, fusion) + the model's own loss (ours: symmetric KL with \
label-equality targets; X-CLIP: its contrastive cross-entropy) + backward + AdamW step (fused where available).
- variants: eager fp32 = `attn_implementation="eager"`, float32 (the baseline of the "vs" column, per task); \
sdpa = `attn_implementation="sdpa"`; bf16 = `torch.autocast(dtype=torch.bfloat16)` around the forward; \
compile = `torch.compile` of `get_video_features` (zero-shot) or of the model (train), compile time excluded.
- GFLOP/video: counted once per row group with `torch.utils.flop_counter.FlopCounterMode` on an eager float32 \
step (matmul, convolution, attention; forward and backward for train), the same for every variant. \
MFU = achieved FLOP/s over the device's dense bf16 peak ({peak_source})."""

CPU_NOTES = """\
- CPU: each time is the median over {iters} interleaved rounds (one step of every variant per round), after a \
first step (compiling / counting FLOPs) and {warmup} warm-up step(s), the last of which measures peak memory: the \
growth of the process's resident set during that steady-state step (activations and temporaries; weights and \
optimizer state already resident)."""

CUDA_NOTES = """\
- CUDA: each time is {iters} back-to-back steps after {warmup} warm-up steps and one step to compile / count \
FLOPs, one synchronisation at the end. Peak memory: `torch.cuda.max_memory_allocated` over those steps \
(weights, gradients, optimizer state and activations of that variant alone)."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_preset = "h200" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--preset", choices=sorted(model_throughput.PRESETS), default=default_preset)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    parser.add_argument("--num-classes", type=int, help="override the preset's number of classes")
    parser.add_argument("--iters", type=int, help="timed steps (CUDA) or rounds (CPU)")
    parser.add_argument("--warmup", type=int, help="warm-up steps")
    parser.add_argument("--joint", action="store_true", help="ours with the joint prompt (space-time attention)")
    parser.add_argument("--compile", action="store_true", help="add the torch.compile variant of ours")
    parser.add_argument("--tasks", default="zero-shot,train", help="comma-separated subset of zero-shot,train")
    parser.add_argument("--models", help='comma-separated subset of "ours,X-CLIP,X-CLIP text-cached"')
    parser.add_argument("--check-syncs", action="store_true", help="CUDA: count synchronising calls per step")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak of the device, for MFU")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    parser.add_argument("--with-pipeline", action="store_true", help="add the end-to-end pipeline benchmark")
    parser.add_argument("--with-decode", action="store_true", help="add benchmarks/decode.py's table")
    parser.add_argument("--decode-repeats", type=int, default=3)
    parser.add_argument("--skip-model", action="store_true", help="only the pipeline / decode parts")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def model_section(args, device: torch.device) -> str:
    preset = model_throughput.preset_from_args(
        args.preset,
        batch_size=args.batch_size,
        num_classes=args.num_classes,
        iters=args.iters,
        warmup=args.warmup,
        joint=args.joint or None,
    )
    tasks = {task.strip() for task in args.tasks.split(",") if task.strip()}
    models = {model.strip() for model in args.models.split(",") if model.strip()} if args.models else None
    started = time.perf_counter()
    rows = model_throughput.run_all(
        preset, device, compile_ours=args.compile, check_syncs=args.check_syncs, only=tasks, models=models, log=log
    )
    peak, peak_source = model_throughput.peak_flops(device, args.peak_tflops)
    notes = NOTES.format(
        prompts=preset.num_classes * preset.num_templates,
        classes=preset.num_classes,
        templates=preset.num_templates,
        peak_source=peak_source,
    )
    timing = (CUDA_NOTES if device.type == "cuda" else CPU_NOTES).format(
        iters=preset.iters, warmup=preset.warmup if device.type == "cuda" else max(preset.warmup, 1)
    )
    return "\n".join(
        [
            f"## Model throughput (preset `{preset.name}`)",
            "",
            f"{model_throughput.environment_line(device)}",
            f"{preset.describe()}",
            "",
            model_throughput.format_table(rows, device, peak),
            "",
            notes,
            timing,
            f"- model section: {time.perf_counter() - started:.0f} s wall time",
        ]
    )


def decode_section(args) -> str:
    command = [sys.executable, str(HERE / "decode.py"), "--repeats", str(args.decode_repeats)]
    log("# decode benchmark: " + " ".join(command[1:]))
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return f"## Decode\n\nbenchmarks/decode.py failed (exit {result.returncode}):\n\n{result.stderr[-2000:]}"
    return "## Decode (benchmarks/decode.py)\n\n" + result.stdout.strip()


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sections = [f"# ActionCLIP benchmarks ({time.strftime('%Y-%m-%d')})"]
    if not args.skip_model:
        sections.append(model_section(args, device))
    if args.with_pipeline:
        import pipeline_e2e

        preset = "tiny" if args.preset == "tiny" else "cpu"  # the pipeline's model: small, or tiny for tests
        sections.append(pipeline_e2e.run_section(preset, device, log=log))
    if args.with_decode:
        sections.append(decode_section(args))
    print("\n\n".join(sections), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
