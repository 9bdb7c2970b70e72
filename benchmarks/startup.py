"""Start-up time of the `actionclip` command against the interpreter's own, measured in the same run.

Usage: ``python benchmarks/startup.py [--repeats 5]``

Times, as fresh processes (the median of ``--repeats`` runs after one warm-up), ``python -c pass`` (the baseline),
``python -m actionclip.cli --help``, an argument error (``classify x.mp4 --top-k 0``, exit 2), ``import actionclip``
and, for scale, ``import torch, transformers``. Prints a markdown table with seconds and the ratio to the
baseline. The goal (issue 21): ``--help`` and an argument error in about a second, i.e. well under
``import torch, transformers``; the first time includes reading the files from disk, so run it twice.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "python -c pass (baseline)": ["-c", "pass"],
    "actionclip --help": ["-m", "actionclip.cli", "--help"],
    "actionclip classify x.mp4 --top-k 0 (argument error)": [
        "-m",
        "actionclip.cli",
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


def time_process(arguments: list[str], repeats: int) -> float:
    """Median wall time in seconds of ``python ARGUMENTS`` in a fresh process (one warm-up run first)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    times = []
    for run in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run([sys.executable, *arguments], env=env, capture_output=True, cwd=REPO_ROOT, check=False)
        if run:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (after one warm-up)")
    args = parser.parse_args(argv)
    results = {name: time_process(arguments, max(1, args.repeats)) for name, arguments in CASES.items()}
    baseline = results["python -c pass (baseline)"]
    print(
        f"start-up, median of {args.repeats} fresh processes; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}"
    )
    print()
    print("| command | seconds | x baseline |")
    print("| --- | --- | --- |")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.2f} | {seconds / baseline:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
