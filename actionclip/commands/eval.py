"""``actionclip eval`` (and `training_scripts/run_eval.py`): closed-set accuracy or a zero-shot protocol of a saved
model, from command-line arguments. The program is `actionclip.evaluation.program`; what it runs is
`actionclip.evaluation.runner`; the protocols are `actionclip.evaluation.protocols`.
"""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = "Evaluate an ActionCLIP model: closed-set or zero-shot protocols."


def register(subparsers) -> None:
    from . import add_command

    parser = add_command(
        subparsers,
        "eval",
        "evaluate a model: closed-set (multi-view) or zero-shot protocols",
        "Closed-set accuracy or a zero-shot protocol (hmdb51, ucf101, k600_novel, half_class, "
        "full_class, base_to_novel, few_shot) of a model directory; the same program as "
        "training_scripts/run_eval.py.",
    )
    add_eval_arguments(parser).set_defaults(handler=run)


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `run_eval.py` / `actionclip eval`."""
    from ..evaluation.protocols import PROTOCOLS
    from ._common import int_at_least

    parser.add_argument("--model", required=True, help="a saved model directory (with its processor); for "
                        "--protocol few_shot it may hold '{shots}' to evaluate one model per K")  # fmt: skip
    parser.add_argument("--output-dir", required=True, help="where the reports go")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="closed_set", help="what to evaluate")
    parser.add_argument(
        "--dataset-format",
        default="list",
        help="closed_set: how --eval-path is given: folder, list, ucf101, hmdb51, kinetics_csv, hf",
    )
    parser.add_argument("--eval-path", help="test videos: list file (path label), or a folder")
    parser.add_argument("--train-path", help="training list file (base_to_novel, few_shot)")
    parser.add_argument("--video-root", help="where list paths are relative to (default: the list's)")
    parser.add_argument("--split-dir", help="hmdb51/ucf101: the folder of the official split files")
    parser.add_argument("--class-names", help="label file (id,name CSV or TXT) or packaged list")
    parser.add_argument("--dataset-name", help="dataset name in the reports")
    parser.add_argument("--num-frames", type=int, help="frames per view (default: the model's)")
    parser.add_argument("--num-clips", type=int, default=1, help="temporal views per video")
    parser.add_argument("--num-crops", type=int, default=1, choices=(1, 3), help="spatial views")
    parser.add_argument("--sampler", choices=("tsn", "uniform"), default="tsn", help="frame sampler of each clip")
    parser.add_argument("--templates", help="prompt templates: a set name, a file, or one template with {}")
    parser.add_argument(
        "--logit-scale",
        type=float,
        help="similarity multiplier (default: the config's eval_logit_scale, else the learned one)",
    )
    parser.add_argument("--descriptions", help="label descriptions JSON ({label: [sentence, ...]}): extra prompts")
    parser.add_argument("--num-subsets", type=int, default=10, help="half_class: class subsets")
    parser.add_argument("--fraction", type=float, default=0.5, help="half_class: fraction of the classes")
    parser.add_argument("--base-fraction", type=float, default=0.5, help="base_to_novel")
    parser.add_argument("--base-classes", help="base_to_novel: label file of the base classes")
    parser.add_argument("--shots", type=int, nargs="+", help="few_shot: K values (default 2 4 8 16); "
                        "base_to_novel: one K for the base training list")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the class subsets and K-shot choices; with "
                        "--published-splits, which released base-to-novel training list (1, 2, 3; default 1)")  # fmt: skip
    parser.add_argument("--published-splits", help="base_to_novel, few_shot: the folder of "
                        "the splits X-CLIP / ViFi-CLIP released (actionclip/published_splits.py) instead of drawing")  # fmt: skip
    parser.add_argument("--novel-classes", help="base_to_novel with --published-splits: "
                        "the novel classes' class-index CSV (the base ones: --base-classes)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=8, help="videos per batch")
    parser.add_argument(
        "--num-workers", type=int_at_least(0, "0 decodes in this process"), default=0, help="decoding processes"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    """Evaluate (`actionclip.evaluation.program.run_evaluation`) and print the summary; a ``--device`` this machine
    lacks is refused before any data is read. Videos that could not be read are one error line each, and exit
    status 2 (the metrics are over the others). Under a launcher only the main process prints."""
    from ..evaluation.program import format_summary, run_evaluation
    from ._inputs import check_device

    check_device(args.device)
    summaries = run_evaluation(args)
    if not summaries:  # a process of a sharded run other than the main one
        return 0
    failed = {}
    for summary in summaries.values():
        failed.update(summary.get("failed_videos", {}))
    for message in failed.values():
        print(f"actionclip eval: error: {message}", file=sys.stderr)
    print(format_summary(summaries))
    if failed:
        print(
            f"actionclip eval: error: videos that could not be read: {len(failed)} (left out of the metrics)",
            file=sys.stderr,
        )
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """`training_scripts/run_eval.py`: the same program with its own parser (no subcommand)."""
    from . import ArgumentParser

    parser = add_eval_arguments(ArgumentParser(description=DESCRIPTION))
    return run(parser.parse_args(argv))
