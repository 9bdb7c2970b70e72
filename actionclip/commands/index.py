"""`actionclip index DIR --out INDEX`: embed a folder's videos (whole, or in segments) into a searchable index."""

from __future__ import annotations

import argparse
import sys
import warnings
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
        "Embed every video under DIR (whole videos, or --segment long parts) into the index folder INDEX. Run it "
        "again to update: new files are embedded, changed ones re-embedded, removed ones dropped; each file is "
        "committed when done, so an interrupted run keeps what it finished. An existing index made by another model "
        "or other preprocessing is refused, and so is a second writer (unless --wait). --from-parquet commits rows "
        "embedded elsewhere; --convert turns a single-file index of an earlier version into an index folder.",
        examples=(
            "actionclip index videos/ --out videos.index --model m",
            "actionclip index videos/ --out videos.index --model m --segment 4s",
            "actionclip index videos/ --out videos.index  # later: update it, with the model it was made with",
            "actionclip index videos/ --out videos.index --from-parquet embeddings/*.parquet",
            "actionclip index --convert old.index --out videos.index",
        ),
        exit_status="0 ok, 2 bad input (no such folder, no video in it, model mismatch, index being written)",
    )
    parser.add_argument("folder", metavar="DIR", nargs="?", help="folder of videos (searched recursively)")
    parser.add_argument("--out", required=True, metavar="INDEX", help="index folder to create or update")
    add_index_model_arguments(parser)
    parser.add_argument("--segment", type=seconds, default=None, help="segment length, e.g. 4s (default: whole)")
    parser.add_argument("--wait", action="store_true", help="wait for another process writing INDEX (default: fail)")
    parser.add_argument(
        "--from-parquet", nargs="+", default=None, metavar="PATH", help="commit rows embedded elsewhere (Parquet)"
    )
    parser.add_argument("--convert", default=None, metavar="OLD", help="convert a single-file index to --out")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..apps.search import VideoIndex, parquet_metadata
    from ..apps.sharded_index import update_sharded
    from ..data.video_files import find_video_files
    from ..errors import CommandLineError
    from ..sharding.sharded_run import ShardedRun
    from ._inputs import load_pipeline, short

    if args.convert is not None:
        index = VideoIndex.convert(args.convert, args.out)
        print(f"{args.out}: {len(index.files)} files, {len(index)} vectors (converted from {args.convert})")
        return 0
    if args.folder is None:
        raise CommandLineError("give the folder of videos DIR (or --convert OLD)")
    found = find_video_files(args.folder)  # no folder, empty folder: before loading the model
    existing = VideoIndex.open(args.out) if Path(args.out).exists() else None
    if existing is not None:
        if Path(args.folder).resolve() != existing.root:
            raise CommandLineError(f"index {args.out!r} was built from {str(existing.root)!r}, not {args.folder!r}")
        stored = existing.meta["preprocessing"]["segment"]
        if args.segment is not None and args.segment != stored:
            held = "whole videos" if stored is None else f"{stored:g} s segments"
            raise CommandLineError(
                f"index {args.out!r} holds {held}, not {args.segment:g} s segments: write a new index"
            )
    if args.from_parquet:
        index = existing or VideoIndex.create_from_meta(args.out, parquet_metadata(args.from_parquet[0]))
        counts = index.ingest_parquet(args.from_parquet, wait=args.wait)
    else:
        model = args.model or (existing.meta["model"]["name"] if existing is not None else None)
        if model is None:
            raise CommandLineError("--model is required to create an index")
        with ShardedRun.from_environment() as run:
            classifier = load_pipeline(model, run.device(args.device))
            run.barrier()  # every process has looked for the index before the main one creates it
            if existing is None and run.is_main:  # the main process is the index's only writer
                existing = VideoIndex.create(args.out, args.folder, classifier, segment=args.segment)
            run.barrier()
            index = existing or VideoIndex.open(args.out)

            def progress(path: str, what: str) -> None:
                print(f"  {what}: {path}", file=sys.stderr, flush=True)

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                counts = update_sharded(index, args.out, classifier, run, progress=progress, wait=args.wait)
            for warning in caught:
                print(f"actionclip index: warning: {short(warning.message)}", file=sys.stderr)
            if counts is None:  # a process of a sharded run other than the main one
                return 0
    summary = ", ".join(f"{count} {what}" for what, count in counts.items() if count)
    print(f"{args.out}: {len(index.files)} of {len(found)} files, {len(index)} vectors ({summary})")
    return 0
