"""The long-video benchmarks' code paths, once each at a tiny size: their tables, never their timings."""

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import localization as localization_benchmark  # noqa: E402
import search as search_benchmark  # noqa: E402


def test_localization_benchmark_runs_both_paths_with_the_same_scores():
    args = argparse.Namespace(seconds=6.0, window=2.0, stride=0.5, repeats=1, threads=1, preset="tiny")
    text = localization_benchmark.run(args)
    assert "| every window (baseline) |" in text and "| cached frames |" in text and "speed-up:" in text
    difference = float(re.search(r"max \|score difference\| (\S+)", text).group(1))
    assert difference < 1e-5


def test_search_benchmark_finds_the_exact_top_10():
    text = search_benchmark.run(argparse.Namespace(rows=3000, dim=64, queries=3))
    assert "| ours, numpy (exact, chunked) |" in text and "speed-up over the baseline" in text
