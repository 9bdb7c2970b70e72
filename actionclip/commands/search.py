"""`actionclip search INDEX "text"` (or `--like VIDEO`): the best-matching videos or segments of an index."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    from . import add_command
    from .index import add_index_model_arguments

    parser = add_command(
        subparsers,
        "search",
        "search a video index by text or by an example video",
        "Rank the videos (or segments) of an index made by `actionclip index` by similarity to a "
        "sentence or to an example video. Exact search on small indexes, FAISS (candidates re-scored exactly) on "
        "large ones; --exact searches every row exactly.",
        examples=(
            "actionclip search videos.index 'someone juggling' -k 10",
            "actionclip search videos.index --like clip.mp4 --json",
        ),
        exit_status="0 ok, 2 bad input (no index, model mismatch, no query)",
    )
    parser.add_argument("index", metavar="INDEX", help="index folder written by `actionclip index`")
    add_index_model_arguments(parser)
    parser.add_argument("text", nargs="?", default=None, help="the sentence to search for")
    parser.add_argument("--like", default=None, metavar="VIDEO", help="search by an example video instead")
    parser.add_argument("-k", "--top-k", dest="k", type=int, default=10, help="results (default 10)")
    parser.add_argument("--template", default="{}", help="prompt template for the text (default: as it is)")
    parser.add_argument("--exact", action="store_true", help="search every row exactly (slow on large indexes)")
    parser.add_argument(
        "--refine", type=int, default=None, metavar="N",
        help="above 100,000 rows: k x N FAISS candidates re-scored exactly (default: the index's, 200; fewer is "
        "faster and misses more)",
    )  # fmt: skip
    parser.add_argument("--nprobe", type=int, default=None, metavar="N", help="FAISS lists visited (default 32)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..apps.search import VideoIndex
    from ..errors import CommandLineError
    from ._inputs import load_pipeline

    if (args.text is None) == (args.like is None):
        raise CommandLineError("give either a text query or --like VIDEO")
    if args.k < 1:
        raise CommandLineError(f"-k must be at least 1, got {args.k}")
    ann = {"nprobe": args.nprobe, "refine": args.refine}
    index = VideoIndex.open(args.index)
    classifier = load_pipeline(args.model or index.meta["model"]["name"], args.device)
    if args.like is not None:
        hits = index.search_video(args.like, classifier, args.k, exact=args.exact, **ann)
    else:
        hits = index.search_text(args.text, classifier, args.k, template=args.template, exact=args.exact, **ann)
    if args.json:
        json.dump([hit.to_dict() for hit in hits], sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        for rank, hit in enumerate(hits, start=1):
            print(f"{rank:3d}  {hit.score:.4f}  {hit.path}  {hit.start:.2f}-{hit.end:.2f} s")
    return 0
