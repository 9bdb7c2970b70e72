"""``actionclip eval`` as one process against a sharded run of 2 processes under ``torchrun``, one run.

Usage: ``python benchmarks/sharded_eval.py [--videos 24] [--preset cpu] [--seconds 4] [--work DIR]``

Writes ``--videos`` real H.264 clips (320 x 240, 25 fps; cached in ``--work``) with a list file of 3 classes and a
random-weight ActionCLIP model of ``benchmarks/model_throughput.py``'s preset, then times, from the start of the
command to its exit (start-up and model loading included, as a user sees it):

- **1 process**: ``actionclip eval`` with torch's default threads (every core);
- **2 processes**: ``torchrun --standalone --nproc_per_node 2 -m actionclip eval`` (Gloo on CPUs), one thread each
  (``OMP_NUM_THREADS=1``, as torchrun sets it), each process taking every second video; the main process gathers
  and writes the reports.

Both runs must give the same per-video scores (checked, to 1e-5) and the same number of videos; printed: the
seconds of each, videos/s, and the speed-up of 2 processes over 1. On a machine with N GPUs the same command with
``--nproc_per_node N`` puts one process on each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import model_throughput  # noqa: E402
import pipeline_e2e  # noqa: E402

LABELS = ["sliding", "bouncing", "drifting"]


def prepare(work: Path, args) -> tuple[Path, Path, Path]:
    """The model folder, the list file and the class-name file (videos cached between runs)."""
    videos = pipeline_e2e.make_videos(work / "videos", count=args.videos, seconds=args.seconds)
    model_dir = work / f"model-{args.preset}"
    if not (model_dir / "config.json").exists():
        pipeline_e2e.save_model(model_throughput.PRESETS[args.preset], model_dir)
    list_file, labels_file = work / "list.txt", work / "labels.txt"
    list_file.write_text("".join(f"{path} {index % len(LABELS)}\n" for index, path in enumerate(videos)))
    labels_file.write_text("\n".join(LABELS) + "\n")
    return model_dir, list_file, labels_file


def timed_eval(launcher: list[str], model_dir: Path, list_file: Path, labels_file: Path, output: Path, env) -> float:
    command = [
        *launcher, "eval", "--model", str(model_dir), "--eval-path", str(list_file), "--class-names",
        str(labels_file), "--output-dir", str(output), "--batch-size", "2", "--no-progress",
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return seconds


def run(args, work: Path) -> str:
    model_dir, list_file, labels_file = prepare(work, args)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    binaries = Path(sys.executable).parent
    one = [str(binaries / "actionclip")]
    two = [str(binaries / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "actionclip"]
    timings = {}
    for name, launcher, extra in [("1 process", one, {}), ("2 processes", two, {"OMP_NUM_THREADS": "1"})]:
        output = work / f"eval-{name.split()[0]}"
        timings[name] = timed_eval(launcher, model_dir, list_file, labels_file, output, {**env, **extra})
    scores = [np.load(work / f"eval-{n}" / "closed_set" / "test" / "scores.npy") for n in ("1", "2")]
    if scores[0].shape != scores[1].shape or len(scores[0]) != args.videos:
        raise SystemExit(f"the runs scored {len(scores[0])} and {len(scores[1])} videos, expected {args.videos}")
    difference = float(np.abs(scores[0] - scores[1]).max())
    if difference > 1e-5:
        raise SystemExit(f"the sharded run's scores differ from one process's by {difference:.2e}")
    lines = [
        f"`actionclip eval`, {args.videos} H.264 clips of {args.seconds} s (320 x 240), preset `{args.preset}` model "
        f"(random weights), {os.cpu_count()} CPUs; wall time from the command's start to its exit",
        "",
        "| run | seconds | videos/s |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {name} | {seconds:.1f} | {args.videos / seconds:.2f} |" for name, seconds in timings.items()]
    lines += [
        "",
        f"Speed-up of 2 processes over 1: {timings['1 process'] / timings['2 processes']:.2f}x; "
        f"largest score difference {difference:.1e}.",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--preset", choices=sorted(model_throughput.PRESETS), default="cpu")
    parser.add_argument("--work", default=None, help="folder for the videos, model and reports (default: temporary)")
    args = parser.parse_args(argv)
    if args.work is not None:
        Path(args.work).mkdir(parents=True, exist_ok=True)
        print(run(args, Path(args.work)))
        return 0
    with tempfile.TemporaryDirectory() as work:
        print(run(args, Path(work)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
