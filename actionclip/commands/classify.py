"""``actionclip classify``: rank candidate labels for videos with the zero-shot pipeline (any labels)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from collections import deque

from ..model_loading import check_model_path
from ..sharding.sharded_run import FailedItem, ShardedRun, WorkFolder, default_work_root
from ._common import add_label_arguments, positive_float, positive_int
from ._inputs import find_videos, load_pipeline, model_load_error, model_tokenizer, read_labels, short


def register(subparsers) -> None:
    from . import add_command

    classify = add_command(
        subparsers,
        "classify",
        "rank labels for videos (zero-shot: any labels)",
        "Rank candidate labels for each video with an ActionCLIP model (zero-shot: any labels). "
        "Directories are searched recursively for video files. Scores are the paper's template-ensembled "
        "probabilities unless --ensemble embedding.",
        examples=(
            "actionclip classify clip.mp4 --labels 'juggling,tai chi,playing guitar' --model converted/k400-b16",
            "actionclip classify videos/ --labels-file k400_labels.csv --model converted/k400-b16 --top-k 5 --csv",
            "actionclip classify videos/ --label-set kinetics400 --model converted/k400-b16 --top-k 5",
            "actionclip classify a.mp4 b.webm --labels 'run,swim' --model m --templates my_templates.txt --json",
        ),
        exit_status="0 ok, 2 bad input (missing video or model, bad labels or templates, undecodable video)",
    )
    classify.add_argument("videos", nargs="+", metavar="VIDEO_OR_DIR", help="video files, URLs or directories")
    label_source = add_label_arguments(classify)
    label_source.add_argument(
        "--descriptions",
        help="label descriptions JSON {label: [sentence, ...]} (e.g. from 'actionclip describe'): its labels, "
        "each with its descriptions as extra prompts",
    )
    classify.add_argument("--model", required=True, help="ActionCLIP model directory (or Hub id)")
    classify.add_argument("--top-k", type=positive_int, default=None, help="print the K best labels (default all)")
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
    classify.add_argument("--num-frames", type=positive_int, default=None, help="frames per clip (default: model's)")
    classify.add_argument("--num-clips", type=positive_int, default=None, help="temporal clips per video (views)")
    classify.add_argument("--num-crops", type=int, choices=(1, 3), default=None, help="spatial crops per clip")
    classify.add_argument(
        "--logit-scale",
        type=positive_float,
        default=None,
        help="default: the model's eval_logit_scale (100 when converted from the authors'), else the learned one",
    )
    classify.add_argument("--ensemble", choices=("probs", "embedding"), default=None, help="template ensembling")
    classify.add_argument("--batch-size", type=positive_int, default=None, help="videos per forward pass")
    classify.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    classify.add_argument(
        "--work-dir",
        default=None,
        help="where finished videos' results wait until the output is printed, so that a run killed in the middle "
        "and started again classifies only the rest (default: under ~/.cache/actionclip)",
    )
    classify.set_defaults(handler=run, format="text")


def _classify_labels(args: argparse.Namespace, templates):
    """The candidate labels: a list, or ``{label: [description, ...]}`` from ``--descriptions`` (long description
    prompts counted and warned about on stderr)."""
    if getattr(args, "descriptions", None) is None:
        return read_labels(args)
    from ..descriptions import load_descriptions, warn_long_descriptions

    descriptions = load_descriptions(args.descriptions)
    tokenizer, context_length = model_tokenizer(args.model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_long_descriptions(descriptions, tokenizer, templates or ("{}",), context_length)
    for warning in caught:
        print(f"actionclip classify: warning: {short(warning.message)}", file=sys.stderr)
    return descriptions


def load_classifier(model: str, device: str | None):
    """What classifies with ``model``: an ONNX export runs on onnxruntime and numpy alone
    (`onnx_runtime.OnnxZeroShotClassifier`: torch and transformers are never imported, which is most of the time of
    one short video through PyTorch; `benchmarks/startup.py`), anything else through the zero-shot pipeline
    (`load_pipeline`). Both give ``iter_results(videos, candidate_labels=..., **options)``."""
    check_model_path(model)
    from ..onnx.runtime import is_onnx_export

    if not is_onnx_export(model):
        return load_pipeline(model, device)
    from ..errors import ActionCLIPError
    from ..onnx.runtime import OnnxZeroShotClassifier

    if device is not None and not device.startswith("cpu"):
        print(f"actionclip: warning: the ONNX backend runs on the CPU; device {device!r} is not used", file=sys.stderr)
    try:
        return OnnxZeroShotClassifier(model)
    except ActionCLIPError:
        raise
    except (
        OSError,
        ValueError,
        RuntimeError,
        KeyError,
        ImportError,
    ) as error:  # onnxruntime's, json's, a missing file
        raise model_load_error(model, error) from None


def run(args: argparse.Namespace) -> int:
    videos = find_videos(args.videos)
    check_model_path(args.model)  # before anything imports torch: a typo answers at once
    from ..prompts import DEFAULT_TEMPLATE_SET, PromptTemplater, load_templates

    templates = list(load_templates(args.templates)) if args.templates is not None else None
    candidates = labels = _classify_labels(args, templates)
    if isinstance(candidates, dict):
        labels = list(candidates)
    PromptTemplater(templates or DEFAULT_TEMPLATE_SET).normalize_labels(labels)  # bad labels: before loading
    with ShardedRun.from_environment() as run:
        return _classify(args, run, videos, candidates, templates)


def _classify(args: argparse.Namespace, run: ShardedRun, videos: list[str], candidates, templates) -> int:
    """Classify ``videos`` shared among the run's processes (each its share, one GPU each where there are GPUs);
    the main process prints every result in the videos' order."""
    from tqdm.auto import tqdm

    classifier = load_classifier(args.model, run.device(args.device))
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
    settings = {"command": "classify", "model": args.model, "videos": videos, **options}
    work = WorkFolder(args.work_dir or default_work_root(), settings)
    keys = [f"{position}:{video}" for position, video in enumerate(videos)]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def classify_share(share: list[str]):
            """Each video's predictions, or its `FailedItem` (the classifier warns ``skipped: <error>`` and gives
            ``None``, both in input order)."""
            if not share:  # the classifier refuses an empty list
                return
            skipped = deque()
            results = classifier.iter_results(share, **options)
            disable = args.no_progress or not run.is_main or len(share) < 2
            for predictions in tqdm(results, total=len(share), unit="video", file=sys.stderr, disable=disable):
                for warning in [warning for warning in caught if _skip_message(warning) is not None]:
                    caught.remove(warning)
                    skipped.append(_skip_message(warning))
                yield FailedItem(skipped.popleft()) if predictions is None else predictions

        results = run.map(videos, keys, classify_share, work, "videos")
    for warning in caught:
        print(f"actionclip classify: warning: {short(warning.message)}", file=sys.stderr)
    if results is None:  # a process of a sharded run other than the main one
        return 0

    rows, failures = [], []
    for video, result in zip(videos, results):
        if isinstance(result, FailedItem):
            failures.append(video)
            print(f"actionclip classify: error: {result.message}", file=sys.stderr)
        else:
            rows.append((video, result))

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
    sys.stdout.flush()  # the output is out before the finished results go
    work.remove()
    if failures:
        print(
            f"actionclip classify: error: {len(failures)} of {len(videos)} videos could not be classified",
            file=sys.stderr,
        )
        return 2
    return 0


def _skip_message(warning) -> str | None:
    """The error of a video the classifier skipped (its warning ``skipped: <error>``), else ``None``."""
    message = short(warning.message)
    return message[len("skipped: ") :] if message.startswith("skipped: ") else None
