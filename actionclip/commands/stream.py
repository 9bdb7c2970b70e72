"""`actionclip stream SOURCE --labels ...`: scores of the latest window of a live stream, as JSON lines."""

from __future__ import annotations

import argparse
import json

from ._common import add_window_arguments, seconds


def register(subparsers) -> None:
    from . import add_command

    parser = add_command(
        subparsers,
        "stream",
        "classify a live stream (file, rtsp://, http://, capture device) window by window, JSON lines",
        "Score the latest --window seconds of a stream every --stride seconds and print one JSON object "
        "per line: start, end, label, score, scores. A stream that sends nothing for --timeout seconds ends with "
        "an error (exit 2).",
        examples=(
            "actionclip stream rtsp://camera/live --labels 'walking,running,falling' --model m --window 2 --stride 0.5",
            "actionclip stream clip.mp4 --labels-file labels.txt --model m --realtime",
            "actionclip stream /dev/video0 --format v4l2 --labels 'waving,clapping' --model m",
        ),
        exit_status="0 the stream ended, 2 bad input or a stalled / unreadable stream",
    )
    parser.add_argument("source", help="file, URL (rtsp://, http://, ...) or capture device")
    add_window_arguments(parser, stride_help="time between outputs (default 1 s)")
    parser.add_argument("--timeout", type=seconds, default=10.0, help="give up after this long without data")
    parser.add_argument("--realtime", action="store_true", help="play a file at its own speed")
    parser.add_argument("--format", default=None, help="input format for av.open, e.g. v4l2 for a webcam")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda:0 if available)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..apps.streaming import StreamingClassifier
    from ..prompts import DEFAULT_TEMPLATE_SET, PromptTemplater
    from ._inputs import load_pipeline, read_labels

    labels = read_labels(args)
    PromptTemplater(DEFAULT_TEMPLATE_SET).normalize_labels(labels)
    classifier = load_pipeline(args.model, args.device)
    stream = StreamingClassifier(classifier, labels, window=args.window, stride=args.stride)
    for result in stream.run(args.source, timeout=args.timeout, realtime=args.realtime, format=args.format):
        print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0
