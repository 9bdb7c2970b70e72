"""Decoding on the GPU (NVDEC through FFmpeg's ``hwaccel``) against the CPU, per resolution, in one run.

Usage:
    python benchmarks/gpu_decode.py                 # 320x240, 1280x720, 1920x1080 H.264, 4 files each
    python benchmarks/gpu_decode.py --hwaccel cuda --files 8

For each resolution, writes H.264 files (GOP 12, our writer; cached in the work directory) and reads 8 TSN frames
of each as the pipeline does (resized by the decoder to a 256-pixel shorter side), once on the CPU (one decoder
thread) and once with ``hwaccel`` (frames downloaded to host memory, then scaled by libswscale): wall ms and this
process's CPU ms per video, best of ``--repeats``. The last line says at which resolutions ``hwaccel`` was faster
in wall time; the option stays off by default unless it wins (issue 13: for one 320x240 stream NVDEC was 10x
slower than the CPU). Where the device type is unavailable, its rows say why and the CPU rows still print.
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

from input_engine import write_files  # noqa: E402  (the benchmarks' own file writer)

RESOLUTIONS = ((240, 320), (720, 1280), (1080, 1920))


def time_reads(paths: list[str], hwaccel: str | None, repeats: int) -> tuple[float, float]:
    """(wall ms, CPU ms) per video, the best of ``repeats`` passes over ``paths`` (after one warm-up read)."""
    from actionclip.sampling import TSNSampler
    from actionclip.video_io import sample_and_read

    sampler = TSNSampler(8)
    sample_and_read(paths[0], sampler, size={"shortest_edge": 256}, hwaccel=hwaccel)
    best = None
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        for path in paths:
            sample_and_read(path, sampler, size={"shortest_edge": 256}, hwaccel=hwaccel)
        result = (
            1000 * (time.perf_counter() - started) / len(paths),
            1000 * (time.process_time() - cpu) / len(paths),
        )
        best = result if best is None or result[0] < best[0] else best
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hwaccel", default="cuda", help="FFmpeg device type (default: cuda)")
    parser.add_argument("--files", type=int, default=4, help="files per resolution")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--frames", type=int, default=48, help="frames per file")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "actionclip_gpu_decode_bench"))
    args = parser.parse_args(argv)

    from actionclip.errors import VideoDecodeError

    print(
        f"# 8 TSN frames per video resized by the decoder to a 256 px shorter side; {args.files} H.264 files per row"
    )
    print(
        f"| resolution | CPU ms / video (wall, CPU) | {args.hwaccel} ms / video (wall, CPU) | {args.hwaccel} / CPU (wall) |"
    )
    print("| --- | --- | --- | --- |")
    wins = []
    for height, width in RESOLUTIONS:
        paths = write_files(Path(args.workdir), args.files, args.frames, height, width, block=16)
        cpu_wall, cpu_cpu = time_reads(paths, None, args.repeats)
        try:
            hw_wall, hw_cpu = time_reads(paths, args.hwaccel, args.repeats)
        except VideoDecodeError as error:
            print(f"| {width}x{height} | {cpu_wall:.1f}, {cpu_cpu:.1f} | unavailable: {error.reason} | |")
            continue
        ratio = hw_wall / cpu_wall
        if ratio < 1:
            wins.append(f"{width}x{height}")
        print(f"| {width}x{height} | {cpu_wall:.1f}, {cpu_cpu:.1f} | {hw_wall:.1f}, {hw_cpu:.1f} | {ratio:.2f}x |")
    print(f"# {args.hwaccel} faster in wall time at: {', '.join(wins) if wins else 'no resolution'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
