"""``actionclip eval`` (and `training_scripts/run_eval.py`): closed-set accuracy or a zero-shot protocol of a saved
model, from command-line arguments. What it runs is `actionclip.evaluation.runner`; the protocols are
`actionclip.evaluation.protocols`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from ..errors import EvaluationSetupError

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


def _require(args, *names: str) -> None:
    missing = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is None]
    if missing:
        raise EvaluationSetupError(f"--protocol {args.protocol} needs {' and '.join(missing)}")


def _list_samples(path, class_names_arg, default_names: str | None = None) -> tuple[list, list[str]]:
    from ..data.labels import load_label_names
    from ..data.splits import read_list_file

    samples = read_list_file(path)
    names_source = class_names_arg or default_names
    if names_source is None:
        raise EvaluationSetupError(f"{path}: give --class-names (a label file) for the classes its ids index")
    return samples, load_label_names(names_source)


def build_protocol(args) -> tuple:
    """``(protocol, video root, frame counts of the first split or None)`` from the command-line arguments."""
    from ..data.labels import load_label_names
    from ..data.splits import read_list_file
    from ..evaluation.protocols import (
        base_to_novel,
        few_shot_protocol,
        full_class_zero_shot,
        half_class_zero_shot,
        hmdb51_zero_shot,
        kinetics600_novel_zero_shot,
        ucf101_zero_shot,
    )
    from ..evaluation.runner import closed_set_protocol, samples_from_dataset_args

    kind = args.protocol
    if kind == "closed_set":
        _require(args, "eval_path")
        samples, names, counts = samples_from_dataset_args(
            args.dataset_format, args.eval_path, args.video_root, args.class_names
        )
        return closed_set_protocol(samples, names), None, counts
    if kind in ("hmdb51", "ucf101"):
        _require(args, "split_dir", "video_root")
        if kind == "hmdb51":
            return (
                hmdb51_zero_shot(args.split_dir, args.class_names and load_label_names(args.class_names)),
                (args.video_root),
                None,
            )
        return ucf101_zero_shot(args.split_dir), args.video_root, None
    root = args.video_root or (str(Path(args.eval_path).parent) if args.eval_path else None)
    if kind == "k600_novel":
        _require(args, "eval_path")
        samples, names = _list_samples(args.eval_path, args.class_names, "kinetics600")
        return kinetics600_novel_zero_shot(samples, names), root, None
    if kind in ("half_class", "full_class"):
        _require(args, "eval_path")
        samples, names = _list_samples(args.eval_path, args.class_names)
        if kind == "full_class":
            return full_class_zero_shot(samples, names), root, None
        return half_class_zero_shot(samples, names, args.num_subsets, args.fraction, args.seed), root, None
    if getattr(args, "published_splits", None):
        return _published_protocol(args), args.video_root, None
    _require(args, "eval_path", "train_path")
    test, names = _list_samples(args.eval_path, args.class_names)
    train = read_list_file(args.train_path)
    if kind == "base_to_novel":
        if args.shots is not None and len(args.shots) != 1:
            raise EvaluationSetupError("base_to_novel takes one --shots value")
        base = load_label_names(args.base_classes) if args.base_classes else None
        shots = args.shots[0] if args.shots else None
        protocol = base_to_novel(train, test, names, base, args.base_fraction, shots, args.seed)
        return protocol, root, None
    return few_shot_protocol(train, test, names, tuple(args.shots or (2, 4, 8, 16)), args.seed), root, None


def _published_protocol(args):
    """base_to_novel / few_shot on the released lists of ``--published-splits``."""
    from ..evaluation.published_splits import published_base_to_novel, published_few_shot

    if args.protocol not in ("base_to_novel", "few_shot"):
        raise EvaluationSetupError(f"--published-splits is for base_to_novel and few_shot, not {args.protocol}")
    if args.protocol == "base_to_novel":
        _require(args, "base_classes", "novel_classes", "video_root")
        seed = args.seed if args.seed >= 1 else 1
        if args.shots is not None and len(args.shots) != 1:
            raise EvaluationSetupError("base_to_novel takes one --shots value")
        shots = args.shots[0] if args.shots else 16  # the releases hold 16 videos per base class
        return published_base_to_novel(args.published_splits, args.base_classes, args.novel_classes, seed, shots)
    _require(args, "class_names", "video_root")
    return published_few_shot(args.published_splits, args.class_names, args.shots)


def _dataset_name(args) -> str:
    if args.dataset_name:
        return args.dataset_name
    if args.protocol in ("hmdb51", "ucf101"):
        return args.protocol.upper()
    if args.protocol == "k600_novel":
        return "Kinetics-600"
    path = args.eval_path or args.split_dir
    return Path(path).stem if path else args.protocol


def run_evaluation(args) -> dict:
    """Everything `run_eval.py` does, from parsed arguments; returns ``{protocol name: summary}`` and writes
    ``<output_dir>/summary.json``."""
    import torch

    from ..data.splits import read_list_file
    from ..evaluation.protocols import Protocol, write_few_shot_lists
    from ..evaluation.runner import RESULT_JSON_NAME, ProtocolEvaluator, ViewSettings
    from ..model_loading import load_model_and_processor
    from ..prompts import load_templates
    from ._inputs import check_device

    for name in ("num_clips", "batch_size"):
        if getattr(args, name) < 1:
            raise EvaluationSetupError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    # Checked before any data is read; 0 frames is not "the model's default", and a scale that is not a finite
    # positive number gives NaN or inverted rankings (the model refuses it too, later).
    if args.num_frames is not None and args.num_frames < 1:
        raise EvaluationSetupError(f"--num-frames must be >= 1, got {args.num_frames}")
    if args.logit_scale is not None and not (args.logit_scale > 0 and math.isfinite(args.logit_scale)):
        raise EvaluationSetupError(f"--logit-scale must be a finite positive number, got {args.logit_scale}")
    output_dir = Path(args.output_dir)
    device = check_device(args.device) or ("cuda" if torch.cuda.is_available() else "cpu")
    protocol, root, counts = build_protocol(args)
    templates = list(load_templates(args.templates)) if args.templates else None
    descriptions = None
    if getattr(args, "descriptions", None):
        from ..descriptions import load_descriptions

        descriptions = load_descriptions(args.descriptions)
        from ..descriptions import warn_long_descriptions
        from ..tokenizer import load_clip_tokenizer

        warn_long_descriptions(descriptions, load_clip_tokenizer(), templates or ("{}",))
    kind = "closed-set" if args.protocol == "closed_set" else "zero-shot"
    dataset = _dataset_name(args)
    summaries = {}

    def evaluator_for(model_dir: str) -> ProtocolEvaluator:
        model, processor = load_model_and_processor(model_dir, device)
        # --num-frames 0 is refused by ViewSettings, not taken as "the model's default".
        num_frames = model.config.num_frames if args.num_frames is None else args.num_frames
        views = ViewSettings(num_frames, args.num_clips, args.num_crops, args.sampler)
        return ProtocolEvaluator(
            model, processor, views, templates, args.logit_scale, args.batch_size, args.num_workers,
            model_name=str(model_dir), progress=not args.no_progress, descriptions=descriptions,
        )  # fmt: skip

    if args.protocol == "few_shot":
        # Training is the training script's job: write the K-shot lists it trains on, then evaluate the models
        # already trained on them (``--model runs/k{shots}``), each on the full test set.
        protocol.write(output_dir / protocol.name)
        shots = protocol.settings["shots"]
        if protocol.settings.get("published"):  # the released lists, as they are
            lists = {int(k): Path(path) for k, path in protocol.settings["train_lists"].items()}
        else:
            train = read_list_file(args.train_path)
            lists = write_few_shot_lists(
                train, output_dir / protocol.name, shots, protocol.settings["seed"],
                len(protocol.splits[0].class_names),
            )  # fmt: skip
        summary = {"protocol": protocol.name, "lists": {str(k): str(path) for k, path in lists.items()}, "splits": {}}
        for split, k in zip(protocol.splits, shots):
            model_dir = args.model.format(shots=k) if "{shots}" in args.model else None
            if model_dir is None or not Path(model_dir, "config.json").is_file():
                continue
            one = Protocol(protocol.name, (split,), protocol.settings)
            result = evaluator_for(model_dir).run_protocol(
                one, root, output_dir / f"{k}shot", dataset, f"few-shot-{k}", write_protocol_files=False
            )
            summary["splits"][split.name] = result["splits"][split.name]
        (output_dir / protocol.name / RESULT_JSON_NAME).write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
        summaries[protocol.name] = summary
    else:
        evaluator = evaluator_for(args.model)
        if counts is not None:
            sources = [path for path, _ in protocol.splits[0].videos]
            evaluator.frame_counts.update((s, c) for s, c in zip(sources, counts) if c is not None)
        summary = evaluator.run_protocol(protocol, root, output_dir, dataset, kind)
        summary.pop("reports")
        summaries[protocol.name] = summary
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n", encoding="utf-8")
    return summaries


def format_summary(summaries: dict) -> str:
    """A few lines per protocol: each metric's mean and standard deviation over the splits, in percent."""
    lines = []
    for name, summary in summaries.items():
        metrics = summary.get("metrics")
        if not metrics:
            lines.append(f"{name}: lists written ({', '.join(summary.get('lists', {}))}-shot)")
            continue
        views = f"{summary['num_clips']}x{summary['num_crops']} views, {summary['num_frames']} frames"
        lines.append(f"{name} ({summary['num_splits']} splits, {views}, {summary['num_templates']} templates):")
        for metric, value in metrics.items():
            lines.append(f"  {metric}: {100 * value['mean']:.2f} +- {100 * value['std']:.2f}")
        if "harmonic_mean" in summary:
            lines.append(f"  harmonic mean (top-1): {100 * summary['harmonic_mean']['top1_accuracy']:.2f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    print(format_summary(run_evaluation(args)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """`training_scripts/run_eval.py`: the same program with its own parser (no subcommand)."""
    from . import ArgumentParser

    parser = add_eval_arguments(ArgumentParser(description=DESCRIPTION))
    return run(parser.parse_args(argv))
