"""`actionclip index DIR --out INDEX`: embed a folder's videos (whole, or in segments) into a searchable index."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import seconds


def add_index_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model`` and ``--device``: the pipeline that embeds for an index (``index`` and ``search``); the model
    defaults to the one the index was built with."""
    parser.add_argument("--model", default=None, help="ActionCLIP model directory (default: the index's model)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda:0 if available)")


def register(subparsers) -> None:
    from . import add_command

    parser = add_command(
        subparsers,
        "index",
        "embed a folder of videos into a search index (incremental)",
        "Embed every video under DIR (whole videos, or --segment long parts) into INDEX. Run it again to "
        "update: new files are embedded, changed ones re-embedded, removed ones dropped. An existing index "
        "made by another model or other preprocessing is refused.",
        examples=(
            "actionclip index videos/ --out videos.index --model m",
            "actionclip index videos/ --out videos.index --model m --segment 4s",
            "actionclip index videos/ --out videos.index  # later: update it, with the model it was made with",
        ),
        exit_status="0 ok, 2 bad input (no such folder, no video in it, model mismatch)",
    )
    parser.add_argument("folder", metavar="DIR", help="folder of videos (searched recursively)")
    parser.add_argument("--out", required=True, metavar="INDEX", help="index file to create or update")
    add_index_model_arguments(parser)
    parser.add_argument("--segment", type=seconds, default=None, help="segment length, e.g. 4s (default: whole)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..apps.search import VideoIndex
    from ..data.video_files import find_video_files
    from ..errors import CommandLineError
    from ._inputs import load_pipeline

    found = find_video_files(args.folder)  # no folder, empty folder: before loading the model
    existing = VideoIndex.load(args.out) if Path(args.out).exists() else None
    if existing is not None:
        if Path(args.folder).resolve() != existing.root:
            raise CommandLineError(f"index {args.out!r} was built from {str(existing.root)!r}, not {args.folder!r}")
        stored = existing.meta["preprocessing"]["segment"]
        if args.segment is not None and args.segment != stored:
            held = "whole videos" if stored is None else f"{stored:g} s segments"
            raise CommandLineError(
                f"index {args.out!r} holds {held}, not {args.segment:g} s segments: write a new index"
            )
    model = args.model or (existing.meta["model"]["name"] if existing is not None else None)
    if model is None:
        raise CommandLineError("--model is required to create an index")
    classifier = load_pipeline(model, args.device)
    index = existing or VideoIndex.create(args.folder, classifier, segment=args.segment)

    def progress(path: str, what: str) -> None:
        print(f"  {what}: {path}", file=sys.stderr)

    counts = index.update(classifier, progress=progress)
    index.save(args.out)
    summary = ", ".join(f"{count} {what}" for what, count in counts.items() if count)
    print(f"{args.out}: {len(index.files)} of {len(found)} files, {len(index)} vectors ({summary})")
    return 0
