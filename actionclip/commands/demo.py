"""``actionclip demo`` / ``make demo``: the whole method, end to end, on a fresh machine without network.

The arguments and the printed report; the demo itself (synthetic data, two models trained from scratch, evaluation,
the pipeline, model cards, the report and its checks) is `actionclip.demo` (`actionclip.demo.run.run_demo`).
"""

from __future__ import annotations

import argparse
import logging


def register(subparsers) -> None:
    from . import add_command

    parser = add_command(
        subparsers,
        "demo",
        "generate synthetic videos, train, evaluate and report, offline",
        "Generate a synthetic dataset, train a temporal and a meanP ActionCLIP from scratch, evaluate "
        "closed-set and zero-shot, classify a video with the pipeline, write model cards and a report.",
    )
    add_demo_arguments(parser).set_defaults(handler=run)


def add_demo_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from ._common import int_at_least

    parser.add_argument("--output-dir", default="demo_output", help="where everything is written")
    parser.add_argument(
        "--seed", type=int_at_least(0), default=0, help="seed of the data, the models and the training (>= 0)"
    )
    parser.add_argument(
        "--threads",
        type=int_at_least(0, "0 lets torch choose"),
        default=2,
        help="torch CPU threads (default 2: the same numbers on every machine with the same libraries; 0 lets "
        "torch choose)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars, only the report")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when one of the report's checks fails"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the demo from parsed arguments and print the report (its checks say PASS or FAIL); with ``--strict`` the
    exit status is 1 when a check failed."""
    from ..demo.run import run_demo

    logging.getLogger("actionclip").setLevel(logging.WARNING)
    report = run_demo(args.output_dir, seed=args.seed, progress=not args.quiet, threads=args.threads)
    print(report["text"])
    return 1 if args.strict and not report["passed"] else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m actionclip.commands.demo``: the same program with its own parser (no subcommand)."""
    from . import ArgumentParser

    parser = add_demo_arguments(ArgumentParser(description=__doc__.splitlines()[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    import sys

    sys.exit(main())
