"""`actionclip wise-ft`: weight-space ensembling of a zero-shot and a fine-tuned model (see
`actionclip.training.weight_ensembling`)."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = (
    "Interpolate every weight of a zero-shot model and a fine-tuned model, (1 - alpha) * zero-shot + alpha * "
    "fine-tuned (WiSE-FT). With --sweep, evaluate each alpha on the base classes (trained on) and on novel classes "
    "(held out) and keep the alpha with the best harmonic mean of their top-1. OUT gets the model with its "
    "processor, wise_ft.json (the sweep table), wise_ft.png (accuracy against alpha), the chosen model's "
    "evaluation reports and a model card recording alpha. Fusion weights only the fine-tuned model has are "
    "interpolated from the fusion's identity-like all-zero state (--fusion-policy identity, where the fusion "
    "reduces to mean pooling: transf, conv1d, lstm) or kept as fine-tuned (--fusion-policy keep)."
)


def register(subparsers) -> None:
    from . import add_command
    from ._common import int_at_least

    parser = add_command(
        subparsers,
        "wise-ft",
        "interpolate a zero-shot and a fine-tuned model in weight space (WiSE-FT), sweeping alpha",
        DESCRIPTION,
        examples=(
            "actionclip wise-ft clip-b16 runs/ucf-b16 runs/ucf-wise --alpha 0.5",
            "actionclip wise-ft clip-b16 runs/ucf-b16 runs/ucf-wise --sweep 0,0.1,...,1 \\",
            "    --base-list data/val.txt --base-labels data/labels.csv \\",
            "    --novel-list data/zeroshot.txt --novel-labels data/zeroshot_labels.csv",
        ),
        exit_status="0 ok, 2 bad input (missing or incompatible models, bad lists, OUT exists)",
    )
    parser.add_argument("zero_shot", metavar="ZERO_SHOT", help="the zero-shot model folder (e.g. converted CLIP)")
    parser.add_argument("fine_tuned", metavar="FINE_TUNED", help="the fine-tuned model folder")
    parser.add_argument("output", metavar="OUT", help="where the chosen model goes")
    alphas = parser.add_mutually_exclusive_group(required=True)
    alphas.add_argument("--alpha", type=float, help="one alpha in [0, 1] (0: zero-shot, 1: fine-tuned)")
    alphas.add_argument("--sweep", help="alphas to try: '0,0.25,0.5' or a progression '0,0.1,...,1'")
    parser.add_argument("--base-list", help="test videos of the base (fine-tuned) classes: list file 'path id'")
    parser.add_argument("--base-labels", help="class names the base list's ids index (label file or packaged name)")
    parser.add_argument("--novel-list", help="test videos of the novel (held-out) classes: list file 'path id'")
    parser.add_argument("--novel-labels", help="class names the novel list's ids index")
    parser.add_argument("--video-root", help="where list paths are relative to (default: each list's folder)")
    parser.add_argument(
        "--fusion-policy", choices=("identity", "keep"), default="identity", help="fusion weights only the "
        "fine-tuned model has: from the identity-like zero state (default), or kept",
    )  # fmt: skip
    parser.add_argument("--num-frames", type=int_at_least(1), help="frames per video (default: the model's)")
    parser.add_argument("--templates", help="prompt templates: a set name, a file, or one template with {}")
    parser.add_argument("--logit-scale", type=float, help="similarity multiplier (default: the model's)")
    parser.add_argument("--batch-size", type=int_at_least(1), default=8, help="videos per batch")
    parser.add_argument("--dataset-name", default="wise-ft evaluation", help="dataset name in reports and card")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT when it exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def _eval_split(name: str, list_path: str, labels: str, what: str):
    from ..data.labels import load_label_names
    from ..data.splits import read_list_file
    from ..errors import CommandLineError
    from ..evaluation.protocols import EvalSplit

    if not Path(list_path).is_file():
        raise CommandLineError(f"--{what}-list {list_path!r}: no such file")
    samples = read_list_file(list_path)
    class_names = load_label_names(labels)
    bad = sorted({label for _, label in samples if label >= len(class_names)})
    if bad:
        raise CommandLineError(
            f"--{what}-list {list_path!r}: label ids {bad[:5]} are outside the {len(class_names)} classes of {labels!r}"
        )
    return EvalSplit(name, tuple(class_names), tuple(samples))


def run(args: argparse.Namespace) -> int:
    from ..errors import CommandLineError
    from ..training.weight_ensembling import format_sweep, parse_alphas, run_wise_ft
    from ._inputs import check_device

    alphas = [args.alpha] if args.alpha is not None else parse_alphas(args.sweep)
    for role, path in (("ZERO_SHOT", args.zero_shot), ("FINE_TUNED", args.fine_tuned)):
        if not Path(path).is_dir():
            raise CommandLineError(f"{role} model {path!r}: no such directory")
    given = [args.base_list, args.base_labels, args.novel_list, args.novel_labels]
    if any(value is not None for value in given) and not all(value is not None for value in given):
        raise CommandLineError("give all of --base-list, --base-labels, --novel-list and --novel-labels, or none")
    base = novel = None
    if all(value is not None for value in given):
        base = _eval_split("base", args.base_list, args.base_labels, "base")
        novel = _eval_split("novel", args.novel_list, args.novel_labels, "novel")
    elif len(alphas) > 1:
        raise CommandLineError("--sweep needs --base-list, --base-labels, --novel-list and --novel-labels")
    templates = None
    if args.templates is not None:
        from ..prompts import load_templates

        templates = list(load_templates(args.templates))
    base_root = args.video_root or (str(Path(args.base_list).parent) if args.base_list else None)
    novel_root = args.video_root or (str(Path(args.novel_list).parent) if args.novel_list else None)
    report = run_wise_ft(
        args.zero_shot, args.fine_tuned, args.output, alphas, base, novel, base_root, novel_root,
        fusion_policy=args.fusion_policy, num_frames=args.num_frames, templates=templates,
        logit_scale=args.logit_scale, batch_size=args.batch_size, device=check_device(args.device),
        dataset_name=args.dataset_name, overwrite=args.overwrite, progress=not args.no_progress,
    )  # fmt: skip
    if report["table"]:
        print(format_sweep(report))
    print(f"wrote {args.output}: alpha = {report['chosen_alpha']:g}")
    return 0
