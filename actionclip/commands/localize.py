"""`actionclip localize VIDEO --labels ...`: when each label happens in an untrimmed video (segments, JSON, PNG)."""

from __future__ import annotations

import argparse
import json
import sys

from ._common import add_window_arguments, unit_interval


def register(subparsers) -> None:
    from . import add_command

    parser = add_command(
        subparsers,
        "localize",
        "find when each label happens in a long video (sliding windows, merged segments)",
        "Score sliding windows of an untrimmed video against candidate labels and merge neighbouring "
        "windows of the same label into segments. With meanP/conv1d/lstm/transf/transf_cls models every "
        "distinct frame goes through the vision tower once; Shift and Joint models encode each window.",
        examples=(
            "actionclip localize match.mp4 --labels 'dribbling,shooting,celebrating' --model m --window 4 --stride 1",
            "actionclip localize day.mkv --labels-file labels.txt --model m --threshold 0.5 --json --plot day.png",
        ),
        exit_status="0 ok, 2 bad input (missing video or model, bad labels, window longer than the video)",
    )
    parser.add_argument("video", help="video file or URL")
    add_window_arguments(parser, stride_help="time between windows (default 1 s)")
    parser.add_argument("--threshold", type=unit_interval, default=None, help="minimum score for a label (0..1)")
    parser.add_argument("--top-k", type=int, default=1, help="labels per window at most (default 1)")
    parser.add_argument("--no-background", action="store_true", help="no 'no listed action' segments")
    parser.add_argument("--num-frames", type=int, default=None, help="frames per window (default: the model's)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda:0 if available)")
    parser.add_argument("--json", action="store_true", help="print the whole result (segments and windows) as JSON")
    parser.add_argument("--plot", default=None, metavar="PNG", help="write a timeline plot there")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..apps.localization import localize
    from ..prompts import DEFAULT_TEMPLATE_SET, PromptTemplater
    from ._inputs import load_pipeline, read_labels

    labels = read_labels(args)
    PromptTemplater(DEFAULT_TEMPLATE_SET).normalize_labels(labels)  # bad labels: before loading the model
    classifier = load_pipeline(args.model, args.device)
    result = localize(
        classifier,
        args.video,
        labels,
        window=args.window,
        stride=args.stride,
        threshold=args.threshold,
        top_k=args.top_k,
        background=not args.no_background,
        num_frames=args.num_frames,
    )
    if args.plot:
        result.plot(args.plot)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        print(f"{result.source}: {result.grid.num_windows} windows, {len(result.segments)} segments")
        for segment in result.segments:
            print(f"  {segment['start']:9.2f} - {segment['end']:9.2f} s  {segment['score']:.4f}  {segment['label']}")
    return 0
