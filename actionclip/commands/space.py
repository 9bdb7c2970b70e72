"""``actionclip space MODEL OUT_DIR``: write a Hugging Face Space folder serving the web app for a Hub model (the
folder is `actionclip.hub.space`'s)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from . import add_command
    from .app import add_served_model_arguments

    parser = add_command(
        subparsers,
        "space",
        "write a Hugging Face Space folder serving the web app for a Hub model",
        "Write OUT_DIR with app.py, requirements.txt, README.md (the Space's metadata) and a copy of "
        "this package, ready to push as a Gradio Space. The metadata is checked offline.",
        examples=(
            "actionclip space my-org/actionclip-k400-b16 space/",
            "actionclip space my-org/actionclip-k400-b16 space/ --requirement 'actionclip==0.1.0'",
        ),
    )
    add_served_model_arguments(parser, "Hub model id (org/name) the Space serves")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write (must not exist unless --overwrite)")
    parser.add_argument("--title", default=None, help="the Space's title (default from the model name)")
    parser.add_argument(
        "--requirement",
        default=None,
        help="pip requirement for this package to list in requirements.txt instead of copying the package",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..apps.web_app import import_gradio
    from ..hub.space import write_space
    from .app import limits_from_args

    out_dir = write_space(
        args.model,
        args.out_dir,
        limits_from_args(args),
        import_gradio().__version__,
        title=args.title,
        requirement=args.requirement,
        overwrite=args.overwrite,
    )
    files = sorted(path.name for path in out_dir.iterdir())
    print(f"wrote {out_dir}: {', '.join(files)}; metadata checked offline")
    return 0
