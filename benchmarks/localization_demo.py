"""Localisation quality with a model trained by the demo: true segments found at temporal IoU >= 0.5.

Usage: ``python benchmarks/localization_demo.py [--model /work/demo_shared/model_transf] [--videos 10]``

Runs ``actionclip.demo.inference.localize_untrimmed`` (what the demo's report shows): synthetic untrimmed videos of 3-5
segments of the demo's seen actions, 2-4 clips each (``write_untrimmed_video``), localised with the model's
zero-shot pipeline over the seen labels, window = one training clip, for several strides and smoothing spans
(in windows). The goal: >= 80 % of the true segments found.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from actionclip.data.synthetic import SyntheticDataset  # noqa: E402
from actionclip.demo.inference import localize_untrimmed  # noqa: E402

SETTINGS = ((1.0, 0.0), (1.0, 2.0), (0.25, 0.0), (0.25, 2.0))  # (stride, smoothing) in windows


def run(args) -> str:
    dataset = SyntheticDataset.load(args.data)
    lines = [
        f"model {args.model}; {args.videos} untrimmed videos of the demo's {len(dataset.labels)} seen actions",
        "",
        "| stride (windows) | smoothing (windows) | true segments found at IoU >= 0.5 | seconds |",
        "| --- | --- | --- | --- |",
    ]
    for stride, smoothing in SETTINGS:
        start = time.perf_counter()
        found = localize_untrimmed(Path(args.model), dataset, args.videos, stride, smoothing)
        lines.append(
            f"| {stride:g} | {smoothing:g} | {found['found']} / {found['num_segments']} = {found['recall']:.1%} "
            f"| {time.perf_counter() - start:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="/work/demo_shared/model_transf")
    parser.add_argument("--data", default="/work/demo_shared/data", help="the demo's synthetic dataset (its config)")
    parser.add_argument("--videos", type=int, default=10)
    print(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
