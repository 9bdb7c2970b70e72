"""The `actionclip` command: `classify` videos with any labels, `info` about a model, `convert` checkpoints,
`eval` protocols, the offline `demo`, and model `card`s.

Bad input (a missing video or model, empty labels, a bad template, an unreadable video) exits with status 2 and a
one-line error on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import warnings
from pathlib import Path

from .video_files import VIDEO_EXTENSIONS, list_video_files


class CommandLineError(Exception):
    """Bad input on the command line: reported as one line, exit status 2."""


# ---------------------------------------------------------------------------------------------------------- helpers


def find_videos(paths: list[str]) -> list[str]:
    """Every path given, with directories replaced by the video files under them (by extension, sorted)."""
    videos = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = [str(video) for video in list_video_files(path)]
            if not found:
                raise CommandLineError(
                    f"directory {given!r} holds no video file ({', '.join(sorted(VIDEO_EXTENSIONS))})"
                )
            videos.extend(found)
        elif given.lower().startswith(("http://", "https://")) or path.is_file():
            videos.append(given)
        elif path.exists():
            raise CommandLineError(
                f"video {given!r} is not a regular file (a FIFO, a device or a socket): give a video file"
            )
        else:
            raise CommandLineError(f"video {given!r}: no such file or directory")
    return videos


def read_labels(args: argparse.Namespace) -> list[str]:
    """The candidate labels of ``--labels``, ``--labels-file`` or ``--label-set``.

    Label files are read by `protocols.read_label_file`, the one reader shared with ``eval`` and the training
    script's ``--class_names``: an ``id,name`` CSV (our label lists, the demo's ``labels.csv``) or one label per line.
    """
    from .protocols import load_label_names, read_label_file

    if args.labels is not None:
        return [label.strip() for label in args.labels.split(",")]
    if getattr(args, "label_set", None) is not None:
        return load_label_names(args.label_set)
    path = Path(args.labels_file)
    if not path.exists():
        raise CommandLineError(f"labels file {args.labels_file!r}: no such file")
    if not path.is_file():
        raise CommandLineError(f"labels file {args.labels_file!r} is not a regular file (a FIFO, a device, a folder)")
    try:
        return read_label_file(path)  # read with a byte cap (`text_files.read_text_file`)
    except (OSError, UnicodeDecodeError) as error:
        raise CommandLineError(f"labels file {args.labels_file!r}: {error}") from None


def load_pipeline(model: str, device: str | None = None):
    """The zero-shot pipeline of ``model``; loading failures become a `CommandLineError`.

    A local directory is checked first (cheaply, from its ``config.json``): a missing one fails at once, a
    closed-set model is refused before its weights load. Warnings while loading (a plain CLIP model converted on
    the fly) are printed as one line each.
    """
    _check_model_path(model)
    _check_model_kind(model)
    from transformers import pipeline

    from . import registration
    from .errors import ActionCLIPError

    registration.register_with_transformers()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            classifier = pipeline("zero-shot-video-classification", model=model, device=device)
    except ActionCLIPError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CommandLineError(f"cannot load model {model!r}: {first_line}") from None
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            print(f"actionclip: warning: {_short(warning.message)}", file=sys.stderr)
    return classifier


def _check_model_path(model: str) -> None:
    """A model given as a local path must exist (a Hub id such as ``org/name`` is left to transformers).

    A name is local when it is absolute, starts with ``.`` or ``~``, has more than one ``/``, or its first part is
    an existing local directory (``demo_output/model_tranf`` where ``demo_output/`` exists): such a typo fails at
    once, naming close matches, instead of after the Hub's retries.
    """
    path = Path(model).expanduser()
    first_part = Path(model).parts[0] if Path(model).parts else ""
    looks_local = (
        path.is_absolute()
        or model.startswith((".", "~"))
        or model.count("/") > 1
        or (model.count("/") == 1 and Path(first_part).is_dir())
    )
    if looks_local and not path.is_dir():
        import difflib

        parent = path.parent
        siblings = sorted(entry.name for entry in parent.iterdir() if entry.is_dir()) if parent.is_dir() else []
        close = difflib.get_close_matches(path.name, siblings, n=3)
        hint = f" (did you mean {', '.join(repr(str(parent / name)) for name in close)}?)" if close else ""
        raise CommandLineError(f"model {model!r}: no such directory{hint}")


def _check_model_kind(model: str) -> None:
    """A local model directory must hold an ActionCLIP model or a CLIP one (see `model_kinds`)."""
    config_path = Path(model).expanduser() / "config.json"
    if not config_path.is_file():
        return  # a Hub id, or a directory transformers will report on
    from .model_kinds import zero_shot_model_kind

    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CommandLineError(f"model {model!r}: unreadable config.json ({_short(error)})") from None
    zero_shot_model_kind(config if isinstance(config, dict) else {}, model)


def _short(error: BaseException) -> str:
    return " ".join(str(error).split())


# ---------------------------------------------------------------------------------------------------------- classify


def _classify_labels(args: argparse.Namespace, templates):
    """The candidate labels: a list, or ``{label: [description, ...]}`` from ``--descriptions`` (long description
    prompts counted and warned about on stderr)."""
    if getattr(args, "descriptions", None) is None:
        return read_labels(args)
    from .descriptions import load_descriptions, warn_long_descriptions
    from .tokenizer import load_clip_tokenizer

    descriptions = load_descriptions(args.descriptions)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_long_descriptions(descriptions, load_clip_tokenizer(), templates or ("{}",))
    for warning in caught:
        print(f"actionclip classify: warning: {_short(warning.message)}", file=sys.stderr)
    return descriptions


def _classify(args: argparse.Namespace) -> int:
    videos = find_videos(args.videos)
    _check_model_path(args.model)  # before anything imports torch: a typo answers at once
    from tqdm.auto import tqdm

    from .prompts import DEFAULT_TEMPLATE_SET, PromptTemplater, load_templates

    templates = list(load_templates(args.templates)) if args.templates is not None else None
    candidates = labels = _classify_labels(args, templates)
    if isinstance(candidates, dict):
        labels = list(candidates)
    PromptTemplater(templates or DEFAULT_TEMPLATE_SET).normalize_labels(labels)  # bad labels: before loading
    classifier = load_pipeline(args.model, args.device)
    options = dict(
        candidate_labels=candidates,
        hypothesis_template=templates,
        top_k=args.top_k,
        num_frames=args.num_frames,
        num_clips=args.num_clips,
        num_crops=args.num_crops,
        logit_scale=args.logit_scale,
        ensemble=args.ensemble,
        batch_size=args.batch_size,
        on_error="skip",
    )
    options = {key: value for key, value in options.items() if value is not None}

    rows, failures = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = classifier.iter_results(videos, **options)
        progress = tqdm(
            zip(videos, results),
            total=len(videos),
            unit="video",
            file=sys.stderr,
            disable=args.no_progress or len(videos) < 2,
        )
        for video, predictions in progress:
            if predictions is None:
                failures.append(video)
            else:
                rows.append((video, predictions))
    for warning in caught:
        message = _short(warning.message)
        if message.startswith("skipped: "):
            print(f"actionclip classify: error: {message[len('skipped: ') :]}", file=sys.stderr)
        else:
            print(f"actionclip classify: warning: {message}", file=sys.stderr)

    if args.format == "json":
        json.dump(
            [{"video": video, "predictions": predictions} for video, predictions in rows],
            sys.stdout,
            ensure_ascii=False,
            indent=2,
            allow_nan=False,  # strict JSON; the pipeline refuses non-finite scores before this
        )
        print()
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["video", "rank", "label", "score"])
        for video, predictions in rows:
            for rank, prediction in enumerate(predictions, start=1):
                writer.writerow([video, rank, prediction["label"], f"{prediction['score']:.6f}"])
    else:
        for video, predictions in rows:
            print(video)
            for prediction in predictions:
                print(f"  {prediction['score']:.4f}  {prediction['label']}")
    if failures:
        print(
            f"actionclip classify: error: {len(failures)} of {len(videos)} videos could not be classified",
            file=sys.stderr,
        )
        return 2
    return 0


# ---------------------------------------------------------------------------------------------------------- info


def _finite_or_none(value: float) -> float | None:
    """``None`` (JSON null) for NaN and infinities, which JSON cannot hold."""
    return value if math.isfinite(value) else None


def model_summary(model) -> dict:
    """What `actionclip info` prints, as a dict."""
    config = model.config

    def count(prefixes: tuple[str, ...] | None = None) -> int:
        return sum(
            parameter.numel()
            for name, parameter in model.named_parameters()
            if prefixes is None or name.startswith(prefixes)
        )

    summary = {
        "architecture": type(model).__name__,
        "model_type": config.model_type,
        "fusion": config.fusion,
        "shift": bool(config.shift),
        "joint": bool(config.joint),
        "num_frames": config.num_frames,
        "image_size": config.vision_config.image_size,
        "patch_size": config.vision_config.patch_size,
        "projection_dim": config.projection_dim,
        "vision_layers": config.vision_config.num_hidden_layers,
        "vision_width": config.vision_config.hidden_size,
        "text_layers": config.text_config.num_hidden_layers,
        "text_width": config.text_config.hidden_size,
        "logit_scale": _finite_or_none(round(float(model.logit_scale.detach().float().exp()), 4)),
        "eval_logit_scale": config.eval_logit_scale,
        "templates": list(config.templates),
        "parameters": {
            "total": count(),
            "vision": count(("vision_model.", "visual_projection")),
            "text": count(("text_model.", "text_projection")),
            "visual_prompts": count(("fusion.", "temporal_embedding")),
        },
    }
    import torch

    from .process_policy import runtime_summary

    summary["runtime"] = {**runtime_summary(), "torch_threads": torch.get_num_threads()}
    if getattr(config, "id2label", None) and type(model).__name__ == "ActionCLIPForVideoClassification":
        summary["labels"] = [config.id2label[i] for i in range(len(config.id2label))]
    return summary


def _info(args: argparse.Namespace) -> int:
    from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification

    from . import registration

    registration.register_with_transformers()
    _check_model_path(args.model)
    try:
        config = AutoConfig.from_pretrained(args.model)
        if config.model_type != "actionclip":
            raise CommandLineError(
                f"model {args.model!r} is not an ActionCLIP model (model_type {config.model_type!r})"
            )
        architectures = config.architectures or []
        loader = AutoModelForVideoClassification if "ActionCLIPForVideoClassification" in architectures else AutoModel
        model = loader.from_pretrained(args.model)
    except (OSError, ValueError, KeyError) as error:
        if isinstance(error, CommandLineError):
            raise
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CommandLineError(f"cannot load model {args.model!r}: {first_line}") from None
    summary = model_summary(model)
    summary["processor"] = os.path.isfile(os.path.join(args.model, "processor_config.json"))
    if args.json:
        json.dump(summary, sys.stdout, ensure_ascii=False, indent=2, allow_nan=False)
        print()
        return 0
    parameters = summary.pop("parameters")
    templates = summary.pop("templates")
    labels = summary.pop("labels", None)
    runtime = summary.pop("runtime")
    width = max(len(key) for key in [*summary, *(f"  {key}" for key in [*parameters, *runtime])])
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")
    print("parameters")
    for key, value in parameters.items():
        print(f"  {key:<{width - 2}}  {value:,}")
    print("runtime")
    for key, value in runtime.items():
        print(f"  {key:<{width - 2}}  {value}")
    print(f"templates ({len(templates)})")
    for template in templates:
        print(f"  {template}")
    if labels is not None:
        print(f"labels ({len(labels)})")
        for label in labels:
            print(f"  {label}")
    return 0


# ---------------------------------------------------------------------------------------------------------- convert


def _convert(args: argparse.Namespace) -> int:
    from .convert_original import convert_original_checkpoint

    if not Path(args.checkpoint).is_file():
        raise CommandLineError(f"checkpoint {args.checkpoint!r}: no such file")
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise CommandLineError(f"output {args.output_dir!r} is a file, not a folder")
    model = convert_original_checkpoint(
        args.checkpoint, args.output_dir, num_frames=args.num_frames, fusion=args.fusion, joint=args.joint
    )
    config = model.config
    print(
        f"converted {args.checkpoint} -> {args.output_dir}: fusion={config.fusion} shift={config.shift} "
        f"joint={config.joint} frames={config.num_frames} image={config.vision_config.image_size}px "
        f"D={config.projection_dim}"
    )
    return 0


# ---------------------------------------------------------------------------------------------------------- parser


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _eval(args: argparse.Namespace) -> int:
    from .evaluate_protocols import format_summary, run_evaluation

    print(format_summary(run_evaluation(args)))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo_from_args

    return run_demo_from_args(args)


def _card(args: argparse.Namespace) -> int:
    from .evaluation import REPORT_JSON_NAME
    from .model_card import check_model_card, generate_model_card

    model_dir = Path(args.model_dir)
    if not model_dir.is_dir():
        raise CommandLineError(f"model directory {args.model_dir!r}: no such directory")
    if args.template is not None and not Path(args.template).is_file():
        raise CommandLineError(f"template {args.template!r}: no such file")
    if args.eval is not None:  # a folder stands for every evaluation report under it (as for MODEL_DIR)
        reports = []
        for given in args.eval:
            if not Path(given).is_dir():
                reports.append(given)  # a file (a missing one is reported by the report reader)
                continue
            found = sorted(Path(given).rglob(REPORT_JSON_NAME))
            if not found:
                raise CommandLineError(
                    f"evaluation folder {given!r} holds no {REPORT_JSON_NAME} (searched subfolders)"
                )
            reports.extend(str(path) for path in found)
    elif args.no_eval:
        reports = []
    else:  # every evaluation report saved under the model folder
        reports = [str(path) for path in sorted(model_dir.rglob(REPORT_JSON_NAME))]
    card = generate_model_card(
        model_dir,
        reports,
        args.base_model,
        model_name=args.name,
        repo_id=args.repo_id,
        summary=args.summary,
        datasets=args.dataset or None,
        training_data=args.training_data,
        synthetic_training_data=args.synthetic,
        intended_use=args.intended_use,
        limitations=args.limitation or (),
        license=args.license,
        tags=args.tag or (),
        template_path=args.template,
    )
    check_model_card(card)
    if args.stdout:
        print(str(card))
        return 0
    output = Path(args.output) if args.output else model_dir / "README.md"
    if output.exists() and not args.overwrite:
        raise CommandLineError(f"output {str(output)!r} exists: pass --overwrite to replace it, or --output elsewhere")
    output.parent.mkdir(parents=True, exist_ok=True)
    card.save(output)
    model_index = card.data.to_dict().get("model-index", [])
    metrics = sum(len(result["metrics"]) for entry in model_index for result in entry["results"])
    print(f"wrote {output}: {len(reports)} evaluation report(s), {metrics} model-index metric(s); checked offline")
    return 0


def int_at_least(minimum: int, note: str = ""):
    """An argparse ``type`` for integers >= ``minimum``; ``note`` is added to the error (e.g. what 0 means)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}" + (f" ({note})" if note else ""))
        return value

    return parse


_positive_int = int_at_least(1)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite positive number")
    return value


class _LazyArgumentsParser(argparse.ArgumentParser):
    """A subcommand parser whose arguments are added only when it parses or prints help.

    ``eval`` and ``demo`` define their arguments in modules that import torch; adding them only when that command
    is used keeps ``actionclip --help`` and the other commands' argument errors fast.
    """

    add_arguments = None  # a function of the parser, set on the parsers that need it

    def _add_lazy_arguments(self) -> None:
        add_arguments, self.add_arguments = self.add_arguments, None
        if add_arguments is not None:
            add_arguments(self)

    def parse_known_args(self, args=None, namespace=None):
        self._add_lazy_arguments()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._add_lazy_arguments()
        return super().format_help()

    def format_usage(self) -> str:
        self._add_lazy_arguments()
        return super().format_usage()


def _add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    from .evaluate_protocols import add_eval_arguments

    add_eval_arguments(parser).set_defaults(handler=_eval)


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    from .demo import add_demo_arguments

    add_demo_arguments(parser).set_defaults(handler=_demo)


def build_parser() -> argparse.ArgumentParser:
    from .commands._common import add_label_arguments

    parser = argparse.ArgumentParser(
        prog="actionclip",
        description="ActionCLIP video action recognition.",
        formatter_class=_Formatter,
        epilog="examples:\n"
        "  actionclip classify clip.mp4 --labels 'juggling,tai chi,playing guitar' --model converted/k400-b16\n"
        "  actionclip info converted/k400-b16\n"
        "  actionclip convert vit-b-16-8f.pt converted/k400-b16\n"
        "  actionclip card converted/k400-b16 --eval eval/k400\n"
        "\nrun 'actionclip COMMAND --help' for a command's options",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_LazyArgumentsParser
    )

    classify = commands.add_parser(
        "classify",
        help="rank labels for videos (zero-shot: any labels)",
        description="Rank candidate labels for each video with an ActionCLIP model (zero-shot: any labels). "
        "Directories are searched recursively for video files. Scores are the paper's template-ensembled "
        "probabilities unless --ensemble embedding.",
        formatter_class=_Formatter,
        epilog="examples:\n"
        "  actionclip classify clip.mp4 --labels 'juggling,tai chi,playing guitar' --model converted/k400-b16\n"
        "  actionclip classify videos/ --labels-file k400_labels.csv --model converted/k400-b16 --top-k 5 --csv\n"
        "  actionclip classify videos/ --label-set kinetics400 --model converted/k400-b16 --top-k 5\n"
        "  actionclip classify a.mp4 b.webm --labels 'run,swim' --model m --templates my_templates.txt --json\n"
        "\nexit status: 0 ok, 2 bad input (missing video or model, bad labels or templates, undecodable video)",
    )
    classify.add_argument("videos", nargs="+", metavar="VIDEO_OR_DIR", help="video files, URLs or directories")
    label_source = add_label_arguments(classify)
    label_source.add_argument(
        "--descriptions",
        help="label descriptions JSON {label: [sentence, ...]} (e.g. from 'actionclip describe'): its labels, "
        "each with its descriptions as extra prompts",
    )
    classify.add_argument("--model", required=True, help="ActionCLIP model directory (or Hub id)")
    classify.add_argument("--top-k", type=_positive_int, default=None, help="print the K best labels (default all)")
    output = classify.add_mutually_exclusive_group()
    output.add_argument("--json", dest="format", action="store_const", const="json", help="print JSON")
    output.add_argument("--csv", dest="format", action="store_const", const="csv", help="print CSV")
    classify.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda:0 if available)")
    classify.add_argument(
        "--templates",
        default=None,
        help="text file with one template per line, each with one '{}' (or a set name: actionclip16, single); "
        "default: the model's",
    )
    classify.add_argument("--num-frames", type=_positive_int, default=None, help="frames per clip (default: model's)")
    classify.add_argument("--num-clips", type=_positive_int, default=None, help="temporal clips per video (views)")
    classify.add_argument("--num-crops", type=int, choices=(1, 3), default=None, help="spatial crops per clip")
    classify.add_argument(
        "--logit-scale",
        type=_positive_float,
        default=None,
        help="default: the model's eval_logit_scale (100 when converted from the authors'), else the learned one",
    )
    classify.add_argument("--ensemble", choices=("probs", "embedding"), default=None, help="template ensembling")
    classify.add_argument("--batch-size", type=_positive_int, default=None, help="videos per forward pass")
    classify.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    classify.set_defaults(handler=_classify, format="text")

    info = commands.add_parser(
        "info",
        help="describe a model directory",
        description="Print a model's architecture, visual prompts, frames, image size, templates and parameter "
        "counts.",
        formatter_class=_Formatter,
        epilog="examples:\n  actionclip info converted/k400-b16\n  actionclip info converted/k400-b16 --json",
    )
    info.add_argument("model", help="ActionCLIP model directory (or Hub id)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=_info)

    convert = commands.add_parser(
        "convert",
        help="convert an original ActionCLIP (or OpenAI CLIP) checkpoint into a model directory",
        description="Convert a released ActionCLIP checkpoint (or a plain OpenAI CLIP state dict) into a directory "
        "that ActionCLIPModel.from_pretrained and ActionCLIPProcessor.from_pretrained load. Checkpoints are read "
        "without running code (pickles that need code are refused).",
        formatter_class=_Formatter,
        epilog="examples:\n"
        "  actionclip convert vit-b-16-32f.pt converted/k400-b16-32f --num-frames 32\n"
        "  actionclip convert ViT-B-32.pt converted/clip-b32 --fusion meanP",
    )
    convert.add_argument("checkpoint", help="the .pt / .pth / .safetensors file")
    convert.add_argument("output_dir", help="where to write the model and processor")
    convert.add_argument(
        "--num-frames", type=int, default=None, help="frames per video (default: from the file, else 8)"
    )
    convert.add_argument("--fusion", default=None, help="post-network prompt (default: inferred from the weights)")
    convert.add_argument("--joint", action="store_true", help="add the Joint pre-network prompt (fresh weights)")
    convert.set_defaults(handler=_convert)

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a model: closed-set (multi-view) or zero-shot protocols",
        description="Closed-set accuracy or a zero-shot protocol (hmdb51, ucf101, k600_novel, half_class, "
        "full_class, base_to_novel, few_shot) of a model directory; the same program as "
        "training_scripts/run_eval.py.",
        formatter_class=_Formatter,
    )
    evaluate.add_arguments = _add_eval_arguments
    demo = commands.add_parser(
        "demo",
        help="generate synthetic videos, train, evaluate and report, offline",
        description="Generate a synthetic dataset, train a temporal and a meanP ActionCLIP from scratch, evaluate "
        "closed-set and zero-shot, classify a video with the pipeline, write model cards and a report.",
        formatter_class=_Formatter,
    )
    demo.add_arguments = _add_demo_arguments

    card = commands.add_parser(
        "card",
        help="write a model card (README.md with Hub metadata) for a model directory",
        description="Generate a model card for an ActionCLIP model directory: Hub metadata with a model-index "
        "filled from evaluation reports (every evaluation.json under the directory unless --eval or --no-eval), "
        "base model, visual prompts, frames, templates, intended use and limitations. The card is checked "
        "offline with huggingface_hub before it is written.",
        formatter_class=_Formatter,
        epilog="examples:\n"
        "  actionclip card runs/ucf101-b16\n"
        "  actionclip card runs/ucf101-b16 --eval eval/ucf101 eval/hmdb51 --base-model openai/clip-vit-base-patch16\n"
        "  actionclip card runs/ucf101-b16 --stdout",
    )
    card.add_argument("model_dir", help="ActionCLIP model directory (with config.json)")
    reports = card.add_mutually_exclusive_group()
    reports.add_argument(
        "--eval", nargs="+", metavar="REPORT", help="evaluation.json files, or folders searched (with subfolders)"
    )
    reports.add_argument("--no-eval", action="store_true", help="no evaluation results in the card")
    card.add_argument("--base-model", default=None, help="Hub id of the CLIP checkpoint it was fine-tuned from")
    card.add_argument("--name", default=None, help="model name (default: the directory's name)")
    card.add_argument("--repo-id", default=None, help="Hub id for the usage example (default: the name)")
    card.add_argument("--summary", default=None, help="the card's opening paragraph")
    card.add_argument("--dataset", action="append", help="Hub id of a training dataset (repeatable)")
    card.add_argument("--training-data", default=None, help="a sentence on what it was trained on")
    card.add_argument("--synthetic", action="store_true", help="trained on synthetic videos (said under limits)")
    card.add_argument("--intended-use", default=None, help="replaces the default intended-use paragraph")
    card.add_argument("--limitation", action="append", help="an extra limitation (repeatable)")
    card.add_argument("--license", default="mit", help="license id for the metadata (default mit)")
    card.add_argument("--tag", action="append", help="an extra Hub tag (repeatable)")
    card.add_argument("--template", default=None, help="a Jinja2 markdown template (default: the packaged one)")
    destination = card.add_mutually_exclusive_group()
    destination.add_argument("--output", default=None, help="where to write (default MODEL_DIR/README.md)")
    destination.add_argument("--stdout", action="store_true", help="print the card instead of writing it")
    card.add_argument("--overwrite", action="store_true", help="replace an existing file")
    card.set_defaults(handler=_card)

    from .commands import command_modules

    for module in command_modules():
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import ActionCLIPError

    args = build_parser().parse_args(argv)  # before importing transformers: --help and usage errors answer at once
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # stderr is for our progress bar and errors
    try:
        return args.handler(args)
    except (ActionCLIPError, CommandLineError) as error:
        print(f"actionclip {args.command}: error: {_short(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # an output path that is a file, a folder we may not write, a full disk
        where = f" {error.filename!r}" if getattr(error, "filename", None) else ""
        print(f"actionclip {args.command}: error:{where} {error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"actionclip {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run the package's module, not this __main__ copy: the command modules raise `actionclip.cli.CommandLineError`,
    # which must be the class `main` catches.
    from actionclip.cli import main as package_main

    sys.exit(package_main())
