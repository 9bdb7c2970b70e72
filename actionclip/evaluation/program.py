"""The evaluation program of `actionclip eval` / `training_scripts/run_eval.py`, from its parsed options (the
attributes `actionclip.commands.eval.add_eval_arguments` defines: ``protocol``, ``model``, ``output_dir``,
``eval_path``, ...): the protocol they describe, the models loaded, the evaluation run (`actionclip.evaluation.runner`)
and ``summary.json``. A bad option or input is an `EvaluationSetupError`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ..data.labels import load_label_names
from ..data.splits import read_list_file
from ..descriptions import load_descriptions, warn_long_descriptions
from ..errors import EvaluationSetupError
from ..model_loading import load_model_and_processor
from ..prompts import load_templates
from ..sharding.sharded_run import ShardedRun
from .protocols import (
    Protocol,
    base_to_novel,
    few_shot_protocol,
    full_class_zero_shot,
    half_class_zero_shot,
    hmdb51_zero_shot,
    kinetics600_novel_zero_shot,
    ucf101_zero_shot,
    write_few_shot_lists,
)
from .published_splits import published_base_to_novel, published_few_shot
from .runner import (
    RESULT_JSON_NAME,
    WORK_FOLDER_NAME,
    ProtocolEvaluator,
    ViewSettings,
    closed_set_protocol,
    samples_from_dataset_args,
)


def _require(args, *names: str) -> None:
    missing = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is None]
    if missing:
        raise EvaluationSetupError(f"--protocol {args.protocol} needs {' and '.join(missing)}")


def _list_samples(path, class_names_arg, default_names: str | None = None) -> tuple[list, list[str]]:
    samples = read_list_file(path)
    names_source = class_names_arg or default_names
    if names_source is None:
        raise EvaluationSetupError(f"{path}: give --class-names (a label file) for the classes its ids index")
    return samples, load_label_names(names_source)


def build_protocol(args) -> tuple:
    """``(protocol, video root, frame counts of the first split or None)`` from the options."""
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
    """Everything `run_eval.py` does, from parsed options; returns ``{protocol name: summary}`` and writes
    ``<output_dir>/summary.json``. Runs on ``args.device`` (the command checks first that it exists), else on cuda
    when available.

    Under a launcher (``torchrun``, ``accelerate launch``) the videos are shared among its processes, one GPU
    each where there are GPUs (`ShardedRun`); the main process alone writes, and the others return ``{}``. Each
    encoded video waits in ``<output_dir>/.unfinished`` until the reports are written, so a run killed in the
    middle and started again encodes only the rest."""
    with ShardedRun.from_environment() as run:
        return _run_evaluation(args, run)


def _run_evaluation(args, run: ShardedRun) -> dict:
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
    device = run.device(args.device) or ("cuda" if torch.cuda.is_available() else "cpu")
    protocol, root, counts = build_protocol(args)
    templates = list(load_templates(args.templates)) if args.templates else None
    descriptions = None
    if getattr(args, "descriptions", None):
        descriptions = load_descriptions(args.descriptions)
    kind = "closed-set" if args.protocol == "closed_set" else "zero-shot"
    dataset = _dataset_name(args)
    summaries = {}
    evaluators = []

    def evaluator_for(model_dir: str) -> ProtocolEvaluator:
        model, processor = load_model_and_processor(model_dir, device)
        if descriptions is not None:  # counted in the model's own tokens, against its own text context
            warn_long_descriptions(descriptions, processor.tokenizer, templates or ("{}",), processor.context_length)
        # --num-frames 0 is refused by ViewSettings, not taken as "the model's default".
        num_frames = model.config.num_frames if args.num_frames is None else args.num_frames
        views = ViewSettings(num_frames, args.num_clips, args.num_crops, args.sampler)
        evaluator = ProtocolEvaluator(
            model, processor, views, templates, args.logit_scale, args.batch_size, args.num_workers,
            model_name=str(model_dir), progress=not args.no_progress, descriptions=descriptions, run=run,
            work_dir=output_dir / WORK_FOLDER_NAME,
        )  # fmt: skip
        evaluators.append(evaluator)
        return evaluator

    if args.protocol == "few_shot":
        # Training is the training script's job: write the K-shot lists it trains on, then evaluate the models
        # already trained on them (``--model runs/k{shots}``), each on the full test set.
        shots = protocol.settings["shots"]
        lists = {}  # written by the main process only
        if run.is_main:
            protocol.write(output_dir / protocol.name)
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
            if result is not None:  # the main process
                summary["splits"][split.name] = result["splits"][split.name]
                summary.setdefault("failed_videos", {}).update(result.get("failed_videos", {}))
        if not summary.get("failed_videos"):
            summary.pop("failed_videos", None)
        if run.is_main:
            (output_dir / protocol.name / RESULT_JSON_NAME).write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
        summaries[protocol.name] = summary
    else:
        evaluator = evaluator_for(args.model)
        if counts is not None:
            sources = [path for path, _ in protocol.splits[0].videos]
            evaluator.frame_counts.update((s, c) for s, c in zip(sources, counts) if c is not None)
        summary = evaluator.run_protocol(protocol, root, output_dir, dataset, kind)
        if summary is not None:  # the main process
            summary.pop("reports")
            summaries[protocol.name] = summary
    if not run.is_main:
        return {}
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n", encoding="utf-8")
    for evaluator in evaluators:
        evaluator.finish()
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
