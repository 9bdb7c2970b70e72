"""The frame encoder on the CPU: ONNX fp32 and int8 (onnxruntime) against PyTorch eager and torch.compile'd.

The frame encoder (CLIP's vision tower and the visual projection, per frame) is where a video's time goes: it runs
for every frame, the fusion and the scoring are tiny next to it and the text side is cached. The model has the
ViT-B/16 vision tower (768 wide, 12 layers, 12 heads, 224 px, D 512) with random weights (speed does not depend on
them); the text tower is shrunk to keep the export short, it is not timed. Every variant encodes the same batch of
frames with the same number of threads. The variants are timed in turns (one call of each per round, the median
over rounds), so a machine whose load changes during the run slows them alike and the ratios stay fair.
``torch.compile`` (inductor, the default mode) is timed too; where it fails or takes longer than
``--compile-timeout`` to compile, the table says so and why instead of a time (``--no-compile`` leaves it out).

    python benchmarks/onnx_frame_encoder.py --frames 8 --rounds 15 --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VIT_B16 = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    patch_size=16,
    image_size=224,
)
SMALL_TEXT = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=1, num_attention_heads=1)


@contextlib.contextmanager
def _time_limit(seconds: int):
    """Raise `TimeoutError` in the main thread after ``seconds`` (SIGALRM; where there is none, no limit)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"compiling took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _load_average() -> float | None:
    return round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8, help="frames per call (one 8-frame clip by default)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="do not time torch.compile")
    parser.add_argument(
        "--compile-timeout",
        type=int,
        default=900,
        help="give up compiling after this many seconds and say so in the table",
    )
    args = parser.parse_args(argv)

    import torch

    from actionclip import ActionCLIPConfig, ActionCLIPModel, ActionCLIPProcessor
    from actionclip.onnx.runtime import ActionCLIPOnnxModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = ActionCLIPConfig(
        vision_config=VIT_B16, text_config=SMALL_TEXT, projection_dim=512, num_frames=8, fusion="meanP"
    )
    model = ActionCLIPModel(config).eval()
    pixel_values = torch.randn(args.frames, 3, 224, 224)
    with torch.no_grad():
        reference = model.get_frame_features(pixel_values[:, None])[:, 0]

    def eager():
        with torch.no_grad():
            return model.get_frame_features(pixel_values[:, None])[:, 0]

    variants = {"PyTorch eager fp32": eager}
    notes = {}
    figures: dict = {"frames": args.frames, "threads": args.threads, "rounds": args.rounds}
    figures["load average at start"] = _load_average()
    with tempfile.TemporaryDirectory() as scratch:
        from actionclip.onnx.export import export_onnx, read_int8_choice

        processor = ActionCLIPProcessor.from_model_config(config)
        for name, options in (("ONNX fp32", {}), ("ONNX int8", {"quantize": "int8"})):
            start = time.perf_counter()
            directory = export_onnx(model, Path(scratch) / name.replace(" ", "_"), processor=processor, **options)
            notes[name] = f"export {time.perf_counter() - start:.0f} s"
            session = ActionCLIPOnnxModel.from_pretrained(directory, num_threads=args.threads).sessions[
                "frame_encoder"
            ]
            inputs = {"pixel_values": pixel_values.numpy()}
            variants[name] = lambda session=session, inputs=inputs: torch.from_numpy(session.run(None, inputs)[0])
            size = sum(path.stat().st_size for path in directory.glob("frame_encoder*.onnx")) / 2**20
            notes[name] += f", frame_encoder.onnx {size:.0f} MiB"
            int8 = read_int8_choice(directory)
            if int8:  # what the export's accuracy-driven selection chose
                total = int8["quantized_matmuls"] + len(int8["float32_matmuls"])
                notes[name] += (
                    f", {int8['quantized_matmuls']} of {total} MatMuls int8 (calibration 1 - cos "
                    f"{int8['calibration_error']:.1e})"
                )
                figures["int8 float32 matmuls"] = int8["float32_matmuls"]

        if args.compile:
            name = "PyTorch compile fp32"
            start = time.perf_counter()
            try:
                with _time_limit(args.compile_timeout):
                    compiled = torch.compile(lambda frames: model.get_frame_features(frames[:, None])[:, 0])
                    with torch.no_grad():
                        compiled(pixel_values)  # the first call compiles
            except Exception as error:  # reported in the table, not raised: the other columns still count
                reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else ""
                notes[name] = f"not timed: torch.compile failed after {time.perf_counter() - start:.0f} s: "
                notes[name] += f"{type(error).__name__} {reason}".strip()
            else:

                def run_compiled():
                    with torch.no_grad():
                        return compiled(pixel_values)

                variants[name] = run_compiled
                notes[name] = f"compile {time.perf_counter() - start:.0f} s"

        for name, run in variants.items():  # warm-up, and the distance of each variant from PyTorch's output
            for _ in range(args.warmup):
                output = run()
            cosine = torch.nn.functional.cosine_similarity(output.float(), reference, dim=-1).min().item()
            figures[f"{name} min cosine vs eager"] = cosine
            figures[f"{name} max abs diff vs eager"] = (output.float() - reference).abs().max().item()
        times = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, run in variants.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)

    figures["load average at end"] = _load_average()
    baseline = statistics.median(times["PyTorch eager fp32"])
    print(
        f"frame encoder, ViT-B/16 224 px (random weights), {args.frames} frames per call, {args.threads} threads, "
        f"median of {args.rounds} interleaved rounds; {os.cpu_count()} CPUs, 1-minute load average "
        f"{figures['load average at start']} at the start, {figures['load average at end']} at the end"
    )
    compiled = statistics.median(times["PyTorch compile fp32"]) if "PyTorch compile fp32" in times else None
    print(
        "| variant | ms / call | frames/s | vs PyTorch eager fp32 | vs PyTorch compile fp32 | min cosine vs eager | notes |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, samples in times.items():
        median = statistics.median(samples)
        figures[f"{name} ms"] = median * 1e3
        figures[f"{name} speedup"] = baseline / median
        versus_compiled = f"{compiled / median:.2f}x" if compiled else "-"
        if compiled:
            figures[f"{name} speedup vs compiled"] = compiled / median
        cosine = figures[f"{name} min cosine vs eager"]
        print(
            f"| {name} | {median * 1e3:.0f} | {args.frames / median:.1f} | {baseline / median:.2f}x | {versus_compiled} | "
            f"{cosine:.5f} | {notes.get(name, '')} |"
        )
    for name, note in notes.items():
        if name not in times:
            print(f"| {name} | - | - | - | - | - | {note} |")
    return figures


if __name__ == "__main__":
    main()
